from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ...converters.checkpoint_io import restore_history_buffers, weights_only_state


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Checkpoints that torch >= 2.6 loads weights-only, as every loader now does.

    mmengine 0.10.7 saves its message hub's ``HistoryBuffer`` objects and numpy scalars into
    each checkpoint, which torch's default weights-only loading refuses: mmdet's own
    ``tools/test.py``, ``--resume``, ``init_detector`` and ``DetInferencer`` fail on a
    checkpoint mmdet's ``tools/train.py`` just wrote. This hook writes that state as plain
    Python instead (:func:`~mmdet_efficientdet.converters.weights_only_state`) and turns it back
    into ``HistoryBuffer`` objects when a run resumes. Every config of ours declares it; it
    changes nothing outside the runs of the configs that declare it.

    Example:
        >>> custom_hooks = [dict(type='WeightsOnlyCheckpointHook')]
    """

    # last before saving: after the hooks that add to the checkpoint (EMAHook: 49)
    priority = 'LOWEST'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in ('message_hub', 'meta'):
            if key in checkpoint:
                checkpoint[key] = weights_only_state(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if isinstance(checkpoint.get('message_hub'), dict):
            restore_history_buffers(checkpoint['message_hub'])
