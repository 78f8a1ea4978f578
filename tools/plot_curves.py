"""Plot the training loss and the validation bbox mAP of a work dir (mmengine scalars.json)."""
import argparse
import glob
import json
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def read_scalars(work_dir):
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not paths:
        raise SystemExit(f'no */vis_data/scalars.json under {work_dir}: not a training work dir')
    train, val = [], []
    with open(paths[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record:
                train.append((record['iter'], record['loss'], record.get('loss_cls'),
                              record.get('loss_bbox')))
            elif 'coco/bbox_mAP' in record:
                val.append((record['step'], record['coco/bbox_mAP'], record['coco/bbox_mAP_50']))
    return train, val


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('work_dir')
    parser.add_argument('--out', help='PNG to write (default: WORK_DIR/curves.png)')
    args = parser.parse_args()
    train, val = read_scalars(args.work_dir)
    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(11, 4))
    iters = [t[0] for t in train]
    ax_loss.plot(iters, [t[1] for t in train], label='loss')
    ax_loss.plot(iters, [t[2] for t in train], label='loss_cls')
    ax_loss.plot(iters, [t[3] for t in train], label='loss_bbox')
    ax_loss.set_xlabel('iteration')
    ax_loss.set_title('training loss')
    ax_loss.legend()
    ax_map.plot([v[0] for v in val], [v[1] for v in val], 'o-', label='bbox mAP@[.5:.95]')
    ax_map.plot([v[0] for v in val], [v[2] for v in val], 's--', label='bbox mAP@.5')
    ax_map.set_xlabel('epoch')
    ax_map.set_ylim(0, 1)
    ax_map.set_title('validation (EMA weights)')
    ax_map.legend()
    fig.tight_layout()
    out = args.out or osp.join(args.work_dir, 'curves.png')
    fig.savefig(out, dpi=100)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
