"""Test (evaluate) a detector with mmengine's Runner, as MMDetection's tools/test.py: --tta
(the config's tta_model / tta_pipeline), --show / --wait-time / --show-dir (drawn by mmdet's
visualizer; a config without a visualization hook gets one), --out (results as a pickle, or
in COCO's result format as .json, written by mmdet's CocoMetric), --nms hard|soft (our
EfficientDet configs test with the reference's soft-NMS). Errors end as one line."""
import argparse
import os
import os.path as osp
import shutil
import tempfile

from mmengine.config import ConfigDict
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdet_efficientdet  # noqa: F401  (registers our components)
from mmdet_efficientdet.deploy import precision_names, runtime_model_cfg, runtime_names
from mmdet_efficientdet.models.dense_heads.efficientdet_head import HARD_NMS, SOFT_NMS
from mmdet_efficientdet.apis.checkpoints import enable_tool_checkpoints
from mmdet_efficientdet.apis.runner_args import add_runner_args, load_runner_config
from mmdet_efficientdet.apis.tool_errors import run_tool

NMS_CHOICES = dict(hard=HARD_NMS, soft=SOFT_NMS)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint file (not with --model: an exported model)')
    parser.add_argument('--out', help='write the results: .pkl/.pickle (mmdet results), or '
                        '.json (COCO result format: image_id, category_id, bbox, score)')
    parser.add_argument('--force', action='store_true', help='overwrite --out if it exists')
    parser.add_argument('--show', action='store_true', help='show the predictions in a window')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per image of --show')
    parser.add_argument('--show-dir', help='draw predictions (mmdet visualizer) into '
                        'work_dir/timestamp/<show-dir>')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation: the config's tta_model and tta_pipeline")
    parser.add_argument('--backend', choices=list(runtime_names()),
                        help='test an exported model (--model) in this runtime instead')
    parser.add_argument('--model', help='the exported model file (tools/export_onnx.py '
                        '--detections, tools/quantize.py) for --backend')
    parser.add_argument('--precision', default='fp32', choices=list(precision_names()),
                        help="OpenVINO's inference precision hint for --backend openvino")
    parser.add_argument('--nms', choices=sorted(NMS_CHOICES),
                        help="the model's NMS: hard (IoU 0.5) or the reference's Gaussian "
                        "soft-NMS (default: the config's test_cfg.nms)")
    add_runner_args(parser)
    return parser.parse_args(argv)


def enable_visualization(cfg, args) -> None:
    """--show / --show-dir through mmdet's DetVisualizationHook, added if the config has
    none (and a visualizer, if it has none either)."""
    hooks = cfg.setdefault('default_hooks', ConfigDict())
    hook = hooks.get('visualization') or dict(type='DetVisualizationHook')
    hook.update(draw=True)
    if args.show:
        hook.update(show=True, wait_time=args.wait_time)
    if args.show_dir:
        hook.update(test_out_dir=args.show_dir)
    hooks['visualization'] = hook
    if not cfg.get('visualizer'):
        cfg.visualizer = dict(type='DetLocalVisualizer', name='visualizer',
                              vis_backends=[dict(type='LocalVisBackend')])


def enable_tta(cfg) -> None:
    """The model wrapped in the config's ``tta_model`` and the test set read through its
    ``tta_pipeline`` (mmdet's ``DetTTAModel`` merges the augmented predictions)."""
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise ValueError(f'--tta: the config has no {" and no ".join(missing)}; add them as '
                         'configs/efficientdet/efficientdet_d0_8xb8-300e_coco.py declares them')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    dataset.pipeline = cfg.tta_pipeline


def add_coco_json_output(cfg, path: str) -> str:
    """Also write the detections in COCO's result format: a copy of the config's CocoMetric
    with ``format_only`` (it writes ``<prefix>.bbox.json``); returns that file's path."""
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [
        cfg.test_evaluator]
    coco = [e for e in evaluators if e.get('type') == 'CocoMetric']
    if not coco:
        raise ValueError(f'--out {path}: a .json output needs a CocoMetric test_evaluator (its '
                         'ann_file gives the category ids); use .pkl for other datasets')
    prefix = osp.join(tempfile.mkdtemp(), 'results')
    cfg.test_evaluator = [*evaluators, dict(coco[0], format_only=True, outfile_prefix=prefix)]
    return prefix + '.bbox.json'


def main(argv=None):
    args = parse_args(argv)
    enable_tool_checkpoints()
    out_format = None
    if args.out is not None:
        out_format = osp.splitext(args.out)[1].lower()
        if out_format not in ('.pkl', '.pickle', '.json'):
            raise SystemExit(f'--out {args.out}: must end in .pkl, .pickle or .json')
        if osp.exists(args.out) and not args.force:
            raise SystemExit(f'test.py: --out {args.out} exists; pass --force to overwrite it')
    if bool(args.backend) != bool(args.model):
        raise SystemExit('test.py: --backend and --model go together (an exported model and '
                         'the runtime that runs it)')
    if (args.checkpoint is None) == (args.model is None):
        raise SystemExit('test.py: give a CHECKPOINT, or an exported model with --backend '
                         'and --model (not both)')
    cfg = load_runner_config(args)
    cfg.load_from = args.checkpoint
    if args.model:
        if args.tta or args.nms:
            raise SystemExit('test.py: --tta and --nms change the PyTorch model; an exported '
                             "model's selection is in its graph")
        cfg.model = runtime_model_cfg(cfg.model, args.model, args.backend, args.precision)
    if cfg.model.get('type') == 'EfficientDetector':
        cfg.model.strict_classes = True  # a checkpoint of other classes: refused, not random
    if args.nms:
        cfg.model.setdefault('test_cfg', ConfigDict())['nms'] = dict(NMS_CHOICES[args.nms])
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.tta:
        enable_tta(cfg)
    written = None
    if out_format == '.json':
        written = add_coco_json_output(cfg, args.out)
    elif out_format is not None:
        cfg.test_evaluator = [*cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.test()
    if written:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        shutil.move(written, args.out)
        print(f'wrote the detections to {args.out} (COCO result format)')


if __name__ == '__main__':
    run_tool(main, 'test.py')
