"""int8 post-training quantization of a detector of ours for CPU inference.

    python tools/quantize.py CONFIG CHECKPOINT --out model_int8.xml [--backend openvino]
        [--calib-images 300] [--calib-split train] [--fp32-layers PATTERN ...] [--force]

The model is exported as tools/export_onnx.py --detections exports it (deploy form, the
reference's selection in the graph, the config's input size), then quantized: per-channel
int8 weights, int8 activations calibrated on the first --calib-images images of the config's
--calib-split dataset, preprocessed as the test pipeline does. --backend openvino (NNCF)
writes an OpenVINO IR (.xml + .bin); --backend onnxruntime (onnxruntime.quantization) an
ONNX file with QDQ nodes. Layers whose names contain a --fp32-layers pattern stay in float.
The fp32 ONNX file is kept beside the output: --out m_int8.xml writes m_int8.fp32.onnx. Then
both run on the first --check-images val images, and the tool prints how many of the fp32
model's detections scoring --check-score or more the int8 model finds too (same class, IoU >
0.5). Measure what
int8 costs with tools/test.py CONFIG --backend openvino --model model_int8.xml (val mAP), and
how fast it is with tools/benchmark.py latency.
"""
import argparse
import os.path as osp
import sys
from typing import Callable, Iterable, Tuple

import numpy as np
import torch
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint

import mmdet_efficientdet  # noqa: F401  (registers our components)
from mmdet_efficientdet.engine.config_checks import fixed_input_size
from mmdet_efficientdet.deploy import (export_onnx, get_runtime, runtime_names, runtime_session,
                                       same_detections)
from mmdet_efficientdet.apis.checkpoints import enable_tool_checkpoints
from mmdet_efficientdet.datasets.dataset_check import dataset_configs
from mmdet_efficientdet.apis.tool_errors import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint (tools/train.py or convert_weights.py)')
    parser.add_argument('--out', required=True, help='int8 model to write (.xml for '
                        'openvino, .onnx for onnxruntime)')
    parser.add_argument('--backend', default='openvino',
                        help=f'quantization and runtime: {", ".join(runtime_names())}')
    parser.add_argument('--calib-images', type=int, default=300, help='calibration images')
    parser.add_argument('--calib-split', default='train', choices=['train', 'val', 'test'],
                        help="the config's dataset the calibration images come from")
    parser.add_argument('--fp32-layers', nargs='*', default=[],
                        help='name patterns of layers kept in float')
    parser.add_argument('--check-images', type=int, default=50,
                        help='val images on which int8 is compared with fp32 (0: none)')
    parser.add_argument('--check-score', type=float, default=0.3,
                        help='the fp32 detections compared: those scoring this or more')
    parser.add_argument('--force', action='store_true', help='overwrite --out and its fp32 '
                        'export (<stem of --out>.fp32.onnx) if they exist')
    return parser.parse_args(argv)


def calibration_batches(cfg: Config, model, split: str, count: int):
    """``count`` preprocessed inputs (1, 3, H, W) of the config's ``split`` images, through
    the test pipeline and the model's data preprocessor, padded to the export size."""
    dataset_cfg = dataset_configs(cfg).get(split)
    if dataset_cfg is None:
        raise ValueError(f'--calib-split {split}: the config has no {split}_dataloader '
                         'dataset to calibrate on')
    dataset = DATASETS.build(dict(dataset_cfg, pipeline=cfg.test_dataloader.dataset.pipeline,
                                  test_mode=True))
    if len(dataset) == 0:
        raise ValueError(f'--calib-split {split}: the dataset of {dataset_cfg.get("ann_file")} '
                         'holds no image to calibrate on')
    size = fixed_input_size(cfg.model)
    for index in range(min(count, len(dataset))):
        batch = model.data_preprocessor(pseudo_collate([dataset[index]]), training=False)
        inputs = batch['inputs']
        padded = inputs.new_zeros((1, 3, *size))
        padded[..., :inputs.shape[-2], :inputs.shape[-1]] = inputs
        yield padded.numpy()


def reproduced(fp32: Callable, int8: Callable, batches: Iterable[np.ndarray],
               min_score: float) -> Tuple[int, int]:
    """``(found, total)``: the detections of the ``fp32`` model scoring at least
    ``min_score`` on ``batches``, and how many of them the ``int8`` model finds too (same
    class, IoU > 0.5, any score)."""
    found = total = 0
    for inputs in batches:
        dets_a, labels_a = (torch.from_numpy(output[0]) for output in fp32(inputs))
        dets_b, labels_b = (torch.from_numpy(output[0]) for output in int8(inputs))
        keep = (labels_a >= 0) & (dets_a[:, 4] >= min_score)
        matched, _ = same_detections(dets_a[keep], labels_a[keep], dets_b, labels_b, iou=0.5,
                                     score_tol=1.0)
        found, total = found + matched, total + int(keep.sum())
    return found, total


def main(argv=None):
    args = parse_args(argv)
    if args.backend not in runtime_names():
        sys.exit(f'quantize: unknown --backend {args.backend!r}; valid choices: '
                 f'{", ".join(runtime_names())}')
    if args.calib_images < 1:
        sys.exit(f'quantize: --calib-images {args.calib_images} must be 1 or more')
    if args.check_images < 0:
        sys.exit(f'quantize: --check-images {args.check_images} must be 0 (no check) or more')
    suffix = get_runtime(args.backend).suffix
    if not args.out.endswith(suffix):
        sys.exit(f'quantize: --out {args.out}: a {args.backend} model is a {suffix} file')
    fp32 = osp.splitext(args.out)[0] + '.fp32.onnx'  # the fp32 export, kept beside --out
    for path in (args.out, fp32):
        if osp.exists(path) and not args.force:
            sys.exit(f'quantize: {path} exists; pass --force to overwrite it')
    folder = osp.dirname(osp.abspath(args.out))
    if not osp.isdir(folder):
        sys.exit(f'quantize: the folder of --out {args.out} does not exist ({folder})')
    enable_tool_checkpoints()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    size = fixed_input_size(cfg.model)
    if size is None:
        sys.exit('quantize: the config pads to no fixed size (BatchFixedSizePad); int8 models '
                 'are exported at one size')
    cfg.model.test_cfg.nms = dict(type='nms', iou_threshold=0.5)  # ONNX NonMaxSuppression
    cfg.model.backbone.pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.eval()
    batches = list(calibration_batches(cfg, model, args.calib_split, args.calib_images))
    with torch.no_grad():
        export_onnx(model, fp32, size, 1, detections=True)
    get_runtime(args.backend).quantize(fp32, args.out, batches, args.fp32_layers)
    kept = f', layers kept in float: {", ".join(args.fp32_layers)}' if args.fp32_layers else ''
    print(f'wrote {args.out}: int8 ({args.backend}), calibrated on {len(batches)} '
          f'{args.calib_split} images at {size[1]}x{size[0]}{kept}; fp32 export: {fp32}')
    if args.check_images and cfg.get('val_dataloader'):
        checked = list(calibration_batches(cfg, model, 'val', args.check_images))
        found, total = reproduced(runtime_session(fp32, args.backend),
                                  runtime_session(args.out, args.backend), checked,
                                  args.check_score)
        print(f'int8 finds {found} of the {total} fp32 detections scoring >= '
              f'{args.check_score} on {len(checked)} val images (same class, IoU > 0.5)')


if __name__ == '__main__':
    run_tool(main, 'quantize.py')
