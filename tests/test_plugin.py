"""The plugin changes nothing of its host on import; the tools turn on what they need."""
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer

from mmdet_efficientdet.utils.checkpoints import enable_tool_checkpoints, \
    mmengine_checkpoint_globals

OURS = ('TFEfficientNet', 'BiFPNNeck', 'EfficientDetHead', 'EfficientDetector')


def test_import_leaves_mmengine_and_torch_as_they_are():
    """In a fresh process: mmengine's loader for local paths, HistoryBuffer's pickling and
    torch's weights-only allow-list are the same before and after the import."""
    probe = '''
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
def state():
    return (CheckpointLoader._schemes[''], HistoryBuffer.__getstate__,
            tuple(map(str, torch.serialization.get_safe_globals())))
before = state()
import mmdet_efficientdet
assert state() == before, 'import changed its host'
from mmdet.registry import MODELS
assert MODELS.get('EfficientDetector') is not None
print('unchanged')
'''
    proc = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True)
    assert proc.returncode == 0 and 'unchanged' in proc.stdout, proc.stderr[-2000:]


def test_registered_names_are_ours_and_mmdets_stay():
    for name in OURS:
        assert MODELS.get(name).__module__.startswith('mmdet_efficientdet.'), name
    assert TASK_UTILS.get('EfficientDetAnchorGenerator').__module__.startswith(
        'mmdet_efficientdet.')
    for name in ('EfficientNet', 'FPN', 'RetinaHead', 'RetinaNet', 'AnchorGenerator'):
        registry = TASK_UTILS if name == 'AnchorGenerator' else MODELS
        assert registry.get(name).__module__.startswith('mmdet.'), name


def _checkpoint():
    hub = MessageHub.get_instance('safe_globals_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(1.25))
    hub.update_info('epoch', np.int64(3))
    return dict(meta=dict(epoch=3, seed=np.int64(7)), message_hub=hub.state_dict(),
                state_dict={'w': torch.ones(2)})


def test_tools_load_mmengine_checkpoints_weights_only():
    enable_tool_checkpoints()
    buffer = io.BytesIO()
    torch.save(_checkpoint(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    history = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer) and history.current() == 1.25
    assert history.mean() == pytest.approx(1.375) and history.max() == 1.5  # defaults restored
    # exactly the classes mmengine's checkpoints hold, not getattr
    assert getattr not in torch.serialization.get_safe_globals()
    names = {getattr(g, '__name__', str(g)) for g in mmengine_checkpoint_globals()}
    assert names == {'HistoryBuffer', 'ndarray', '_reconstruct', 'dtype', 'scalar',
                     'Float64DType', 'Float32DType', 'Float16DType', 'Int64DType', 'Int32DType',
                     'BoolDType'}


def test_weights_only_still_refuses_other_globals():
    enable_tool_checkpoints()

    class Evil:
        def __reduce__(self):
            return (print, ('unpickled code ran',))

    buffer = io.BytesIO()
    torch.save({'x': Evil()}, buffer)
    buffer.seek(0)
    with pytest.raises(Exception, match='Unsupported global|not an allowed global'):
        torch.load(buffer, weights_only=True)
