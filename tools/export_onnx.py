"""Export a detector of ours (EfficientDet D0–D7x, Lite, ablations) to ONNX and check it in
a CPU runtime against PyTorch.

    python tools/export_onnx.py CONFIG CHECKPOINT --out model.onnx [--shape H W] [--dynamic]
        [--detections] [--batch-size N] [--no-deploy] [--no-check] [--backend openvino]

By default the graph takes a preprocessed (normalised, padded) batch at the level's input
size and returns the head's raw outputs; --dynamic lets it take any height and width (and
batch size, for raw outputs), "same" padding and anchors then being computed in the graph;
--detections puts the reference's selection (top-k over all levels, decode, clip, NMS, best
K) into the graph, so that the file alone turns a preprocessed image into dets (x1, y1, x2,
y2, score) and labels. The model is switched to its deploy form first (BN folded, static
padding) unless --no-deploy. Without --no-check the export is run once and compared with
PyTorch on a random input (a dynamic one at a second size too), by onnxruntime or, with
--backend openvino, by OpenVINO (which reads the .onnx file as it is).
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import load_checkpoint

import mmdet_efficientdet  # noqa: F401  (registers our components)
from mmdet_efficientdet.engine.config_checks import fixed_input_size
from mmdet_efficientdet.deploy import export_onnx, runtime_names, runtime_session, same_detections
from mmdet_efficientdet.apis.checkpoints import enable_tool_checkpoints
from mmdet_efficientdet.apis.tool_errors import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint (tools/train.py or convert_weights.py)')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="input size (default: the config's padded input size)")
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--detections', action='store_true',
                        help='post-processing (NMS) inside the graph')
    parser.add_argument('--dynamic', action='store_true',
                        help='any input height and width (--shape is then the traced size)')
    parser.add_argument('--no-deploy', action='store_true', help='export the training form')
    parser.add_argument('--no-check', action='store_true', help='skip the runtime check')
    parser.add_argument('--backend', default='onnxruntime',
                        help=f'the runtime that checks the file: {", ".join(runtime_names())}')
    parser.add_argument('--force', action='store_true', help='overwrite --out if it exists')
    return parser.parse_args(argv)


def default_shape(cfg: Config):
    shape = fixed_input_size(cfg.model)
    if shape is None:
        sys.exit('export_onnx: the config pads to no fixed size; give --shape H W')
    return shape


def main(argv=None):
    args = parse_args(argv)
    if os.path.exists(args.out) and not args.force:
        sys.exit(f'export_onnx: {args.out} exists; pass --force to overwrite it')
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(folder):
        sys.exit(f'export_onnx: the folder of --out {args.out} does not exist ({folder})')
    if args.backend not in runtime_names():
        sys.exit(f'export_onnx: unknown --backend {args.backend!r}; valid choices: '
                 f'{", ".join(runtime_names())}')
    if args.shape and min(args.shape) < 1:
        sys.exit(f'export_onnx: --shape {args.shape[0]} {args.shape[1]}: height and width must '
                 'be 1 or more')
    if args.batch_size < 1:
        sys.exit(f'export_onnx: --batch-size {args.batch_size} must be 1 or more')
    enable_tool_checkpoints()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    nms = cfg.model.get('test_cfg', {}).get('nms', {})
    if args.detections and nms.get('type', 'nms') != 'nms':
        print(f"export_onnx: the graph's NMS is hard NMS at IoU 0.5 (ONNX NonMaxSuppression); "
              f"the config's {nms.get('type')} is not exportable")
        cfg.model.test_cfg.nms = dict(type='nms', iou_threshold=0.5)
    shape = tuple(args.shape) if args.shape else default_shape(cfg)
    cfg.model.get('backbone', {}).pop('init_cfg', None)  # weights come from the checkpoint
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    reference = copy.deepcopy(model).eval()
    wrapper = export_onnx(model, args.out, shape, args.batch_size, args.detections,
                          deploy=not args.no_deploy, dynamic=args.dynamic)
    batch = 'N' if args.dynamic and not args.detections else f'N={args.batch_size}'
    size = 'H, W' if args.dynamic else f'{shape[0]}, {shape[1]}'
    print(f'wrote {args.out}: inputs ({batch}, 3, {size}), '
          f'outputs {", ".join(wrapper.output_names())}')
    if args.no_check:
        return
    run = runtime_session(args.out, args.backend)
    # a dynamic graph is also checked at a size it was not traced at
    shapes = [shape] + ([(shape[0] * 3 // 4 + 8, shape[1] + 40)] if args.dynamic else [])
    for check_shape in shapes:
        inputs = torch.randn(args.batch_size, 3, *check_shape,
                             generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            expected = type(wrapper)(reference, args.detections)(inputs)
        outputs = run(inputs.numpy())
        where = (f'{args.backend} vs the PyTorch model as loaded at '
                 f'{check_shape[0]}x{check_shape[1]}')
        if args.detections:
            dets, labels = (torch.from_numpy(o) for o in outputs)
            counts = [same_detections(dets[i], labels[i], *(e[i] for e in expected))
                      for i in range(len(dets))]
            found = sum(int((labels[i] >= 0).sum()) for i in range(len(dets)))
            print(f'{where}: {sum(c[0] for c in counts)} of {found} detections the same')
        else:
            error = max(float(np.abs(o - e.numpy()).max()) for o, e in zip(outputs, expected))
            print(f'{where}: max |Δ| = {error:.2e}')


if __name__ == '__main__':
    run_tool(main, 'export_onnx.py')
