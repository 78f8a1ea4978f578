"""Figures for the README: parameters and FLOPs of configs, CPU latency of fusion modes and
of whole detectors. Prints a table; never a test.

    python tools/benchmark.py complexity configs/ablations/*.py --size 896
    python tools/benchmark.py speed --levels d0 d1 --size 512
    python tools/benchmark.py fusion --level d0 --size 512
    python tools/benchmark.py latency --level d0 --batch-sizes 1 --repeats 15 [--variants ...]
    python tools/benchmark.py memory --level d7 --size 1536
"""
import argparse
import copy
import functools
import logging
import os.path as osp
import statistics
import tempfile
import time

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.logging import MMLogger

import mmdet_efficientdet  # noqa: F401
from mmdet_efficientdet.apis.level_configs import level_model_cfg
from mmdet_efficientdet.apis.measure import complexity, median_ms
from mmdet_efficientdet.apis.tool_errors import run_tool
from mmdet_efficientdet.deploy import switch_to_deploy
from mmdet_efficientdet.scaling import D_LEVELS


def interleaved_timings(calls, repeats, settle_s=0.02):
    """Milliseconds of ``repeats`` calls of each of ``calls``, taken in turn (each repeat
    runs every one once, so a slow phase of a shared machine weighs on all alike), after one
    warm-up call of each. Each call starts ``settle_s`` after the one before: torch's OpenMP
    workers spin on for a few ms after a parallel operation and slow the next call."""
    for call in calls:
        call()
    times = [[] for _ in calls]
    for _ in range(repeats):
        for call, out in zip(calls, times):
            time.sleep(settle_s)
            start = time.perf_counter()
            call()
            out.append((time.perf_counter() - start) * 1000)
    return times


@torch.no_grad()
def spread_class_logits(model, inputs, std=2.0):
    """Scale the class prediction's weights of a randomly initialised ``model`` so that its
    logits spread around the prior with ``std``, as a trained detector's do. Random weights
    give every (anchor, class) pair the prior's logit ±1e-4: ties (int8 rounds them into
    thousands-way ones) that no trained detector has, and that only the selection's cost
    depends on."""
    head = model.bbox_head
    logits = torch.cat([c.flatten() for c in head(model.extract_feat(inputs))[0]])
    head.conv_cls.pointwise.conv.weight.mul_(std / logits.std())


LATENCY_VARIANTS = ('eager', 'deploy', 'onnxruntime', 'openvino', 'openvino-bf16',
                    'openvino-int8', 'onnxruntime-int8', 'reference-export')


