"""Convert an effdet (rwightman/efficientdet-pytorch) tf_efficientdet_dX or
tf_efficientdet_liteX checkpoint into an mmdet checkpoint for the level's config
(configs/efficientdet*/efficientdet_<level>_*_coco.py, or --config).

    python tools/convert_weights.py tf_efficientdet_d0_34-f153e0cf.pth d0.pth --level d0
    python tools/convert_weights.py tf_efficientdet_lite0-dfacfc78.pth lite0.pth --level lite0

Accepts plain state dicts and ones wrapped in state_dict / state_dict_ema (EMA preferred
unless --no-ema); loads with weights_only=True; reorders TF's (ty, tx, th, tw) box deltas;
maps the 90 COCO-id class channels to mmdet's 80 CocoDataset classes (or keeps 90 with
--num-classes 90); refuses a checkpoint of another level, naming the first mismatched key.
An existing DST is kept unless --force (never the source itself).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config

import mmdet_efficientdet  # noqa: F401  (registers our components)
from mmdet_efficientdet.apis import convert_effdet_checkpoint
from mmdet_efficientdet.converters import ConversionError
from mmdet_efficientdet.scaling import D_LEVELS
from mmdet_efficientdet.apis.level_configs import level_config_path
from mmdet_efficientdet.apis.tool_errors import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='effdet checkpoint (path or URL)')
    parser.add_argument('dst', help='output mmdet checkpoint')
    parser.add_argument('--level', required=True, choices=list(D_LEVELS),
                        help='EfficientDet level of the checkpoint')
    parser.add_argument('--config', help="the config whose model it is for (default: the "
                        "level's COCO config)")
    parser.add_argument('--num-classes', type=int, default=80, choices=[80, 90],
                        help='80: mmdet CocoDataset classes; 90: effdet COCO ids')
    parser.add_argument('--no-ema', action='store_true',
                        help='take state_dict even if state_dict_ema is present')
    parser.add_argument('--force', action='store_true', help='overwrite DST if it exists')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if osp.exists(args.src) and osp.exists(args.dst) and osp.samefile(args.src, args.dst):
        sys.exit(f'convert_weights: DST {args.dst} is the source file; write elsewhere')
    if osp.exists(args.dst) and not args.force:
        sys.exit(f'convert_weights: {args.dst} exists; pass --force to overwrite it')
    folder = osp.dirname(osp.abspath(args.dst))
    if not osp.isdir(folder):
        sys.exit(f'convert_weights: the folder of {args.dst} does not exist ({folder})')
    model_cfg = Config.fromfile(args.config or level_config_path(args.level)).model
    try:
        checkpoint = convert_effdet_checkpoint(args.src, None, model_cfg, args.num_classes,
                                               use_ema=not args.no_ema)
    except ConversionError as error:
        sys.exit(f'convert_weights: {args.src} is not a tf_efficientdet_{args.level} '
                 f'checkpoint: {error}')
    partial = args.dst + '.part'
    import torch
    torch.save(checkpoint, partial)
    os.replace(partial, args.dst)  # no half-written DST, whatever happens while writing
    print(f'wrote {args.dst}: {len(checkpoint["state_dict"])} tensors, EfficientDet-'
          f'{args.level}, {args.num_classes} classes')


if __name__ == '__main__':
    run_tool(main, 'convert_weights.py')
