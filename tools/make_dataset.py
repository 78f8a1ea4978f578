"""Write the embedded synthetic COCO-format dataset (default: data/synthetic)."""
import argparse
import time

from mmdet_efficientdet.apis.synthetic import SPLITS, make_synthetic_coco


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='data/synthetic', help='output folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--train', type=int, default=SPLITS['train'], help='train images')
    parser.add_argument('--val', type=int, default=SPLITS['val'], help='val images')
    args = parser.parse_args()
    start = time.time()
    files = make_synthetic_coco(args.out, args.seed, dict(train=args.train, val=args.val))
    print(f'wrote {", ".join(files.values())} in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
