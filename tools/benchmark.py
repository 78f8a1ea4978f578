"""Figures for the README: parameters and FLOPs of configs, CPU latency of fusion modes and
of whole detectors. Prints a table; never a test.

    python tools/benchmark.py complexity configs/ablations/*.py --size 896
    python tools/benchmark.py speed --levels d0 d1 --size 512
    python tools/benchmark.py fusion --level d0 --size 512
    python tools/benchmark.py latency --level d0 --batch-sizes 1 8 --repeats 15
    python tools/benchmark.py memory --level d7 --size 1536
"""
import argparse
import copy
import os.path as osp
import statistics
import tempfile
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


def paired_timings(first, second, repeats):
    """Milliseconds of ``repeats`` calls of each, alternating (a slow phase of a shared
    machine then weighs on both alike), after one warm-up call of each."""
    first(), second()
    times = ([], [])
    for _ in range(repeats):
        for run, out in zip((first, second), times):
            start = time.perf_counter()
            run()
            out.append((time.perf_counter() - start) * 1000)
    return times


def latency_variants(level, size, batch_size):
    """(name, network-only callable, end-to-end callable) of each way to run the model."""
    from mmdet.structures import DetDataSample

    from mmdet_efficientdet.deploy import export_onnx, onnx_session
    torch.manual_seed(0)
    eager = MODELS.build(efficientdet_model(level))
    eager.init_weights()
    eager.eval()
    channels_last = copy.deepcopy(eager)
    channels_last.channels_last = True
    channels_last.to(memory_format=torch.channels_last)
    deploy = copy.deepcopy(channels_last)
    deploy.switch_to_deploy((size, size))
    folder = tempfile.mkdtemp()
    raw_path, det_path = osp.join(folder, 'raw.onnx'), osp.join(folder, 'det.onnx')
    export_onnx(copy.deepcopy(eager), raw_path, (size, size), batch_size)
    export_onnx(copy.deepcopy(eager), det_path, (size, size), batch_size, detections=True)
    raw_session, det_session = onnx_session(raw_path), onnx_session(det_path)

    inputs = torch.randn(batch_size, 3, size, size)
    # end to end: resized uint8 images (a 4:3 photo fitted into the square) → detections
    images = [torch.randint(0, 256, (3, size * 3 // 4, size), dtype=torch.uint8)
              for _ in range(batch_size)]
    meta = dict(img_shape=(size * 3 // 4, size), ori_shape=(size * 3 // 4 * 2, size * 2),
                scale_factor=(0.5, 0.5))

    def data():
        return dict(inputs=list(images),
                    data_samples=[DetDataSample(metainfo=meta) for _ in images])

    def network(model):
        return lambda: model._forward(inputs)

    def end_to_end(model):
        def run():
            batch = model.data_preprocessor(data())
            return model.predict(batch['inputs'], batch['data_samples'])
        return run

    def onnx_end_to_end():
        batch = eager.data_preprocessor(data())
        return det_session.run(None, {'inputs': batch['inputs'].numpy()})

    return [
        ('eager', network(eager), end_to_end(eager)),
        ('channels-last', network(channels_last), end_to_end(channels_last)),
        ('deploy (+channels-last)', network(deploy), end_to_end(deploy)),
        ('onnxruntime', lambda: raw_session.run(None, {'inputs': inputs.numpy()}),
         onnx_end_to_end),
    ]


def latency_table(level, size, batch_sizes, repeats):
    print(f'EfficientDet-{level} {size}x{size}; median ms per batch over {repeats} runs '
          '(min-max); x = median of eager / median')
    print(f'{"batch":>5s} {"variant":24s} {"network":>22s} {"x":>5s} {"end to end":>22s} '
          f'{"x":>5s} {"e2e/net":>7s}')
    for batch_size in batch_sizes:
        rows = []
        for name, network, end_to_end in latency_variants(level, size, batch_size):
            with torch.no_grad():
                rows.append((name, *paired_timings(network, end_to_end, repeats)))
        base_net, base_e2e = (statistics.median(t) for t in rows[0][1:])
        for name, net, e2e in rows:
            net_ms, e2e_ms = statistics.median(net), statistics.median(e2e)
            print(f'{batch_size:5d} {name:24s} {net_ms:8.1f} ({min(net):6.1f}-{max(net):6.1f}) '
                  f'{base_net / net_ms:5.2f} {e2e_ms:8.1f} ({min(e2e):6.1f}-{max(e2e):6.1f}) '
                  f'{base_e2e / e2e_ms:5.2f} {e2e_ms / net_ms:7.2f}')


def training_step_memory(level, size, with_cp):
    """(peak RSS GiB of this process, seconds) of one training step (forward, loss, backward)
    of EfficientDet-``level`` on one ``size``² image with two boxes."""
    import resource

    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    torch.manual_seed(0)
    model = MODELS.build(efficientdet_model(level, with_cp=with_cp, input_size=size)).train()
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                                         batch_input_shape=(size, size)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[size * 0.1, size * 0.2, size * 0.5, size * 0.6],
                             [size * 0.4, size * 0.3, size * 0.9, size * 0.8]]),
        labels=torch.tensor([1, 2]))
    inputs = torch.randn(1, 3, size, size)
    start = time.perf_counter()
    losses = model.loss(inputs, [sample])
    sum(v.sum() if isinstance(v, torch.Tensor) else sum(v) for v in losses.values()).backward()
    seconds = time.perf_counter() - start
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, seconds


