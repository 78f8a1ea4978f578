"""Test (evaluate) a detector with mmengine's Runner (MMDetection's tools/test.py)."""
import argparse

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdet_efficientdet  # noqa: F401  (registers our components, safe checkpoint globals)
from mmdet_efficientdet.utils import add_runner_args, load_runner_config, run_tool


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to a pickle file')
    parser.add_argument('--show-dir', help='draw predictions (mmdet visualizer) into '
                        'work_dir/timestamp/<show-dir>')
    add_runner_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_runner_config(args)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        visualization = cfg.default_hooks.visualization
        visualization.draw = True
        visualization.test_out_dir = args.show_dir
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit(f'--out {args.out}: the output file must be a .pkl/.pickle file')
        cfg.test_evaluator = [*cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.test()


if __name__ == '__main__':
    run_tool(main, 'test.py')