class LatencyVariants:
    """The ways to run EfficientDet-``level`` at ``size``² and ``batch_size`` that ``latency``
    times: ``rows(names)`` gives (name, network-only callable or None, end-to-end callable or
    None) of each. End to end: resized uint8 images → the model's ``test_step``
    (preprocessing, the network and selection (hard NMS, as the exported graph has it), boxes
    mapped back to the image), a runtime's model run as :class:`RuntimeDetector` runs it in
    mmdet's tools. 'reference-export' is the same network as an effdet user exports it (no
    deploy form: BN separate, padding computed at run time), in onnxruntime and OpenVINO
    (fp32, the bf16 hint, and int8 by NNCF as ours): the bar to compare with."""

    # name: (label, method, its arguments)
    TABLE = {
        'eager': ('eager', 'torch_rows', ()),
        'deploy': ('deploy (BN folded, static padding)', 'deploy_rows', ()),
        'onnxruntime': ('onnxruntime fp32', 'runtime_rows', ('onnxruntime', )),
        'openvino': ('openvino fp32', 'runtime_rows', ('openvino', )),
        'openvino-bf16': ('openvino bf16 hint', 'runtime_rows', ('openvino', 'bf16')),
        'openvino-int8': ('openvino int8 (NNCF)', 'runtime_rows', ('openvino', 'fp32', True)),
        'onnxruntime-int8': ('onnxruntime int8 (QDQ)', 'runtime_rows',
                             ('onnxruntime', 'fp32', True)),
    }

    def __init__(self, level, size, batch_size):
        from mmdet.structures import DetDataSample
        torch.manual_seed(0)
        self.size, self.batch_size = size, batch_size
        self.cfg = level_model_cfg(level)
        self.cfg.test_cfg.nms = dict(type='nms', iou_threshold=0.5)
        self.cfg.data_preprocessor.pad_size_divisor = size  # padded to the square timed here
        self.eager = MODELS.build(self.cfg)
        logger = MMLogger.get_current_instance()  # not its INFO report of every parameter
        log_level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            self.eager.init_weights()
        finally:
            logger.setLevel(log_level)
        self.eager.eval()
        self.inputs = torch.randn(batch_size, 3, size, size)
        spread_class_logits(self.eager, self.inputs)
        self.folder = tempfile.mkdtemp()
        self.paths = {}
        # end to end: resized uint8 images (a 4:3 photo fitted into the square) → detections
        self.images = [torch.randint(0, 256, (3, size * 3 // 4, size), dtype=torch.uint8)
                       for _ in range(batch_size)]
        meta = dict(img_shape=(size * 3 // 4, size), ori_shape=(size * 3 // 4 * 2, size * 2),
                    scale_factor=(0.5, 0.5))
        self.data = lambda: dict(inputs=list(self.images),
                                 data_samples=[DetDataSample(metainfo=meta)
                                               for _ in self.images])

    def rows(self, names):
        out = []
        for name in names:
            if name == 'reference-export':
                out.extend(self.reference_rows())
                continue
            label, method, args = self.TABLE[name]
            out.append((label, *getattr(self, method)(*args)))
        return out

    def exported(self, kind):
        """An ONNX file of the model: 'raw' (head outputs), 'det' (detections in the graph),
        'reference' (raw, no deploy form)."""
        from mmdet_efficientdet.deploy import export_onnx
        if kind not in self.paths:
            self.paths[kind] = osp.join(self.folder, f'{kind}.onnx')
            export_onnx(copy.deepcopy(self.eager), self.paths[kind], (self.size, self.size),
                        self.batch_size, detections=kind == 'det', deploy=kind != 'reference')
        return self.paths[kind]

    @functools.cached_property
    def calibration(self):  # latency does not depend on what int8 was calibrated on
        batches = []
        for _ in range(8):
            batch = self.eager.data_preprocessor(self.data())['inputs']
            padded = batch.new_zeros((self.batch_size, 3, self.size, self.size))
            padded[..., :batch.shape[-2], :batch.shape[-1]] = batch
            batches.append(padded.numpy())
        return batches

    def torch_rows(self, model=None):
        model = model or self.eager
        return (lambda: model._forward(self.inputs)), (lambda: model.test_step(self.data()))

    def deploy_rows(self):
        deployed = copy.deepcopy(self.eager)
        switch_to_deploy(deployed, (self.size, self.size))
        return self.torch_rows(deployed)

    def runtime_rows(self, backend, precision='fp32', int8=False):
        from mmdet_efficientdet.deploy import RuntimeDetector, get_runtime, runtime_session
        raw, det = self.exported('raw'), self.exported('det')
        if int8:
            runtime = get_runtime(backend)
            raw_q, det_q = (osp.join(self.folder, f'{k}_int8_{backend}{runtime.suffix}')
                            for k in ('raw', 'det'))
            runtime.quantize(raw, raw_q, self.calibration)
            runtime.quantize(det, det_q, self.calibration)
            raw, det = raw_q, det_q
        threads = torch.get_num_threads()
        net = runtime_session(raw, backend, threads, precision)
        detector = RuntimeDetector(det, backend, self.cfg.data_preprocessor, precision,
                                   num_threads=threads)
        return (lambda: net(self.inputs.numpy())), (lambda: detector.test_step(self.data()))

    def reference_rows(self):
        from mmdet_efficientdet.deploy import get_runtime, runtime_session
        rows = []
        for backend, precision in (('onnxruntime', 'fp32'), ('openvino', 'fp32'),
                                   ('openvino', 'bf16'), ('openvino', 'int8')):
            path = self.exported('reference')
            if precision == 'int8':  # NNCF, as tools/quantize.py quantizes ours
                path = osp.join(self.folder, 'reference_int8.xml')
                get_runtime('openvino').quantize(self.exported('reference'), path,
                                                 self.calibration)
            run = runtime_session(path, backend, torch.get_num_threads(),
                                  'bf16' if precision == 'bf16' else 'fp32')
            label = f'reference export, {backend}' + ('' if precision == 'fp32' else
                                                      f' {precision}')
            rows.append((label, lambda run=run: run(self.inputs.numpy()), None))
        return rows


def latency_table(level, size, batch_sizes, repeats, names=LATENCY_VARIANTS):
    print(f'EfficientDet-{level} {size}x{size}; median ms per batch over {repeats} runs '
          f'(min-max), {torch.get_num_threads()} threads; x = the eager median / this median '
          '(same run)')
    print(f'{"batch":>5s} {"variant":36s} {"network":>22s} {"x":>5s} {"end to end":>22s} '
          f'{"x":>5s} {"e2e/net":>7s}')

    def cell(times, base):
        if not times:
            return ' ' * 28, None
        ms = statistics.median(times)
        spread = f'({min(times):6.1f}-{max(times):6.1f})'
        return f'{ms:8.1f} {spread} {base / ms if base else 1:5.2f}', ms

    for batch_size in batch_sizes:
        rows = LatencyVariants(level, size, batch_size).rows(names)
        # every variant's network and end to end taken in turn, repeat after repeat
        calls = [call for _, network, end_to_end in rows
                 for call in (network, end_to_end) if call is not None]
        with torch.no_grad():
            times = iter(interleaved_timings(calls, repeats))
        base_net = base_e2e = None
        ours, references = [], []
        for name, network, end_to_end in rows:
            net_times = next(times)
            e2e_times = next(times) if end_to_end is not None else []
            if base_net is None:
                base_net, base_e2e = statistics.median(net_times), statistics.median(e2e_times)
            net_text, net_ms = cell(net_times, base_net)
            e2e_text, e2e_ms = cell(e2e_times, base_e2e)
            ratio = f'{e2e_ms / net_ms:7.2f}' if e2e_ms else ''
            print(f'{batch_size:5d} {name:36s} {net_text} {e2e_text} {ratio}', flush=True)
            if e2e_ms is None:  # the reference export: its network alone
                references.append((net_ms, name))
            else:
                ours.append((e2e_ms, name))
        if ours and base_e2e:
            fastest, name = min(ours)
            line = (f'fastest end to end: {name}, {fastest:.1f} ms = '
                    f'{fastest / base_e2e:.2f}x eager')
            if references:
                line += '; x the reference export\'s network in ' + ', '.join(
                    f'{reference.split(", ", 1)[-1]}: {fastest / network:.2f}'
                    for network, reference in references)
            print(line)


def training_step_memory(level, size, with_cp):
    """(peak RSS GiB of this process, seconds) of one training step (forward, loss, backward)
    of EfficientDet-``level`` on one ``size``² image with two boxes."""
    import resource

    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    torch.manual_seed(0)
    cfg = level_model_cfg(level)
    for part in ('backbone', 'neck', 'bbox_head'):
        cfg[part]['with_cp'] = with_cp
    model = MODELS.build(cfg).train()
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
            [sys.executable, __file__, 'memory-step', '--level', level, '--size', str(size),
             '--max-gib', str(max_gib)] + (['--with-cp'] if with_cp else []),
            capture_output=True, text=True)
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


def dataset_check_cost(images, boxes_per_image, folder):
    """Seconds CheckDatasetHook takes on one rank for a COCO-sized training set it makes in
    ``folder``: ``images`` image files (small JPEGs) and ``boxes_per_image`` boxes each."""
    import json
    import os

    import cv2
    import numpy as np

    from mmdet_efficientdet.engine.hooks.check_dataset_hook import CheckDatasetHook
    os.makedirs(osp.join(folder, 'train'), exist_ok=True)
    jpeg = cv2.imencode('.jpg', np.full((48, 64, 3), 127, np.uint8))[1].tobytes()
    coco = dict(images=[], annotations=[], categories=[dict(id=1, name='thing')])
    for index in range(images):
        name = f'{index:012d}.jpg'
        with open(osp.join(folder, 'train', name), 'wb') as f:
            f.write(jpeg)
        coco['images'].append(dict(id=index, file_name=name, width=64, height=48))
        coco['annotations'] += [dict(id=index * boxes_per_image + k, image_id=index,
                                     category_id=1, bbox=[4, 4, 20, 20], area=400, iscrowd=0)
                                for k in range(boxes_per_image)]
    with open(osp.join(folder, 'train.json'), 'w') as f:
        json.dump(coco, f)
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        data_root=folder + '/', ann_file='train.json', data_prefix=dict(img='train/'),
        metainfo=dict(classes=('thing', ))))))
    seconds = {}
    for check_files in (False, True):
        start = time.perf_counter()
        error, _ = CheckDatasetHook(check_files=check_files).verdict(cfg)
        seconds[check_files] = time.perf_counter() - start
        assert error is None, error
    return seconds


