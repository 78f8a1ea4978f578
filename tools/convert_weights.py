"""Convert an effdet (rwightman/efficientdet-pytorch) tf_efficientdet_dX or
tf_efficientdet_liteX checkpoint into an mmdet checkpoint for
configs/efficientdet/efficientdet_<level>_*.py.

    python tools/convert_weights.py tf_efficientdet_d0_34-f153e0cf.pth d0.pth --level d0
    python tools/convert_weights.py tf_efficientdet_lite0-dfacfc78.pth lite0.pth --level lite0

Accepts plain state dicts and ones wrapped in state_dict / state_dict_ema (EMA preferred
unless --no-ema); loads with weights_only=True; reorders TF's (ty, tx, th, tw) box deltas;
maps the 90 COCO-id class channels to mmdet's 80 CocoDataset classes (or keeps 90 with
--num-classes 90); refuses a checkpoint of another level, naming the first mismatched key.
"""
import argparse
import sys

from mmdet_efficientdet.converters import ConversionError, convert_effdet_checkpoint
from mmdet_efficientdet.scaling import D_LEVELS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='effdet checkpoint (path or URL)')
    parser.add_argument('dst', help='output mmdet checkpoint')
    parser.add_argument('--level', required=True, choices=list(D_LEVELS),
                        help='EfficientDet level of the checkpoint')
    parser.add_argument('--num-classes', type=int, default=80, choices=[80, 90],
                        help='80: mmdet CocoDataset classes; 90: effdet COCO ids')
    parser.add_argument('--no-ema', action='store_true',
                        help='take state_dict even if state_dict_ema is present')
    args = parser.parse_args(argv)
    try:
        checkpoint = convert_effdet_checkpoint(args.src, args.dst, args.level, args.num_classes,
                                               use_ema=not args.no_ema)
    except ConversionError as error:
        sys.exit(f'convert_weights: {args.src} is not a tf_efficientdet_{args.level} '
                 f'checkpoint: {error}')
    print(f'wrote {args.dst}: {len(checkpoint["state_dict"])} tensors, EfficientDet-'
          f'{args.level}, {args.num_classes} classes')


if __name__ == '__main__':
    main()