def memory_table(level, size, max_gib):
    """One fresh process per variant, so that each peak is its own; each may address at most
    ``max_gib`` GiB (a step that needs more fails with a MemoryError, not the OOM killer)."""
    import subprocess
    import sys
    print(f'EfficientDet-{level}, one training step, batch 1 at {size}x{size}, CPU; peak RSS '
          'of the whole process (model, optimizer-free step, Python)')
    rows = []
    for with_cp in (False, True):
        out = subprocess.run(
            [sys.executable, __file__, '_memory_step', level, str(size), str(int(with_cp)),
             str(max_gib)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f'with_cp={str(with_cp):5s}  failed within {max_gib} GiB of address space: '
                  f'{out.stderr.strip().splitlines()[-1][:120]}')
            continue
        gib, seconds = map(float, out.stdout.strip().splitlines()[-1].split())
        rows.append((with_cp, gib, seconds))
        print(f'with_cp={str(with_cp):5s}  peak RSS {gib:6.2f} GiB  step {seconds:7.1f} s',
              flush=True)
    if len(rows) == 2:
        print(f'with_cp: {rows[1][1] / rows[0][1]:.2f}x the memory, '
              f'{rows[1][2] / rows[0][2]:.2f}x the time')


def main():
    import sys
    if len(sys.argv) == 6 and sys.argv[1] == '_memory_step':  # one variant, in a child
        import resource
        limit = int(float(sys.argv[5]) * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        register_all_modules()
        gib, seconds = training_step_memory(sys.argv[2], int(sys.argv[3]), sys.argv[4] == '1')
        print(gib, seconds)
        return
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
    p = sub.add_parser('latency', help='network-only and end-to-end latency: eager, '
                       'channels-last, deploy mode, onnxruntime')
    p.add_argument('--level', default='d0')
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    p.add_argument('--repeats', type=int, default=15)
    p = sub.add_parser('memory', help='peak memory of a training step with and without '
                       'activation checkpointing (with_cp)')
    p.add_argument('--level', default='d7')
    p.add_argument('--size', type=int, default=1536)
    p.add_argument('--max-gib', type=float, default=20,
                   help='address space each step may use (this machine: 24 GiB, no swap)')
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
    elif args.mode == 'memory':
        memory_table(args.level, args.size, args.max_gib)
    elif args.mode == 'latency':
        latency_table(args.level, args.size, args.batch_sizes, args.repeats)
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
