"""mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 defaults to
``weights_only=True``, so resuming from mmengine's own checkpoints fails on the classes its
``meta`` / message hub hold. Allow exactly those (never weights-only off globally)."""
import numpy as np
import torch


def mmengine_checkpoint_globals() -> list:
    from mmengine.logging.history_buffer import HistoryBuffer
    return [
        HistoryBuffer,
        np.core.multiarray._reconstruct,
        np.core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        type(np.dtype(np.float64)),
        type(np.dtype(np.float32)),
        type(np.dtype(np.int64)),
    ]


def allow_mmengine_checkpoint_globals() -> None:
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
