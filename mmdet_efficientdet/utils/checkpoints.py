"""Checkpoint safety for our tools (train, test, infer, export): switched on by the tools with
:func:`enable_tool_checkpoints`, never by importing the package.

* mmengine 0.10.7 calls ``torch.load`` without ``weights_only`` and torch >= 2.6 defaults it
  to True, so resuming fails on the classes mmengine pickles into a checkpoint's message hub.
  We allow exactly those classes; weights-only loading stays on everywhere.
* ``HistoryBuffer.__getstate__`` pickles its statistics methods (``min``, ``max``,
  ``current``, ``mean``) as ``getattr(HistoryBuffer, name)``, which would need the builtin
  ``getattr`` allowed in the unpickler, a far wider door than a class. ``__setstate__``
  restores those four defaults anyway, so the tools' runs pickle only custom ones.
* mmengine's loader for local paths hands ``torch.load``'s own error through: a text file
  named ``.pth`` gives ``IndexError: pop from empty list``. Ours (for the same paths, loading
  them the same way, weights-only) says what the file is.
* mmengine writes a checkpoint straight into its file: a full disk leaves a cut-off
  ``epoch_N.pth`` and an error that names no file. Ours writes ``epoch_N.pth.part`` and
  renames it when complete, or removes it and names the file it could not write.
"""
import contextlib
import os
import os.path as osp

import numpy as np
import torch
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from ..converters.effdet import CheckpointFileError, load_local_checkpoint

__all__ = ['AtomicLocalBackend', 'CheckpointFileError', 'enable_tool_checkpoints',
           'load_local_checkpoint', 'mmengine_checkpoint_globals']

_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')
# numpy scalars / arrays in the message hub are of these; unpickling builds a dtype instance,
# which needs its concrete class (numpy.dtypes.Float64DType, ...).
_NUMPY_DTYPES = ('float64', 'float32', 'float16', 'int64', 'int32', 'bool')


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    custom = {name: method for name, method in self._statistics_methods.items()
              if name not in _DEFAULT_STATISTICS}
    if custom:
        state['statistics_methods'] = custom
    return state


def mmengine_checkpoint_globals() -> list:
    """The classes a checkpoint written by mmengine's Runner holds besides tensors."""
    return [
        HistoryBuffer,  # message hub scalars
        np.ndarray,  # their history arrays ...
        np.core.multiarray._reconstruct,
        np.dtype,
        np.core.multiarray.scalar,  # ... and numpy scalars in runtime info
        *[type(np.dtype(name)) for name in _NUMPY_DTYPES],
    ]


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, whose ``put`` (what checkpoints are written with) never
    leaves a partial file and names the file it could not write."""

    def put(self, obj: bytes, filepath) -> None:
        filepath = str(filepath)
        os.makedirs(osp.dirname(osp.abspath(filepath)), exist_ok=True)
        partial = filepath + '.part'
        try:
            with open(partial, 'wb') as f:
                f.write(obj)
            os.replace(partial, filepath)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise OSError(error.errno, f'could not write {filepath} ({error.strerror or error}):'
                          ' nothing was written there; the files written before it are '
                          'kept') from error


def enable_tool_checkpoints() -> None:
    """What our tools turn on for their own process: mmengine's checkpoints load weights-only
    (the classes above allowed, ``HistoryBuffer`` pickled without ``getattr``), local files
    that are no checkpoints are named as such, and checkpoints are written whole or not at
    all."""
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
