"""The plugin changes nothing of its host on import; the tools turn on what they need."""
import subprocess
import sys

from mmdet.registry import MODELS, TASK_UTILS

OURS = ('TFEfficientNet', 'BiFPNNeck', 'EfficientDetHead', 'EfficientDetector')


def test_import_leaves_mmengine_and_torch_as_they_are():
    """In a fresh process: mmengine's checkpoint loaders, HistoryBuffer's pickling and torch's
    weights-only allow-list are the same before and after the import, which adds one scheme
    (``pkg://``, package files) to mmengine's ``CheckpointLoader`` and replaces none."""
    probe = '''
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
def state():
    return (dict(CheckpointLoader._schemes), HistoryBuffer.__getstate__,
            tuple(map(str, torch.serialization.get_safe_globals())))
before = state()
import mmdet_efficientdet
after = state()
added = set(after[0]) - set(before[0])
assert added == {'pkg://'}, added
assert {k: v for k, v in after[0].items() if k in before[0]} == before[0], 'a loader replaced'
assert after[1:] == before[1:], 'import changed its host'
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


def test_the_names_of_mmdets_projects_efficientdet_are_aliases():
    assert MODELS.get('EfficientDet') is MODELS.get('EfficientDetector')
    assert MODELS.get('BiFPN') is MODELS.get('BiFPNNeck')
