import math
import os.path as osp
from typing import Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import find_latest_checkpoint


class InvalidLossError(FloatingPointError):
    """Training produced a NaN or infinite loss (or weights)."""


@HOOKS.register_module()
class StopOnInvalidLossHook(Hook):
    """Stop training at the first NaN or infinite loss, and never save NaN weights.

    mmdet's ``CheckInvalidLossHook`` asserts every 50 iterations with no message; a run whose
    lr is far too high then trains on, logging ``loss: nan``, and its checkpoints hold NaN
    weights. This hook checks the loss after every iteration, and every checkpoint's weights
    before it is written, and stops with one message: the iteration, the loss terms, the
    learning rate, the last good checkpoint and what to try.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        loss = (outputs or {}).get('loss')
        if loss is None or bool(torch.isfinite(torch.as_tensor(loss)).all()):
            return
        terms = ', '.join(f'{name} {float(value):.4g}' for name, value in outputs.items()
                          if name.startswith('loss'))
        self._stop(runner, f'iteration {runner.iter + 1}: the loss is not finite ({terms})')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key, value in checkpoint.get('state_dict', {}).items():
            if torch.is_tensor(value) and value.is_floating_point() and \
                    not bool(torch.isfinite(value).all()):
                self._stop(runner, f'iteration {runner.iter}: weight {key} is not finite, so '
                           'no checkpoint is written')

    @staticmethod
    def _stop(runner, what: str) -> None:
        lrs = runner.optim_wrapper.get_lr() if hasattr(runner, 'optim_wrapper') else {}
        # the lr in use ('lr'), not the configured one mmengine also reports ('base_lr')
        lr = (lrs.get('lr') or [math.nan])[0]
        last = find_latest_checkpoint(runner.work_dir)
        kept = (f'the last good checkpoint is {last}' if last and osp.isfile(last) else
                'no checkpoint was written before it')
        raise InvalidLossError(
            f'{what} at lr {lr:.4g}; training stopped, {kept}. Try a lower lr (a config\'s '
            'optim_wrapper.optimizer.lr is for its auto_scale_lr.base_batch_size), gradient '
            'clipping (optim_wrapper.clip_grad), a longer warm-up, or check the data '
            '(tools/check_dataset.py)')