def run_complexity(args) -> None:
    rows = []
    for path in args.configs:
        model = MODELS.build(Config.fromfile(path).model)
        found = complexity(model, torch.randn(1, 3, args.size, args.size))
        rows.append((path, found['params'], found['flops'], found['neck_params'],
                     found['neck_flops']))
    base = rows[0]
    print(f'input {args.size}x{args.size}; FLOPs = multiply-adds; x = ratio to the first row')
    print(f'{"config":44s} {"params":>11s} {"GFLOPs":>7s} {"x":>5s} {"x":>5s} | '
          f'{"neck params":>11s} {"GFLOPs":>7s} {"x":>5s} {"x":>5s}')
    for path, params, flops, neck_params, neck_flops in rows:
        print(f'{path.split("/")[-1][:-3]:44s} {params:11,d} {flops / 1e9:7.2f} '
              f'{params / base[1]:5.2f} {flops / base[2]:5.2f} | {neck_params:11,d} '
              f'{neck_flops / 1e9:7.2f} {neck_params / base[3]:5.2f} '
              f'{neck_flops / base[4]:5.2f}')


def run_speed(args) -> None:
    inputs = torch.randn(1, 3, args.size, args.size)
    for level in args.levels:
        model = MODELS.build(level_model_cfg(level)).eval()
        ms = median_ms(lambda: model(inputs), args.repeats)
        print(f'EfficientDet-{level} {args.size}x{args.size} batch 1: {ms:8.1f} ms/img')


