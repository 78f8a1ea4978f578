"""Do a config's anchors fit a dataset's boxes? What ``tools/check_dataset.py`` reports.

The boxes of (a sample of) the training images are resized as the test pipeline resizes them
(one scale, the image fitted into the config's square input); the config's own anchor
generator lays its anchors over that input and the config's own assigner matches them. A box
is *covered* when an anchor assigned to it overlaps it at the assigner's positive IoU
threshold or more, *matched only by force* when its anchors are the low-quality matches the
assigner gives every box (TF's argmax match: its one best anchor, at whatever IoU), and *not
matched* when it gets no anchor at all (another box took its best one). Boxes matched only
by force learn from a poor start; unmatched ones not at all: the usual cause of "the loss
goes down but AP is ~0" on small, thin or tall objects.
"""
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..engine.config_checks import fixed_input_size

# Candidate anchor shapes of the suggestion: aspect ratios r as TF EfficientDet gives them,
# (x, y) multipliers (sqrt(r), 1 / sqrt(r)) rounded as its defaults (1.4, 0.7) are.
RATIO_SETS = {
    '1, 2, 1/2 (default)': ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4)),
    '1, 4, 1/4': ((1.0, 1.0), (2.0, 0.5), (0.5, 2.0)),
    '1, 2, 1/2, 4, 1/4': ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4), (2.0, 0.5), (0.5, 2.0)),
    '1, 4, 1/4, 8, 1/8': ((1.0, 1.0), (2.0, 0.5), (0.5, 2.0), (2.8, 0.35), (0.35, 2.8)),
}
# the level table's anchor scales (3: Lite, 4: D0-D6, 5: D7) and smaller ones for small boxes
ANCHOR_SCALES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
SIZE_BUCKETS = (('small (< 32 px)', 0, 32), ('medium (32-96 px)', 32, 96),
                ('large (> 96 px)', 96, math.inf))
ASPECT_BUCKETS = (('tall (w/h < 1/3)', 0, 1 / 3), ('regular', 1 / 3, 3),
                  ('wide (w/h > 3)', 3, math.inf))


def sample_boxes(ann_file: str, size: Tuple[int, int], class_names: Optional[Sequence[str]],
                 max_images: int, seed: int = 0) -> List[np.ndarray]:
    """xyxy boxes (N, 4) of up to ``max_images`` images of a COCO file (a seeded sample),
    resized as the test pipeline would fit each image into ``size`` (H, W)."""
    with open(ann_file) as f:
        coco = json.load(f)
    categories = {c['id']: c['name'] for c in coco.get('categories', [])}
    keep = {i for i, n in categories.items() if not class_names or n in class_names}
    per_image: Dict[int, list] = {}
    for ann in coco.get('annotations', []):
        x, y, w, h = ann['bbox']
        if ann.get('category_id') in keep and w >= 1 and h >= 1 and not ann.get('iscrowd'):
            per_image.setdefault(ann['image_id'], []).append([x, y, x + w, y + h])
    images = [image for image in coco['images'] if image['id'] in per_image]
    rng = np.random.default_rng(seed)
    if len(images) > max_images:
        images = [images[i] for i in sorted(rng.choice(len(images), max_images, replace=False))]
    out = []
    for image in images:
        scale = min(size[1] / image['width'], size[0] / image['height'])
        out.append(np.asarray(per_image[image['id']], dtype=np.float32) * scale)
    return out


class Fit:
    """How the anchors met the boxes: per box its best IoU over the anchors assigned to it
    (-1: none assigned), its size and aspect; what was asked of the assigner."""

    def __init__(self, best: np.ndarray, sizes: np.ndarray, aspects: np.ndarray,
                 threshold: float) -> None:
        self.best, self.sizes, self.aspects, self.threshold = best, sizes, aspects, threshold

    @property
    def covered(self) -> float:
        return float((self.best >= self.threshold).mean()) if len(self.best) else 0.0

    def shares(self, mask: np.ndarray) -> Tuple[float, float, float]:
        """(covered, matched only by force, not matched) among the boxes of ``mask``."""
        best = self.best[mask]
        if not len(best):
            return 0.0, 0.0, 0.0
        covered = float((best >= self.threshold).mean())
        unmatched = float((best < 0).mean())
        return covered, 1 - covered - unmatched, unmatched


def anchor_fit(model_cfg: dict, boxes: List[np.ndarray], size: Tuple[int, int],
               anchor_scale: Optional[float] = None,
               aspect_ratios: Optional[Sequence[Tuple[float, float]]] = None) -> Fit:
    """The config's anchors (optionally of another ``anchor_scale`` / ``aspect_ratios``)
    over an input of ``size``, matched to ``boxes`` by the config's assigner."""
    from mmdet.registry import TASK_UTILS
    from mmdet.structures.bbox import bbox_overlaps
    from mmengine.structures import InstanceData
    head = model_cfg['bbox_head']
    generator_cfg = dict(head['anchor_generator'])
    if anchor_scale is not None:
        generator_cfg['anchor_scale'] = anchor_scale
    if aspect_ratios is not None:
        generator_cfg['aspect_ratios'] = [tuple(r) for r in aspect_ratios]
    generator = TASK_UTILS.build(generator_cfg)
    shapes = [(math.ceil(size[0] / s[1]), math.ceil(size[1] / s[0])) for s in generator.strides]
    anchors = torch.cat(generator.grid_priors(shapes, device='cpu'))
    assigner_cfg = model_cfg['train_cfg']['assigner']
    assigner = TASK_UTILS.build(assigner_cfg)
    best, sizes, aspects = [], [], []
    for image_boxes in boxes:
        gts = torch.from_numpy(image_boxes)
        result = assigner.assign(InstanceData(priors=anchors),
                                 InstanceData(bboxes=gts, labels=torch.zeros(len(gts)).long()))
        ious = bbox_overlaps(gts, anchors)
        for k in range(len(gts)):
            assigned = result.gt_inds == k + 1
            best.append(float(ious[k, assigned].max()) if assigned.any() else -1.0)
        wh = (gts[:, 2:] - gts[:, :2]).numpy()
        sizes.append(np.sqrt(wh[:, 0] * wh[:, 1]))
        aspects.append(wh[:, 0] / wh[:, 1])
    cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0))
    return Fit(np.asarray(best), cat(sizes), cat(aspects), float(assigner_cfg['pos_iou_thr']))


