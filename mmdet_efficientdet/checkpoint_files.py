"""Local checkpoint files that cannot be loaded are named as such.

mmengine's loader for local paths hands ``torch.load``'s own error through: a text file named
``.pth`` gives ``IndexError: pop from empty list`` or a bare ``KeyError``. Ours (registered
for the same paths, loading them the same way, weights-only) says what the file is.
"""
import os.path as osp
import zipfile

import torch
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointFileError(ValueError):
    """A file that is not a loadable PyTorch checkpoint."""


def load_local_checkpoint(filename: str, map_location=None):
    """``torch.load`` of a local file (weights-only by torch's default), with one clear error
    for a file that is not a PyTorch checkpoint or holds objects weights-only loading refuses.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location)
    except Exception as error:  # torch.load's errors for foreign bytes are of many types
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        if 'Weights only load failed' in str(error):
            # torch's first line advises weights_only=False; the cause is further down
            detail = [line for line in lines[1:] if not line.startswith(('Check the doc',
                                                                         'Please file'))]
            reason = detail[0] if detail else lines[0]
        else:
            reason = f'{type(error).__name__} {lines[0] if lines else ""}'.strip()
        if zipfile.is_zipfile(filename) and 'GLOBAL' in reason:
            raise CheckpointFileError(
                f'{filename} holds Python objects that weights-only loading refuses ({reason}); '
                'loading it could run code, so it is not loaded') from error
        raise CheckpointFileError(f'{filename} is not a PyTorch checkpoint ({reason})') from error


def register_local_checkpoint_loader() -> None:
    """Make ``load_local_checkpoint`` mmengine's loader for local paths (what ``load_from``,
    ``init_cfg=Pretrained``, ``init_detector`` and the tools use)."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
