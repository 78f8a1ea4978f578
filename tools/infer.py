"""Run a detector on an image, a folder of images or a video, with mmdet's DetInferencer and
visualizer: drawn images (or an MP4 with the boxes drawn) and all detections as one JSON
file in COCO's result format (plus file names and class names).

    python tools/infer.py CONFIG CHECKPOINT INPUT --out-dir DIR [--score-thr 0.3]
        [--device cpu] [--batch-size 1]

CHECKPOINT: written by tools/train.py or tools/convert_weights.py. INPUT: an image file, a
folder (its images, not recursive) or a video file. Files that cannot be read are reported,
one line each, and skipped; the rest goes on. With --backend onnxruntime|openvino --model
FILE the exported model (tools/export_onnx.py --detections, tools/quantize.py) runs instead
of PyTorch, with the config's preprocessing; class names then come from CHECKPOINT if given,
else from the config's test dataset.
"""
import argparse
import json
import os
import os.path as osp
import sys
import warnings

import cv2
import mmcv
import torch
from mmdet.apis import DetInferencer
from mmdet.datasets import CocoDataset
from mmengine.config import Config
from mmengine.utils import track_iter_progress

import mmdet_efficientdet  # noqa: F401  (registers our components)
from mmdet_efficientdet.deploy import precision_names, runtime_model_cfg, runtime_names
from mmdet_efficientdet.apis.checkpoints import enable_tool_checkpoints
from mmdet_efficientdet.apis.tool_errors import run_tool

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (optional with --model)')
    parser.add_argument('input', help='image, folder of images or video')
    parser.add_argument('--out-dir', required=True, help='where drawn outputs and JSON go')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections below this score are neither drawn nor written')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'cuda:1', ...")
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward')
    parser.add_argument('--backend', default='pytorch',
                        help=f'pytorch (the checkpoint), or {", ".join(runtime_names())} (--model)')
    parser.add_argument('--model', help='exported model file for --backend onnxruntime/openvino')
    parser.add_argument('--precision', default='fp32', choices=list(precision_names()),
                        help="OpenVINO's inference precision hint")
    return parser.parse_args(argv)


def category_ids(cfg, classes) -> list:
    """The dataset's category id of each class, as ``tools/test.py --out`` and the annotation
    file have them: by name from the config's test annotation file when it is there,
    otherwise COCO's convention of ids from 1 (class index + 1)."""
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset and 'ann_file' not in dataset:
        dataset = dataset['dataset']
    ann_file = dataset.get('ann_file') or ''
    if ann_file and dataset.get('data_root') and not osp.isabs(ann_file):
        ann_file = osp.join(dataset['data_root'], ann_file)
    ids = {}
    if ann_file.endswith('.json') and osp.isfile(ann_file):
        with open(ann_file) as f:
            ids = {c['name']: c['id'] for c in json.load(f).get('categories', [])}
    if classes and all(name in ids for name in classes):
        return [ids[name] for name in classes]
    return [index + 1 for index in range(len(classes or []) or 1000)]


def coco_results(prediction: dict, image_id, file_name: str, classes, score_thr: float,
                 ids: list) -> list:
    """One image's detections (DetInferencer's dict) as COCO result entries."""
    out = []
    for label, score, (x1, y1, x2, y2) in zip(prediction['labels'], prediction['scores'],
                                              prediction['bboxes']):
        if score >= score_thr:
            out.append(dict(image_id=image_id, file_name=file_name, category_id=ids[label],
                            category=classes[label] if classes else str(label),
                            bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score)))
    return out


def readable_images(paths):
    for path in paths:
        try:
            ok = mmcv.imread(path) is not None
        except Exception as error:  # noqa: BLE001  (any decoder failure means unreadable)
            ok, reason = False, f'{type(error).__name__}: {error}'
        else:
            reason = 'no image decoder reads it'
        if ok:
            yield path
        else:
            print(f'infer: skipped {path}: not a readable image ({reason})', file=sys.stderr)


def run_images(inferencer, paths, args, classes) -> list:
    paths = list(readable_images(paths))
    if not paths:
        sys.exit('infer: no readable image to run on')
    results = inferencer(paths, batch_size=args.batch_size, out_dir=args.out_dir,
                         pred_score_thr=args.score_thr, no_save_pred=True)
    detections = []
    for index, (path, prediction) in enumerate(zip(paths, results['predictions'])):
        detections += coco_results(prediction, index, osp.basename(path), classes,
                                   args.score_thr, args.category_ids)
    print(f'infer: {len(paths)} images drawn into {osp.join(args.out_dir, "vis")}')
    return detections


