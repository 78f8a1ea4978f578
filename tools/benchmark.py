"""Figures for the README: parameters and FLOPs of configs, CPU latency of fusion modes and
of whole detectors. Prints a table; never a test.

    python tools/benchmark.py complexity configs/ablations/*.py --size 896
    python tools/benchmark.py speed --levels d0 d1 --size 512
    python tools/benchmark.py fusion --level d0 --size 512
"""
import argparse
import time

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config

import mmdet_efficientdet  # noqa: F401
from mmdet_efficientdet.model_cfg import efficientdet_model


class TensorForward(torch.nn.Module):
    """A detector as image tensor → head outputs (what FLOP counters can trace)."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, x):
        return self.detector._forward(x)


def complexity(model, size):
    model = TensorForward(model.eval())
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, torch.randn(1, 3, size, size))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        flops = analyzer.total()
    return params, flops


def latency(module, inputs, repeats):
    module.eval()
    with torch.no_grad():
        module(inputs)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            module(inputs)
    return (time.perf_counter() - start) / repeats * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='mode', required=True)
    p = sub.add_parser('complexity', help='params and FLOPs (multiply-adds) of configs')
    p.add_argument('configs', nargs='+')
    p.add_argument('--size', type=int, default=896)
    p = sub.add_parser('speed', help='CPU inference latency of EfficientDet levels')
    p.add_argument('--levels', nargs='+', default=['d0'])
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--repeats', type=int, default=5)
    p = sub.add_parser('fusion', help='CPU latency of the BiFPN neck per fusion mode')
    p.add_argument('--level', default='d0')
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--repeats', type=int, default=10)
    args = parser.parse_args()
    register_all_modules()
    torch.set_num_threads(torch.get_num_threads())
    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads')

    if args.mode == 'complexity':
        rows = []
        for path in args.configs:
            params, flops = complexity(MODELS.build(Config.fromfile(path).model), args.size)
            rows.append((path, params, flops))
        base = rows[0]
        print(f'{"config":60s} {"params":>12s} {"GFLOPs":>8s} {"params x":>8s} {"FLOPs x":>8s}'
              f'   (input {args.size}x{args.size}, ratios to the first row)')
        for path, params, flops in rows:
            print(f'{path:60s} {params:12,d} {flops / 1e9:8.2f} {params / base[1]:8.2f} '
                  f'{flops / base[2]:8.2f}')
    elif args.mode == 'speed':
        for level in args.levels:
            model = TensorForward(MODELS.build(efficientdet_model(level)))
            ms = latency(model, torch.randn(1, 3, args.size, args.size), args.repeats)
            print(f'EfficientDet-{level} {args.size}x{args.size} batch 1: {ms:8.1f} ms/img')
    else:
        from mmdet_efficientdet.scaling import efficientdet_dims
        d = efficientdet_dims(args.level)
        feats = [torch.randn(1, c, args.size // s, args.size // s)
                 for c, s in zip(d['backbone_channels'], (8, 16, 32))]
        for fusion in ('softmax', 'fast', 'sum'):
            neck = MODELS.build(dict(efficientdet_model(args.level)['neck'], fusion=fusion))
            ms = latency(neck, feats, args.repeats)
            print(f'BiFPN {args.level} ({d["width"]}x{d["fpn_repeats"]}) {args.size}px '
                  f'fusion={fusion:8s}: {ms:8.1f} ms')


if __name__ == '__main__':
    main()
