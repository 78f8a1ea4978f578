"""Users' mistakes end in one clear line and lose nothing: checkpoints that do not fit or are
no checkpoints, resume, datasets with faults, parse-time config values, registry typos,
one-value-per-channel batches."""
import hashlib
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.runner import load_checkpoint

from mmdet_efficientdet.checkpoint_files import CheckpointFileError
from mmdet_efficientdet.model_cfg import efficientdet_model
from mmdet_efficientdet.models.detectors.efficientdet import CheckpointMismatchError
from mmdet_efficientdet.utils import one_line
from mmdet_efficientdet.utils.synthetic import make_synthetic_coco

from .conftest import build
from .e2e_utils import PYTHON, run_tool, write_tiny_config


@pytest.fixture(scope='module')
def small_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'synthetic')
    make_synthetic_coco(root, seed=0, splits=dict(train=3, val=2))
    return root


def _digests(folder):
    return {name: hashlib.sha256(open(osp.join(folder, name), 'rb').read()).hexdigest()
            for name in sorted(os.listdir(folder)) if name.endswith('.pth')}


def _one_line_error(proc, tool):
    """The tool failed with one line (no traceback on the terminal) naming where the
    traceback went; returns that line."""
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f'{tool}: error: ') and '(traceback in ' in line, line
    log = line.rsplit('(traceback in ', 1)[1].rstrip(')')
    assert 'Traceback' in open(log).read()
    return line


# --- checkpoints ------------------------------------------------------------------------

def _save(model, path):
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


def test_a_checkpoint_of_another_level_is_refused_naming_the_first_key(tmp_path):
    d1 = _save(build(efficientdet_model('d1', num_classes=4)), tmp_path / 'd1.pth')
    model = build(efficientdet_model('d0', num_classes=4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError,
                       match=r'neck\.extra_levels\.0\.conv\.conv\.weight is \(88, 320, 1, 1\) in '
                       r'the checkpoint but \(64, 320, 1, 1\) in the model \(and \d+ more\)'
                       r'.*partial_load=True'):
        load_checkpoint(model, d1, map_location='cpu')
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_init_detector_refuses_a_checkpoint_of_other_classes(tmp_path):
    from mmdet.apis import init_detector
    other = _save(build(efficientdet_model('d0', num_classes=7)), tmp_path / 'c7.pth')
    config = osp.join(osp.dirname(osp.dirname(__file__)),
                      'configs/efficientdet/efficientdet_d0_demo_synthetic.py')
    with pytest.raises(CheckpointMismatchError, match=r'bbox_head\.conv_cls\.pointwise\.conv\.'
                       r'weight is \(63, 64, 1, 1\) in the checkpoint but \(36, 64, 1, 1\)'):
        init_detector(config, other, device='cpu')


def test_partial_load_skips_and_lists_what_does_not_fit(tmp_path):
    source = build(efficientdet_model('d0', num_classes=7))
    path = _save(source, tmp_path / 'c7.pth')
    model = build(dict(efficientdet_model('d0', num_classes=4), partial_load=True))
    own_cls = model.bbox_head.conv_cls.pointwise.conv.weight.clone()
    load_checkpoint(model, path, map_location='cpu')
    assert torch.equal(model.bbox_head.conv_cls.pointwise.conv.weight, own_cls)
    assert torch.equal(model.backbone.stem.conv.weight, source.backbone.stem.conv.weight)
    assert torch.equal(model.bbox_head.conv_reg.pointwise.conv.weight,
                       source.bbox_head.conv_reg.pointwise.conv.weight)


def test_an_unconverted_checkpoint_is_refused():
    model = build(efficientdet_model('d0', num_classes=4))
    state = {'model.' + k: v for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match="no weight of the checkpoint belongs to "
                       r"this EfficientDetector \(its first is 'model\.backbone"):
        model.load_state_dict(state, strict=False)


@pytest.mark.parametrize('content', [b'hello world\n', b'', bytes(range(256)) * 4])
def test_a_file_that_is_no_checkpoint_is_named(content, tmp_path):
    path = tmp_path / 'weights.pth'
    path.write_bytes(content)
    model = build(efficientdet_model('d0', num_classes=4))
    with pytest.raises(CheckpointFileError, match=f'{path} is not a PyTorch checkpoint'):
        load_checkpoint(model, str(path))


def test_tools_refuse_a_wrong_checkpoint_in_one_line(small_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', small_data)
    d1 = _save(build(efficientdet_model('d1', num_classes=4)), tmp_path / 'd1.pth')
    proc = run_tool([PYTHON, 'tools/test.py', cfg, d1, '--work-dir', str(tmp_path / 't')],
                    check=False)
    line = _one_line_error(proc, 'test.py')
    assert 'CheckpointMismatchError: the checkpoint does not fit this model' in line
    assert 'coco/bbox_mAP' not in proc.stdout + proc.stderr

    text = tmp_path / 'notes.pth'
    text.write_text('not weights\n')
    proc = run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', str(tmp_path / 'w'),
                     '--cfg-options', f'load_from={text}'], check=False)
    assert f'{text} is not a PyTorch checkpoint' in _one_line_error(proc, 'train.py')
    assert _digests(tmp_path / 'w') == {} if osp.isdir(tmp_path / 'w') else True