def suggest(model_cfg: dict, boxes: List[np.ndarray], size: Tuple[int, int]) -> Tuple:
    """The (share, anchor_scale, ratio set name, ratios) of the small search over the level
    table's anchor scales and a few ratio sets that covers the most boxes (on a tie: fewer
    anchors, then the scale nearest the config's)."""
    current = model_cfg['bbox_head']['anchor_generator'].get('anchor_scale', 4.0)
    results = []
    for name, ratios in RATIO_SETS.items():
        for scale in ANCHOR_SCALES:
            share = anchor_fit(model_cfg, boxes, size, scale, ratios).covered
            results.append((round(share, 3), -len(ratios), -abs(math.log(scale / current)),
                            scale, name, ratios))
    share, _, _, scale, name, ratios = max(results)
    return share, scale, name, ratios


def _percent(value: float) -> str:
    return f'{100 * value:.1f} %'


def report(fit: Fit, suggestion: Optional[Tuple], model_cfg: dict, images: int, of: int,
           size: Tuple[int, int]) -> List[str]:
    """The lines ``tools/check_dataset.py`` prints."""
    generator = model_cfg['bbox_head']['anchor_generator']
    ratios = ' '.join(f'({x:g}, {y:g})' for x, y in generator['aspect_ratios'])
    lines = [f'  anchor fit: {len(fit.best)} boxes of {images} of {of} images at '
             f'{size[1]}x{size[0]}, anchor_scale {generator.get("anchor_scale", 4.0):g}, '
             f'ratios {ratios}; positive at IoU >= {fit.threshold:g}']
    covered, forced, unmatched = fit.shares(np.ones(len(fit.best), bool))
    forced_ious = fit.best[(fit.best >= 0) & (fit.best < fit.threshold)]
    detail = (f' (best IoU median {np.median(forced_ious):.2f}, min {forced_ious.min():.2f})'
              if len(forced_ious) else '')
    lines.append(f'    covered {_percent(covered)}, matched only by force {_percent(forced)}'
                 f'{detail}, not matched {_percent(unmatched)}')
    for title, buckets, values in (('by size', SIZE_BUCKETS, fit.sizes),
                                   ('by aspect', ASPECT_BUCKETS, fit.aspects)):
        parts = []
        for name, low, high in buckets:
            mask = (values >= low) & (values < high)
            if mask.any():
                parts.append(f'{name} {_percent(fit.shares(mask)[0])} of {int(mask.sum())}')
        lines.append(f'    covered {title}: ' + ', '.join(parts))
    if suggestion is not None:
        share, scale, name, suggested = suggestion
        if share > fit.covered + 0.005:
            change = f'model.bbox_head.anchor_generator.anchor_scale={scale:g}'
            if list(map(tuple, suggested)) != [tuple(r) for r in generator['aspect_ratios']]:
                change += (f' and aspect_ratios={[tuple(r) for r in suggested]} (ratios {name}; '
                           'a head of another anchor count: its box and class layers start '
                           'anew)')
            lines.append(f'    suggestion: {change} covers {_percent(share)}')
        else:
            lines.append('    suggestion: none covers more (scales '
                         f'{", ".join(f"{s:g}" for s in ANCHOR_SCALES)} x ratio sets '
                         f'{"; ".join(RATIO_SETS)})')
    return lines


def check_anchor_fit(model_cfg: dict, dataset: dict, max_images: int = 300,
                     search: bool = True) -> Tuple[Optional[Fit], List[str]]:
    """(fit, report lines) of a COCO-style dataset config under ``model_cfg``; (None, a note)
    where anchors do not apply (no anchor generator, no MaxIoU-style assigner, no fixed
    input size)."""
    head = model_cfg.get('bbox_head') or {}
    assigner = (model_cfg.get('train_cfg') or {}).get('assigner') or {}
    size = fixed_input_size(model_cfg)
    if 'anchor_generator' not in head or 'pos_iou_thr' not in assigner or size is None:
        return None, ['  anchor fit: not checked (it needs an anchor head, an IoU-threshold '
                      'assigner and a fixed input size)']
    root = dataset.get('data_root')
    ann_file = dataset['ann_file']
    ann_file = ann_file if not root or osp.isabs(ann_file) else osp.join(root, ann_file)
    with open(ann_file) as f:
        total = len(json.load(f).get('images', []))
    classes = (dataset.get('metainfo') or {}).get('classes')
    boxes = sample_boxes(ann_file, size, classes, max_images)
    if not boxes:
        return None, ['  anchor fit: no boxes to check']
    fit = anchor_fit(model_cfg, boxes, size)
    suggestion = suggest(model_cfg, boxes, size) if search else None
    return fit, report(fit, suggestion, model_cfg, len(boxes), total, size)
