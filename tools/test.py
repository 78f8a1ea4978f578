"""Test (evaluate) a detector with mmengine's Runner, as MMDetection's tools/test.py: --tta
(the config's tta_model / tta_pipeline), --show / --wait-time / --show-dir (drawn by mmdet's
visualizer; a config without a visualization hook gets one), --out (results as a pickle, or
as a COCO-style .json that pycocotools reads). Errors end as one line."""
import argparse
import json
import os.path as osp
import pickle
import tempfile

from mmengine.config import ConfigDict
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdet_efficientdet  # noqa: F401  (registers our components, safe checkpoint globals)
from mmdet_efficientdet.utils import add_runner_args, load_runner_config, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='write the results: .pkl/.pickle (mmdet results), or '
                        '.json (COCO result format: image_id, category_id, bbox, score)')
    parser.add_argument('--show', action='store_true', help='show the predictions in a window')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per image of --show')
    parser.add_argument('--show-dir', help='draw predictions (mmdet visualizer) into '
                        'work_dir/timestamp/<show-dir>')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation: the config's tta_model and tta_pipeline")
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
        raise ValueError(f'--tta: the config has no {" and no ".join(missing)}; add them, e.g. '
                         '`tta_model, tta_pipeline = efficientdet_tta(image_size)` from '
                         'mmdet_efficientdet.model_cfg')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    dataset.pipeline = cfg.tta_pipeline


def coco_results(results: list, cat_ids: list) -> list:
    """mmdet's dumped results → COCO's result format (x, y, w, h boxes)."""
    out = []
    for result in results:
        pred = result['pred_instances']
        for box, score, label in zip(pred['bboxes'].tolist(), pred['scores'].tolist(),
                                     pred['labels'].tolist()):
            out.append(dict(image_id=result['img_id'], category_id=cat_ids[label],
                            bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                            score=score))
    return out


def main():
    args = parse_args()
    out_format = None
    if args.out is not None:
        out_format = osp.splitext(args.out)[1].lower()
        if out_format not in ('.pkl', '.pickle', '.json'):
            raise SystemExit(f'--out {args.out}: must end in .pkl, .pickle or .json')
    cfg = load_runner_config(args)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.tta:
        enable_tta(cfg)
    dump = args.out
    if out_format == '.json':
        dump = osp.join(tempfile.mkdtemp(), 'results.pkl')
    if dump is not None:
        cfg.test_evaluator = [*cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=dump))

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.test()
    if out_format == '.json':
        with open(dump, 'rb') as f:
            results = pickle.load(f)
        dataset = runner.test_dataloader.dataset
        cat_ids = list(getattr(dataset, 'cat_ids', range(len(dataset.metainfo['classes']))))
        with open(args.out, 'w') as f:
            json.dump(coco_results(results, cat_ids), f)
        print(f'wrote {len(results)} images\' detections to {args.out} (COCO result format)')


if __name__ == '__main__':
    run_tool(main, 'test.py')