# --- resume -----------------------------------------------------------------------------

def _fake_checkpoints(work_dir, names=('epoch_1.pth', 'epoch_2.pth')):
    os.makedirs(work_dir, exist_ok=True)
    for i, name in enumerate(names):
        with open(osp.join(work_dir, name), 'wb') as f:
            f.write(os.urandom(64) + bytes([i]))
    return _digests(work_dir)


def test_a_new_run_never_overwrites_checkpoints(small_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', small_data)
    work_dir = str(tmp_path / 'wd')
    before = _fake_checkpoints(work_dir)
    proc = run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', work_dir], check=False)
    line = _one_line_error(proc, 'train.py')
    assert 'already holds checkpoints (epoch_1.pth, epoch_2.pth)' in line and '--resume' in line
    assert _digests(work_dir) == before


def test_resume_refuses_a_last_checkpoint_that_is_gone(small_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', small_data)
    work_dir = str(tmp_path / 'wd')
    before = _fake_checkpoints(work_dir)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'epoch_3.pth'))
    proc = run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', work_dir, '--resume'],
                    check=False)
    line = _one_line_error(proc, 'train.py')
    assert 'epoch_3.pth, which is gone; checkpoints in' in line
    assert 'epoch_1.pth, epoch_2.pth' in line
    assert _digests(work_dir) == before


