"""Make mmengine's own checkpoints load with ``torch.load(weights_only=True)``.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only`` and torch >= 2.6 defaults it to
True, so resuming fails on the classes mmengine pickles into a checkpoint's message hub.
We allow exactly those classes; weights-only loading stays on everywhere.

One more thing stands in the way: ``HistoryBuffer.__getstate__`` pickles its statistics
methods (``min``, ``max``, ``current``, ``mean``) as ``getattr(HistoryBuffer, name)``, which
would need the builtin ``getattr`` allowed in the unpickler, a far wider door than a class.
``__setstate__`` restores those four defaults anyway, so we pickle only custom ones.
"""
import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

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


def allow_mmengine_checkpoint_globals() -> None:
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