def run_video(inferencer, path, args, classes) -> list:
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        sys.exit(f'infer: {path} is not a readable video')
    fps = capture.get(cv2.CAP_PROP_FPS) or 25
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    out_path = osp.join(args.out_dir, osp.splitext(osp.basename(path))[0] + '_det.mp4')
    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*'mp4v'), fps, size)
    inferencer.show_progress = False
    detections, count = [], 0
    for index in track_iter_progress(range(frames)):
        ok, frame = capture.read()
        if not ok:
            break
        result = inferencer(frame, return_vis=True, no_save_vis=True,
                            pred_score_thr=args.score_thr)
        writer.write(cv2.cvtColor(result['visualization'][0], cv2.COLOR_RGB2BGR))
        detections += coco_results(result['predictions'][0], index, f'frame_{index:06d}',
                                   classes, args.score_thr, args.category_ids)
        count += 1
    writer.release()
    capture.release()
    print(f'infer: {count} frames drawn into {out_path}')
    return detections


def build_inferencer(args) -> DetInferencer:
    """mmdet's DetInferencer of the checkpoint, or of the exported model in its runtime."""
    if args.backend == 'pytorch':
        return DetInferencer(model=args.config, weights=args.checkpoint, device=args.device)
    cfg = Config.fromfile(args.config)
    cfg.model = runtime_model_cfg(cfg.model, args.model, args.backend, args.precision)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "weights is None": the weights are in the file
        inferencer = DetInferencer(model=cfg, weights=None, device='cpu')
    meta = None
    if args.checkpoint:
        meta = torch.load(args.checkpoint, map_location='cpu',
                          weights_only=True).get('meta', {}).get('dataset_meta')
    if not meta:
        meta = (cfg.test_dataloader.dataset.get('metainfo') or
                dict(classes=CocoDataset.METAINFO['classes']))
    inferencer.model.dataset_meta = dict(inferencer.model.dataset_meta, **meta)
    inferencer.visualizer.dataset_meta = inferencer.model.dataset_meta
    return inferencer


def main(argv=None):
    args = parse_args(argv)
    enable_tool_checkpoints()
    if args.batch_size < 1:
        sys.exit(f'infer: --batch-size {args.batch_size} must be 1 or more')
    if not 0 <= args.score_thr <= 1:
        sys.exit(f'infer: --score-thr {args.score_thr} must be a score, 0 to 1')
    if args.backend not in ('pytorch', ) + runtime_names():
        sys.exit(f'infer: unknown --backend {args.backend!r}; valid choices: pytorch, '
                 f'{", ".join(runtime_names())}')
    if (args.backend == 'pytorch') != (args.model is None):
        sys.exit('infer: --model (an exported file) goes with --backend onnxruntime or '
                 'openvino; --backend pytorch runs the CHECKPOINT')
    if args.backend == 'pytorch' and args.checkpoint is None:
        sys.exit('infer: give the CHECKPOINT to run (or an exported --model and --backend)')
    if not osp.exists(args.input):
        sys.exit(f'infer: {args.input} does not exist')
    if osp.exists(args.out_dir) and not osp.isdir(args.out_dir):
        sys.exit(f'infer: --out-dir {args.out_dir} is a file; name a folder (new or existing)')
    inferencer = build_inferencer(args)
    classes = inferencer.model.dataset_meta.get('classes')
    args.category_ids = category_ids(inferencer.cfg, classes)
    created = not osp.isdir(args.out_dir)
    os.makedirs(args.out_dir, exist_ok=True)
    try:
        infer(inferencer, args, classes)
    except BaseException:
        if created and not os.listdir(args.out_dir):
            os.rmdir(args.out_dir)  # a failed run leaves no empty folder behind
        raise


def infer(inferencer, args, classes) -> None:
    if osp.isdir(args.input):
        names = sorted(os.listdir(args.input))
        paths = [osp.join(args.input, n) for n in names if n.lower().endswith(IMAGE_SUFFIXES)]
        paths += [osp.join(args.input, n) for n in names
                  if not n.lower().endswith(IMAGE_SUFFIXES + VIDEO_SUFFIXES)
                  and osp.isfile(osp.join(args.input, n))]  # tried, reported if unreadable
        detections = run_images(inferencer, sorted(paths), args, classes)
    elif args.input.lower().endswith(VIDEO_SUFFIXES):
        detections = run_video(inferencer, args.input, args, classes)
    else:
        detections = run_images(inferencer, [args.input], args, classes)
    json_path = osp.join(args.out_dir, 'detections.json')
    with open(json_path, 'w') as f:
        json.dump(detections, f)
    print(f'infer: {len(detections)} detections (score >= {args.score_thr}) in {json_path}')


if __name__ == '__main__':
    run_tool(main, 'infer.py')
