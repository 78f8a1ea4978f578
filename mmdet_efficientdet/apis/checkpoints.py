"""Checkpoint safety that our tools (train, test, infer, export) turn on for their own process
with :func:`enable_tool_checkpoints`, never by importing the package.

* mmengine's loader for local paths hands ``torch.load``'s own error through: a text file
  named ``.pth`` gives ``IndexError: pop from empty list``. Ours
  (:func:`~mmdet_efficientdet.converters.load_local_checkpoint`, weights-only) says what the
  file is, and also reads the Runner state of checkpoints that mmengine wrote without
  ``WeightsOnlyCheckpointHook`` (mmdet's tools with a config of another project).
* mmengine writes a checkpoint straight into its file: a full disk leaves a cut-off
  ``epoch_N.pth`` and an error that names no file. Ours writes ``epoch_N.pth.part`` and
  renames it when complete, or removes it and names the file it could not write.

What every loader needs (mmdet's tools, ``init_detector``, ``DetInferencer``) comes with our
configs instead: ``WeightsOnlyCheckpointHook`` writes checkpoints that torch loads weights-only.
"""
import contextlib
import os
import os.path as osp

from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.runner.checkpoint import CheckpointLoader

from ..converters.checkpoint_io import CheckpointFileError, load_local_checkpoint

__all__ = ['AtomicLocalBackend', 'CheckpointFileError', 'enable_tool_checkpoints',
           'load_local_checkpoint']


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
    """What our tools turn on for their own process: local files load through
    :func:`load_local_checkpoint` (weights-only; files that are no checkpoints named as such)
    and checkpoints are written whole or not at all."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