def test_resume_from_scratch_then_from_the_newest_checkpoint(small_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', small_data, max_epochs=1, batch_size=3)
    work_dir = str(tmp_path / 'wd')
    proc = run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', work_dir, '--resume'])
    assert f'--resume: no checkpoint in {work_dir}: starting from scratch' in proc.stdout
    assert 'Auto resumed from the latest checkpoint None' not in proc.stdout + proc.stderr
    before = _digests(work_dir)
    assert list(before) == ['epoch_1.pth']
    os.remove(osp.join(work_dir, 'last_checkpoint'))
    proc = run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', work_dir, '--resume'])
    assert ('has no last_checkpoint file; continuing from its newest checkpoint epoch_1.pth'
            in proc.stdout)
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    assert _digests(work_dir) == before


# --- datasets ---------------------------------------------------------------------------

def _plant_faults(root):
    """A missing file, a corrupt image, an unknown category, an outside and a zero-size box."""
    ann_file = osp.join(root, 'annotations', 'instances_train.json')
    with open(ann_file) as f:
        coco = json.load(f)
    images = coco['images']
    os.remove(osp.join(root, 'train', images[0]['file_name']))
    with open(osp.join(root, 'train', images[1]['file_name']), 'r+b') as f:
        data = f.read()
        f.seek(0)
        f.truncate()
        f.write(data[:len(data) // 3])  # cut off: the header reads, decoding fails
    image = images[2]
    base = dict(image_id=image['id'], iscrowd=0, area=100.0)
    next_id = max(a['id'] for a in coco['annotations']) + 1
    coco['annotations'] += [
        dict(base, id=next_id, category_id=99, bbox=[1, 1, 10, 10]),
        dict(base, id=next_id + 1, category_id=1,
             bbox=[image['width'] - 5, 2, 20, 10]),
        dict(base, id=next_id + 2, category_id=1, bbox=[3, 3, 0, 8]),
    ]
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return images


def test_check_dataset_passes_a_clean_dataset_and_draws(tmp_path):
    root = str(tmp_path / 'clean')
    make_synthetic_coco(root, seed=1, splits=dict(train=3, val=2))
    cfg = write_tiny_config(tmp_path / 'cfg.py', root)
    show_dir = tmp_path / 'shown'
    proc = run_tool([PYTHON, 'tools/check_dataset.py', cfg, '--show', '2', '--show-dir',
                     str(show_dir)])
    assert 'train: ' in proc.stdout and 'val: ' in proc.stdout and 'ERROR' not in proc.stdout
    assert 'check_dataset: no problem found' in proc.stdout
    assert sorted(os.listdir(show_dir)) == ['000001.png', '000002.png']


def test_check_dataset_finds_every_planted_fault(tmp_path):
    root = str(tmp_path / 'faulty')
    make_synthetic_coco(root, seed=1, splits=dict(train=3, val=2))
    images = _plant_faults(root)
    cfg = write_tiny_config(tmp_path / 'cfg.py', root)
    proc = run_tool([PYTHON, 'tools/check_dataset.py', cfg, '--cfg-options',
                     'model.bbox_head.num_classes=3'], check=False)
    out = proc.stdout
    assert proc.returncode == 1 and 'check_dataset: 7 problem(s) found' in proc.stderr
    assert f'ERROR missing image files: 1 (e.g. {root}/train/{images[0]["file_name"]})' in out
    assert f'ERROR unreadable images: 1 (e.g. {root}/train/{images[1]["file_name"]}: ' in out
    assert 'ERROR unknown category ids (mmdet drops their boxes): 1' in out
    assert 'category_id 99, the file has [1, 2, 3, 4]' in out
    assert 'ERROR boxes outside their image: 1' in out
    assert 'ERROR zero-size boxes (w or h < 1 px: mmdet drops them): 1' in out
    assert ('ERROR more classes than the model has outputs: 1 (e.g. 4 classes, '
            'model.bbox_head.num_classes=3)') in out
    assert 'val: ' in out and out.split('val: ')[1].count('ERROR') == 1  # only num_classes


# --- configs, registry, batch norm ------------------------------------------------------

def test_parse_time_config_values_are_refused(small_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', small_data)
    proc = run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', str(tmp_path / 'wd'),
                     '--cfg-options', 'image_size=500'], check=False)
    line = _one_line_error(proc, 'train.py')
    assert ("--cfg-options image_size=500: 'image_size' is a variable of" in line
            and 'used while the file was parsed' in line)
    assert not osp.exists(tmp_path / 'wd')


def test_a_registry_typo_gets_did_you_mean(small_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', small_data)
    proc = run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', str(tmp_path / 'wd'),
                     '--cfg-options', 'model.backbone.type=TFEfficentNet'], check=False)
    line = _one_line_error(proc, 'train.py')
    assert ("type 'TFEfficentNet' is not in the mmdet::model registry; did you mean "
            'TFEfficientNet') in line


def test_one_line_of_an_unknown_type_without_close_names():
    error = KeyError('Zzzqx is not in the mmdet::model registry. Please check whether ...')
    assert one_line(error) == (
        "KeyError: type 'Zzzqx' is not in the mmdet::model registry (types are "
        'case-sensitive; custom_imports must import the module that registers it)')


def test_one_image_batches_at_128px_get_a_clear_error():
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    model = build(efficientdet_model('d0', num_classes=4, input_size=128)).train()
    sample = DetDataSample(metainfo=dict(img_shape=(128, 128), pad_shape=(128, 128),
                                         batch_input_shape=(128, 128)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 10., 60., 70.]]),
                                       labels=torch.tensor([1]))
    with pytest.raises(ValueError, match=r'a training batch of 1 image\(s\) of 128x128 leaves '
                       'one value per channel .*drop_last=True'):
        model.loss(torch.randn(1, 3, 128, 128), [sample])


def test_a_last_batch_of_one_image_is_dropped_when_asked(small_data, tmp_path):
    # 3 images, batches of 2 at 128 px: the last batch holds one image (P7 is 1x1)
    cfg = write_tiny_config(tmp_path / 'cfg.py', small_data, max_epochs=1)
    with open(cfg, 'a') as f:
        f.write("train_dataloader.update(batch_sampler=dict(type='AspectRatioBatchSampler', "
                'drop_last=True))\n')
    run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', str(tmp_path / 'wd')])
    assert osp.exists(tmp_path / 'wd' / 'epoch_1.pth')
