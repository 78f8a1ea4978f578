"""Check the datasets of a config before training on them: missing and unreadable images,
image sizes that differ from the annotations, unknown category ids, zero-size boxes and boxes
outside their image, images without boxes, class count vs the model's num_classes, and
whether the config's anchors fit the training boxes.

    python tools/check_dataset.py CONFIG [--splits train val] [--show N] [--show-dir DIR]
        [--anchor-images 300] [--min-anchor-coverage PERCENT]

Prints a summary per split (counts and the first examples) and exits 1 if anything is an
error. The anchor fit (training split) is computed with the config's own anchor generator
and assigner at its input size: the share of boxes with an anchor at the positive IoU
(overall, by size and aspect), those matched only by force and those not at all, and a
suggested anchor_scale / ratios from a small search when one covers more; an error when the
share is below --min-anchor-coverage (default 50 %). --show N draws N images of the first
split with their ground truth (mmdet's visualizer, as the model will learn it after loading:
dropped boxes are not drawn).
"""
import argparse
import os
import os.path as osp
import sys
import time

from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_efficientdet  # noqa: F401  (registers our components)
from mmdet_efficientdet.apis.runner_args import cfg_options_action
from mmdet_efficientdet.apis.tool_errors import run_tool
from mmdet_efficientdet.apis.anchor_fit import check_anchor_fit
from mmdet_efficientdet.datasets.dataset_check import (check_coco_dataset, dataset_configs,
                                                       model_num_classes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--splits', nargs='+', choices=['train', 'val', 'test'],
                        help='which dataloaders (default: all the config has)')
    parser.add_argument('--show', type=int, default=0, metavar='N',
                        help='draw N images of the first split with their ground truth')
    parser.add_argument('--show-dir', help='where to draw (default: '
                        'work_dirs/check_dataset/<config>/<time>)')
    parser.add_argument('--no-decode', action='store_true',
                        help='only check that image files exist (faster)')
    parser.add_argument('--anchor-images', type=int, default=300, metavar='N',
                        help="how many training images the anchor fit samples (0: no check)")
    parser.add_argument('--min-anchor-coverage', type=float, default=50.0, metavar='PERCENT',
                        help='an error (exit 1) when fewer training boxes than this have an '
                        'anchor at the positive IoU (default 50; 0: the fit is only a note)')
    parser.add_argument('--cfg-options', nargs='+', action=cfg_options_action())
    return parser.parse_args(argv)


def show(cfg, dataset_cfg, count, out_dir):
    from mmdet.registry import DATASETS, VISUALIZERS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.structures import InstanceData
    register_all_modules()
    dataset = DATASETS.build(dict(dataset_cfg, pipeline=[
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]))
    visualizer = VISUALIZERS.build(dict(type='DetLocalVisualizer', name='check_dataset'))
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(out_dir, exist_ok=False)
    for index in range(min(count, len(dataset))):
        item = dataset[index]
        sample = DetDataSample(gt_instances=InstanceData(
            bboxes=item['gt_bboxes'].tensor, labels=item['gt_bboxes_labels']))
        name = osp.splitext(osp.basename(item['img_path']))[0]
        visualizer.add_datasample(name, item['img'][..., ::-1], sample, draw_pred=False,
                                  out_file=osp.join(out_dir, f'{name}.png'))
    print(f'drew {min(count, len(dataset))} images with their ground truth into {out_dir}')


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    datasets = dataset_configs(cfg)
    if args.splits:
        datasets = {k: v for k, v in datasets.items() if k in args.splits}
    if not datasets:
        sys.exit(f'check_dataset: {args.config} has no dataloader with a dataset to check')
    if not 0 <= args.min_anchor_coverage <= 100:
        sys.exit(f'check_dataset: --min-anchor-coverage {args.min_anchor_coverage} must be a '
                 'percentage, 0 to 100')
    register_all_modules()
    num_classes = model_num_classes(cfg)
    errors = 0
    for split, dataset in datasets.items():
        if 'ann_file' not in dataset:
            print(f'{split}: {dataset.get("type")} has no ann_file; only COCO-style datasets '
                  'are checked')
            continue
        findings = check_coco_dataset(split, dataset, num_classes, decode=not args.no_decode)
        print('\n'.join(findings.lines()))
        errors += sum(count for count, _ in findings.errors.values())
        if split == 'train' and args.anchor_images > 0 and not findings.errors:
            fit, lines = check_anchor_fit(cfg.model, dataset, args.anchor_images)
            print('\n'.join(lines))
            if fit is not None and 100 * fit.covered < args.min_anchor_coverage:
                print(f'  ERROR anchor coverage {100 * fit.covered:.1f} % is below '
                      f'--min-anchor-coverage {args.min_anchor_coverage:g} %')
                errors += 1
    if args.show:
        name = osp.splitext(osp.basename(args.config))[0]
        out_dir = args.show_dir or osp.join('work_dirs', 'check_dataset', name,
                                            time.strftime('%Y%m%d_%H%M%S'))
        show(cfg, next(iter(datasets.values())), args.show, out_dir)
    if errors:
        sys.exit(f'check_dataset: {errors} problem(s) found; fix them before training '
                 '(mmdet would drop such boxes or fail mid-epoch)')
    print('check_dataset: no problem found')


if __name__ == '__main__':
    run_tool(main, 'check_dataset.py')
