import os
import os.path as osp
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

from mmdet_efficientdet.utils.synthetic import CLASSES, make_synthetic_coco

from .conftest import ROOT
from .e2e_utils import PYTHON, run_tool, train_losses, write_tiny_config


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'synthetic')
    make_synthetic_coco(root, seed=0, splits=dict(train=8, val=4))
    return root


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


def test_few_iterations_decrease_the_loss(tiny_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', tiny_data, max_epochs=12)
    run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', str(tmp_path / 'wd'), '--seed', '0'])
    losses = [loss for _, loss in train_losses(tmp_path / 'wd')]
    assert len(losses) == 48  # 8 images, batch 2, 12 epochs
    assert np.mean(losses[-8:]) < 0.85 * np.mean(losses[:8]), losses
    # ... and the demo config's test path (score threshold, NMS, CocoMetric) runs on it
    proc = run_tool([PYTHON, 'tools/test.py', cfg, str(tmp_path / 'wd' / 'epoch_12.pth'),
                     '--work-dir', str(tmp_path / 'test')])
    assert 'coco/bbox_mAP:' in proc.stdout + proc.stderr
    # mmdet's test options: TTA (the config's tta_model/tta_pipeline), COCO-json results,
    # drawings from a config that has no visualization hook
    out = tmp_path / 'results.json'
    proc = run_tool([PYTHON, 'tools/test.py', cfg, str(tmp_path / 'wd' / 'epoch_12.pth'),
                     '--work-dir', str(tmp_path / 'tta'), '--tta', '--out', str(out),
                     '--show-dir', 'vis', '--cfg-options', 'default_hooks.visualization=None'])
    log = proc.stdout + proc.stderr
    assert 'coco/bbox_mAP:' in log and 'DetTTAModel' in open(
        next(osp.join(r, f) for r, _, fs in os.walk(tmp_path / 'tta') for f in fs
             if f.endswith('.py')), encoding='utf-8').read()
    coco = COCO(osp.join(tiny_data, 'annotations', 'instances_val.json'))
    results = coco.loadRes(str(out))
    assert set(results.getImgIds()) <= set(coco.getImgIds()) and len(results.anns) > 0
    drawn = [f for r, _, fs in os.walk(tmp_path / 'tta') for f in fs if f.endswith('.png')]
    assert len(drawn) == len(coco.getImgIds())


def test_two_process_gloo_run_with_syncbn_fallback(tiny_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', tiny_data, max_epochs=1, sync_bn=True)
    proc = run_tool(['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir',
                     str(tmp_path / 'wd')], env=dict(PORT=str(29500 + os.getpid() % 1000)))
    log = proc.stdout + proc.stderr
    # asked for SyncBN (cfg.sync_bn), cannot run it on CPU processes: one line, BN kept
    assert log.count("sync_bn='torch' asked for SyncBN, which needs GPUs") == 1
    assert 'training with BN' in log
    # the run's own record of its config: the Runner was not asked to convert BN, and the
    # model config holds BN as in a single process or the converter
    dumped = Config.fromfile(str(tmp_path / 'wd' / 'cfg.py'))
    assert dumped.get('sync_bn') is None and dumped.model.backbone.norm_cfg.type == 'BN'
    assert 'Distributed launcher: pytorch' in log or 'distributed: True' in log
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
    cfg_path = write_tiny_config(tmp_path / 'cfg.py', tiny_data, max_epochs=8)
    work_dir = str(tmp_path / 'wd')
    path = _kill_after_first_checkpoints(
        [PYTHON, 'tools/train.py', cfg_path, '--work-dir', work_dir, '--seed', '0'], work_dir, 2)
    epoch = int(osp.basename(path)[len('epoch_'):-4])
    assert epoch < 8, 'the run was not killed mid-training'
    checkpoint = torch.load(path, map_location='cpu')  # weights_only=True: safe globals suffice
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

    run_tool([PYTHON, 'tools/train.py', cfg_path, '--work-dir', work_dir, '--resume'])
    iters = [it for it, _ in train_losses(work_dir)]
    assert iters[-(32 - 4 * epoch):] == list(range(4 * epoch + 1, 33))
    assert osp.exists(osp.join(work_dir, 'epoch_8.pth'))


def test_same_seed_gives_identical_losses(tiny_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', tiny_data, max_epochs=1)
    runs = []
    for name in ('a', 'b'):
        run_tool([PYTHON, 'tools/train.py', cfg, '--work-dir', str(tmp_path / name), '--seed',
                  '42', '--deterministic'])
        runs.append(train_losses(tmp_path / name))
    assert len(runs[0]) == 4 and runs[0] == runs[1]


def test_images_without_boxes_give_finite_losses_and_gradients():
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from mmdet_efficientdet.model_cfg import efficientdet_model
    model = MODELS.build(efficientdet_model('d0', num_classes=4))
    model.init_weights()
    samples = []
    for boxes in ([], [[5.0, 5.0, 40.0, 50.0]]):
        sample = DetDataSample(metainfo=dict(img_shape=(96, 128), pad_shape=(96, 128),
                                             batch_input_shape=(96, 128)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes).reshape(-1, 4),
                                           labels=torch.zeros(len(boxes), dtype=torch.long))
        samples.append(sample)
    for batch in ([samples[0], samples[0]], samples):  # all-empty batch, and a mixed one
        model.zero_grad()
        losses = model.loss(torch.randn(len(batch), 3, 96, 128), batch)
        loss, _ = model.parse_losses(losses)
        assert torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message on a CPU-only machine')
def test_amp_without_a_device_gives_a_clear_message(tiny_data, tmp_path):
    cfg = write_tiny_config(tmp_path / 'cfg.py', tiny_data)
    proc = run_tool([PYTHON, 'tools/train.py', cfg, '--amp', '--work-dir', str(tmp_path)],
                    check=False)
    assert proc.returncode != 0
    assert '--amp: automatic mixed precision needs a CUDA' in proc.stderr
    assert 'Traceback' not in proc.stderr
