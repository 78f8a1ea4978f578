"""``tools/train.py --resume`` and fresh runs that never destroy a checkpoint."""
import glob
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config
from mmengine.runner import find_latest_checkpoint


class WorkDirError(RuntimeError):
    """A run that would lose checkpoints of an earlier run."""


def checkpoints_in(work_dir: str) -> List[str]:
    """The ``.pth`` files of ``work_dir``, oldest first (by modification time, then name)."""
    paths = glob.glob(osp.join(work_dir, '*.pth'))
    return sorted(paths, key=lambda path: (os.stat(path).st_mtime, path))


def _names(paths: List[str]) -> str:
    return ', '.join(osp.basename(path) for path in paths) or 'none'


def resolve_resume(cfg: Config, resume: Optional[str]) -> Optional[str]:
    """Set ``cfg.resume``/``cfg.load_from`` for ``--resume`` (``'auto'``: no value given) or a
    fresh run (``None``); returns a line for the user, or None. Raises ``WorkDirError``
    rather than start over existing checkpoints.

    ``auto``: the checkpoint ``last_checkpoint`` names; if that file is missing, the newest
    checkpoint in the work dir (said so); if there is none, from scratch (said so). A
    ``last_checkpoint`` naming a file that is gone is refused, listing the checkpoints that
    exist. A fresh run into a work dir holding checkpoints is refused (it would overwrite
    ``epoch_1.pth`` …).
    """
    work_dir = cfg.work_dir
    existing = checkpoints_in(work_dir)
    if resume is None:
        if existing:
            raise WorkDirError(
                f'{work_dir} already holds checkpoints ({_names(existing)}) that a new run '
                'would overwrite: pass --resume to continue from the newest, or another '
                '--work-dir to start over')
        return None
    cfg.resume = True
    if resume != 'auto':
        if osp.isdir(resume):
            raise WorkDirError(
                f'--resume {resume} is a folder; give one of its checkpoints '
                f'({_names(checkpoints_in(resume))}), or --resume alone with --work-dir '
                f'{resume} to continue from its latest')
        if not osp.isfile(resume):
            raise WorkDirError(f'--resume {resume}: no such file; checkpoints in {work_dir}: '
                               f'{_names(existing)}')
        cfg.load_from = resume
        return None
    marker = osp.join(work_dir, 'last_checkpoint')
    last = find_latest_checkpoint(work_dir) if osp.isfile(marker) else None  # mmengine's read
    if last is not None:
        if not osp.isfile(last):
            raise WorkDirError(
                f'--resume: {marker} names {last}, which is gone; checkpoints in {work_dir}: '
                f'{_names(existing)}. Pass --resume PATH to continue from one of them')
        cfg.load_from = last
        return f'--resume: continuing from {last} (named by {marker})'
    if existing:
        cfg.load_from = existing[-1]
        return (f'--resume: {work_dir} has no last_checkpoint file; continuing from its newest '
                f'checkpoint {osp.basename(existing[-1])}')
    cfg.resume = False
    cfg.load_from = None
    return f'--resume: no checkpoint in {work_dir}: starting from scratch'


def unreadable_resume_error(cfg: Config, error: Exception) -> WorkDirError:
    """The error for a checkpoint that ``--resume`` could not load: it names the other
    checkpoints of the work dir to continue from instead."""
    others = [path for path in checkpoints_in(cfg.work_dir)
              if osp.abspath(path) != osp.abspath(cfg.load_from or '')]
    hint = (f'; the other checkpoints of {cfg.work_dir}: {_names(others[::-1])}. Pass '
            f'--resume {others[-1]} to continue from the newest of them' if others else
            f'; {cfg.work_dir} holds no other checkpoint')
    return WorkDirError(f'--resume: {error}{hint}')