def run_fusion(args) -> None:
    from mmdet_efficientdet.scaling import efficientdet_dims
    d = efficientdet_dims(args.level)
    feats = [torch.randn(1, c, args.size // s, args.size // s)
             for c, s in zip(d['backbone_channels'], (8, 16, 32))]
    for fusion in ('softmax', 'fast', 'sum'):
        neck = MODELS.build(dict(level_model_cfg(args.level)['neck'], fusion=fusion)).eval()
        ms = median_ms(lambda: neck(feats), args.repeats)
        print(f'BiFPN {args.level} ({d["width"]}x{d["fpn_repeats"]}) {args.size}px '
              f'fusion={fusion:8s}: {ms:8.1f} ms')


def run_memory_step(args) -> None:
    """One variant of ``memory``, in a process of its own (``memory_table`` starts it)."""
    import resource
    limit = int(args.max_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    gib, seconds = training_step_memory(args.level, args.size, args.with_cp)
    print(gib, seconds)


def run_dataset_check(args) -> None:
    with tempfile.TemporaryDirectory() as folder:
        seconds = dataset_check_cost(args.images, args.boxes_per_image, folder)
    print(f'CheckDatasetHook, {args.images} images, {args.images * args.boxes_per_image} '
          f'boxes: annotations only (check_files=False) {seconds[False]:.1f} s, with the '
          f'image files (default) {seconds[True]:.1f} s, on rank 0 only')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='mode', required=True)
    p = sub.add_parser('complexity', help='params and FLOPs (multiply-adds) of configs')
    p.add_argument('configs', nargs='+')
    p.add_argument('--size', type=int, default=896)
    p = sub.add_parser('speed', help='CPU inference latency of EfficientDet levels')
    p.add_argument('--levels', nargs='+', default=['d0'], choices=list(D_LEVELS))
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--repeats', type=int, default=5)
    p = sub.add_parser('latency', help='network-only and end-to-end latency: eager, deploy '
                       'mode, onnxruntime and OpenVINO (fp32, bf16, int8)')
    p.add_argument('--variants', nargs='+', default=list(LATENCY_VARIANTS),
                   choices=LATENCY_VARIANTS)
    p.add_argument('--level', default='d0', choices=list(D_LEVELS))
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    p.add_argument('--repeats', type=int, default=15)
    for name, hidden in (('memory', False), ('memory-step', True)):
        p = sub.add_parser(name, help=argparse.SUPPRESS if hidden else (
            'peak memory of a training step with and without activation checkpointing '
            '(with_cp)'))
        p.add_argument('--level', default='d7', choices=list(D_LEVELS))
        p.add_argument('--size', type=int, default=1536)
        p.add_argument('--max-gib', type=float, default=20,
                       help='address space each step may use (this machine: 24 GiB, no swap)')
        if hidden:
            p.add_argument('--with-cp', action='store_true')
    p = sub.add_parser('fusion', help='CPU latency of the BiFPN neck per fusion mode')
    p.add_argument('--level', default='d0', choices=list(D_LEVELS))
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--repeats', type=int, default=10)
    p = sub.add_parser('dataset-check', help='what CheckDatasetHook costs (rank 0) on a '
                       'COCO-sized training set it writes into a temporary folder')
    p.add_argument('--images', type=int, default=118287)  # COCO train2017
    p.add_argument('--boxes-per-image', type=int, default=7)  # 860k boxes, as COCO's
    return parser.parse_args(argv)


MODES = {
    'complexity': run_complexity,
    'speed': run_speed,
    'latency': lambda args: latency_table(args.level, args.size, args.batch_sizes,
                                          args.repeats, args.variants),
    'memory': lambda args: memory_table(args.level, args.size, args.max_gib),
    'memory-step': run_memory_step,
    'fusion': run_fusion,
    'dataset-check': run_dataset_check,
}


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    if args.mode not in ('dataset-check', 'memory-step'):
        print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads')
    MODES[args.mode](args)


if __name__ == '__main__':
    run_tool(main, 'benchmark.py')
