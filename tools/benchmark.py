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
    """(params, FLOPs) of the whole detector and of its neck alone."""
    neck_params = sum(p.numel() for p in model.neck.parameters())
    model = TensorForward(model.eval())
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, torch.randn(1, 3, size, size))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        flops = analyzer.total()
        neck_flops = analyzer.by_module()['detector.neck']
    return params, flops, neck_params, neck_flops


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
    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads')

    if args.mode == 'complexity':
        rows = []
        for path in args.configs:
            rows.append((path, *complexity(MODELS.build(Config.fromfile(path).model),
                                           args.size)))
        base = rows[0]
        print(f'input {args.size}x{args.size}; FLOPs = multiply-adds; x = ratio to the first row')
        print(f'{"config":44s} {"params":>11s} {"GFLOPs":>7s} {"x":>5s} {"x":>5s} | '
              f'{"neck params":>11s} {"GFLOPs":>7s} {"x":>5s} {"x":>5s}')
        for path, params, flops, neck_params, neck_flops in rows:
            print(f'{path.split("/")[-1][:-3]:44s} {params:11,d} {flops / 1e9:7.2f} '
                  f'{params / base[1]:5.2f} {flops / base[2]:5.2f} | {neck_params:11,d} '
                  f'{neck_flops / 1e9:7.2f} {neck_params / base[3]:5.2f} '
                  f'{neck_flops / base[4]:5.2f}')
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
