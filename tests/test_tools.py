import json
import os.path as osp
import re

import torch
from mmdet.datasets import CocoDataset

from mmdet_efficientdet.converters import COCO80_CHANNELS
from mmdet_efficientdet.apis.synthetic import make_synthetic_coco

from .conftest import ROOT, call_tool, effdet_checkpoint, error_line


def _coco80_set(root):
    """A few synthetic images whose json carries all 80 COCO categories (real ids)."""
    files = make_synthetic_coco(root, seed=1, splits=dict(val=3))
    with open(files['val']) as f:
        data = json.load(f)
    ids = [channel + 1 for channel in COCO80_CHANNELS]
    data['categories'] = [dict(id=i, name=n) for i, n in zip(ids, CocoDataset.METAINFO['classes'])]
    for ann in data['annotations']:
        ann['category_id'] = ids[ann['category_id']]  # person, bicycle, car, motorcycle
    with open(files['val'], 'w') as f:
        json.dump(data, f)
    return files['val']


def test_convert_then_test_reports_coco_ap(tmp_path, capsys):
    converted = str(tmp_path / 'd0_coco80.pth')
    assert call_tool('convert_weights', effdet_checkpoint(tmp_path, 'd0'),
                     converted, '--level', 'd0') == 0
    assert 'EfficientDet-d0, 80 classes' in capsys.readouterr().out
    state = torch.load(converted, weights_only=True)['state_dict']
    assert state['bbox_head.conv_cls.pointwise.conv.bias'].shape == (9 * 80,)

    root = str(tmp_path / 'coco80')
    ann = _coco80_set(root)
    options = [f'test_dataloader.dataset.data_root={root}/',
               'test_dataloader.dataset.ann_file=annotations/instances_val.json',
               'test_dataloader.dataset.data_prefix.img=val/',
               f'test_evaluator.ann_file={ann}', 'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False', 'test_dataloader.batch_size=1']
    assert call_tool('test', osp.join(ROOT, 'configs/efficientdet/efficientdet_d0_8xb8-300e_'
                                      'coco.py'),
                     converted, '--work-dir', tmp_path / 'wd', '--cfg-options', *options) == 0
    captured = capsys.readouterr()
    log = captured.out + captured.err
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]' in log
    assert 'coco/bbox_mAP:' in log


def test_converter_refuses_another_level(tmp_path, capsys):
    assert call_tool('convert_weights', effdet_checkpoint(tmp_path, 'd1'),
                     tmp_path / 'x.pth', '--level', 'd0') == 1
    assert ("is not a tf_efficientdet_d0 checkpoint: shape mismatch at "
            "'neck.extra_levels.0.conv.conv.weight': checkpoint (88, 320, 1, 1)") in \
        error_line(capsys)
    assert not osp.exists(tmp_path / 'x.pth')


def test_seed_alone_keeps_the_configs_deterministic_setting():
    from mmengine.config import Config

    from mmdet_efficientdet.apis.runner_args import apply_randomness_args
    cfg = Config(dict(randomness=dict(seed=1, deterministic=True, diff_rank_seed=True)))
    apply_randomness_args(cfg, 7, False)
    assert cfg.randomness == dict(seed=7, deterministic=True, diff_rank_seed=True)
    cfg = Config(dict())
    apply_randomness_args(cfg, None, True)
    assert cfg.randomness == dict(deterministic=True)
    apply_randomness_args(cfg, None, False)
    assert cfg.randomness == dict(deterministic=True)


def test_latency_benchmark_at_any_size_and_batch(capsys):
    """tools/benchmark.py latency at a size that is not the level's own and a batch of 2: the
    eager and runtime rows, network and end to end (a batch-2 graph run by RuntimeDetector
    on images padded to that square), and the closing comparison."""
    assert call_tool('benchmark', 'latency', '--level', 'd0', '--size', 128, '--batch-sizes',
                     2, '--repeats', 1, '--variants', 'eager', 'onnxruntime') == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith('    2 ')]
    assert [row.split()[1] for row in rows] == ['eager', 'onnxruntime']
    for row in rows:  # batch; network and end to end: median (min-max) x; e2e/net
        numbers = [float(n) for n in re.findall(r'\d+\.\d+', row)]
        assert len(numbers) == 9 and numbers[0] > 0 and numbers[4] > 0, row
    assert lines[-1].startswith('fastest end to end: ') and 'x eager' in lines[-1]
