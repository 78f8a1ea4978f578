"""Train a detector with mmengine's Runner (MMDetection's tools/train.py, plus: works with
our configs and any plain mmdet config; checkpoints load weights-only, resume included;
CPU-only distributed runs use gloo; --amp on a machine that cannot do it says so instead of a
traceback; --resume never starts over existing checkpoints; errors end as one line, the
traceback in the log)."""
import argparse
import sys

from mmengine.hooks import Hook
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdet_efficientdet  # noqa: F401  (registers our components)
from mmdet_efficientdet.apis.checkpoints import enable_tool_checkpoints
from mmdet_efficientdet.converters import CheckpointFileError
from mmdet_efficientdet.apis.resume import resolve_resume, unreadable_resume_error
from mmdet_efficientdet.apis.runner_args import (add_runner_args, amp_unavailable_reason,
                                                 apply_randomness_args, load_runner_config)
from mmdet_efficientdet.apis.tool_errors import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    add_runner_args(parser)
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the real batch size (auto_scale_lr in the config)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or (no value) from the latest one '
                        'in the work dir')
    parser.add_argument('--seed', type=int, help='random seed')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (with --seed: repeatable losses)')
    return parser.parse_args(argv)


class StopIfAlreadyComplete(Hook):
    """After --resume: a checkpoint at or past the end of the schedule would train nothing
    and exit 0; say so and how to train on instead."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        by_epoch = hasattr(loop, 'max_epochs')
        done, end = (runner.epoch, loop.max_epochs) if by_epoch else (runner.iter,
                                                                      loop.max_iters)
        if done >= end:
            unit = 'epochs' if by_epoch else 'iters'
            sys.exit(f'--resume: the checkpoint ({runner.cfg.load_from}) is at {unit[:-1]} '
                     f'{done} of max_{unit}={end}: the run is already complete. To train on, '
                     f'raise it (--cfg-options train_cfg.max_{unit}={done + 10}; the '
                     "param_scheduler's end follows the config that sets it)")


def main(argv=None):
    args = parse_args(argv)
    enable_tool_checkpoints()  # weights-only resume of mmengine's checkpoints, clear errors
    cfg = load_runner_config(args)
    if args.amp:
        reason = amp_unavailable_reason()
        if reason:
            sys.exit(f'--amp: {reason}. Train without --amp (fp32) on this machine.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            sys.exit('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    apply_randomness_args(cfg, args.seed, args.deterministic)
    said = resolve_resume(cfg, args.resume)  # never starts over existing checkpoints
    if said:
        print(said, flush=True)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if cfg.get('resume'):
        runner.register_hook(StopIfAlreadyComplete())
    try:
        runner.train()
    except CheckpointFileError as error:
        if not cfg.get('resume'):
            raise
        raise unreadable_resume_error(cfg, error) from error


if __name__ == '__main__':
    run_tool(main, 'train.py')
