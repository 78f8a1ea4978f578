"""mmdet's own tools and APIs on our configs and on the checkpoints they write, unmodified, in
processes of their own, loading weights-only as torch >= 2.6 does by default."""
import glob
import io
import os.path as osp

import mmdet
import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer

from mmdet_efficientdet.converters import (CheckpointFileError, load_local_checkpoint,
                                           restore_history_buffers, weights_only_state)

from .conftest import PYTHON, run_tool, tiny_config

MMDET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')


def mmdet_tool(name, *args):
    return run_tool([PYTHON, osp.join(MMDET_TOOLS, f'{name}.py'), *map(str, args)])


def test_mmdet_train_resume_test_and_apis(tiny_data, tmp_path):
    cfg = tiny_config(tmp_path, tiny_data, max_epochs=1)
    work_dir = tmp_path / 'wd'
    mmdet_tool('train', cfg, '--work-dir', work_dir)
    first = work_dir / 'epoch_1.pth'
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(first)) == []
    proc = mmdet_tool('train', cfg, '--work-dir', work_dir, '--resume',
                      '--cfg-options', 'train_cfg.max_epochs=2')
    assert 'resumed epoch: 1, iter: 4' in proc.stdout + proc.stderr
    last = work_dir / 'epoch_2.pth'
    resumed = torch.load(last, weights_only=True)
    loss = resumed['message_hub']['log_scalars']['train/loss']
    assert len(loss['log_history']) == 8  # the first run's 4 iterations kept, 4 more
    out = tmp_path / 'results.pkl'
    # every score kept: after two tiny epochs none may pass the config's 0.05, and then
    # CocoMetric reports no mAP at all
    every_score = ('--cfg-options', 'model.test_cfg.score_thr=0.0')
    proc = mmdet_tool('test', cfg, last, '--work-dir', tmp_path / 'test', '--out', out,
                      *every_score)
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr and out.exists()
    proc = mmdet_tool('test', cfg, last, '--work-dir', tmp_path / 'tta', '--tta', *every_score)
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr

    image = sorted(glob.glob(osp.join(tiny_data, 'val', '*')))[0]
    probe = f'''
from mmdet.apis import DetInferencer, inference_detector, init_detector
model = init_detector({str(cfg)!r}, {str(last)!r}, device='cpu')
print('init_detector', len(inference_detector(model, {image!r}).pred_instances))
inferencer = DetInferencer(model={str(cfg)!r}, weights={str(last)!r}, device='cpu')
print('DetInferencer', len(inferencer({image!r}, no_save_pred=True)['predictions'][0]['scores']))
'''
    proc = run_tool([PYTHON, '-c', probe])
    counts = dict(line.split() for line in proc.stdout.splitlines()
                  if line.startswith(('init_detector ', 'DetInferencer ')))
    assert counts.keys() == {'init_detector', 'DetInferencer'}, proc.stdout


def _runner_checkpoint():
    hub = MessageHub.get_instance('weights_only_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(1.25))
    hub.update_info('eta', np.float64(3.0))
    return dict(meta=dict(epoch=3, seed=np.int64(7)), message_hub=hub.state_dict(),
                state_dict={'w': torch.ones(2)})


def test_weights_only_form_round_trip():
    checkpoint = _runner_checkpoint()
    plain = {key: weights_only_state(value) for key, value in checkpoint.items()}
    buffer = io.BytesIO()
    torch.save(plain, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # torch's own allow-list, nothing added
    assert loaded['meta']['seed'] == 7 and loaded['message_hub']['runtime_info']['eta'] == 3.0
    history = restore_history_buffers(loaded['message_hub'])['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer)
    assert (history.current(), history.mean(), history.max()) == (1.25, 1.375, 1.5)


def test_checkpoints_written_without_the_hook_load_and_nothing_else_runs(tmp_path):
    """mmengine pickles HistoryBuffer's statistics through getattr: read, with getattr
    limited to them; any other getattr or global is refused with the true cause."""
    path = str(tmp_path / 'mmengine.pth')
    torch.save(_runner_checkpoint(), path)
    assert 'builtins.getattr' in torch.serialization.get_unsafe_globals_in_checkpoint(path)
    loaded = load_local_checkpoint(path)
    history = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer) and history.mean() == 1.375
    assert getattr not in torch.serialization.get_safe_globals()  # scoped to that one call

    class Evil:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__subclasses__'))

    class EvilGlobal:
        def __reduce__(self):
            return (print, ('unpickled code ran',))

    for name, evil in (('getattr', Evil()), ('global', EvilGlobal())):
        bad = str(tmp_path / f'{name}.pth')
        torch.save({'x': evil}, bad)
        with pytest.raises(CheckpointFileError, match='weights-only loading refuses'):
            load_local_checkpoint(bad)
