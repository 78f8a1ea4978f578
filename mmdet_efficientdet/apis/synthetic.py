"""A small COCO-format detection set the project makes itself: no download, the same bytes
from the same seed. Shapes of several classes, sizes from small to large, random colours,
some overlap, on textured backgrounds; image sizes are non-square and not multiples of 128,
and some images hold no object at all."""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ('circle', 'square', 'triangle', 'cross')
PALETTE = [(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48)]
SPLITS = {'train': 480, 'val': 96}


def _image_size(rng: np.random.Generator) -> Tuple[int, int]:
    while True:
        w, h = int(rng.integers(200, 330)), int(rng.integers(150, 250))
        if w != h and w % 128 and h % 128:
            return w, h


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Low-frequency noise + stripes or checkers, muted colours."""
    base = rng.uniform(60, 200, size=3)
    coarse = rng.normal(0, 25, size=(h // 16 + 2, w // 16 + 2, 3))
    noise = np.kron(coarse, np.ones((16, 16, 1)))[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w]
    period = rng.uniform(6, 24)
    if rng.random() < 0.5:
        angle = rng.uniform(0, math.pi)
        pattern = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    else:
        pattern = ((xx // period).astype(int) + (yy // period).astype(int)) % 2 * 2.0 - 1
    img = base + noise + pattern[..., None] * rng.uniform(5, 20) + rng.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _shape(draw: ImageDraw.ImageDraw, label: int, box: Tuple[int, int, int, int],
           colour: tuple) -> None:
    x0, y0, x1, y1 = box
    if CLASSES[label] == 'circle':
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=colour)
    elif CLASSES[label] == 'square':
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
    elif CLASSES[label] == 'triangle':
        draw.polygon([((x0 + x1 - 1) / 2, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)], fill=colour)
    else:
        tx, ty = (x1 - x0) / 3, (y1 - y0) / 3
        draw.rectangle((x0 + tx, y0, x1 - 1 - tx, y1 - 1), fill=colour)
        draw.rectangle((x0, y0 + ty, x1 - 1, y1 - 1 - ty), fill=colour)


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _image(rng: np.random.Generator) -> Tuple[Image.Image, List[Tuple[int, list]]]:
    w, h = _image_size(rng)
    img = _background(rng, w, h)
    draw = ImageDraw.Draw(img)
    objects = []
    count = 0 if rng.random() < 0.08 else int(rng.integers(1, 7))
    for _ in range(count * 4):
        if len(objects) == count:
            break
        size = float(np.exp(rng.uniform(math.log(12), math.log(0.7 * min(w, h)))))
        bw = int(round(size * rng.uniform(0.75, 1.33)))
        bh = int(round(size * rng.uniform(0.75, 1.33)))
        if bw >= w - 2 or bh >= h - 2:
            continue
        x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        box = (x0, y0, x0 + bw, y0 + bh)
        if any(_iou(box, other) > 0.25 for _, other in objects):
            continue
        label = int(rng.integers(len(CLASSES)))
        hue = rng.uniform(0, 1)
        colour = tuple(int(255 * c) for c in _hsv(hue, rng.uniform(0.6, 1), rng.uniform(0.6, 1)))
        _shape(draw, label, box, colour)
        objects.append((label, list(box)))
    return img, objects


def _hsv(h: float, s: float, v: float) -> Tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def make_synthetic_coco(root: str, seed: int = 0,
                        splits: Dict[str, int] = SPLITS) -> Dict[str, str]:
    """Write ``root/{split}/*.png`` and ``root/annotations/instances_{split}.json``.

    Returns the annotation file of each split. Same ``seed`` → same files.
    """
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(CLASSES)]
    ann_files = {}
    for split_index, (split, num_images) in enumerate(sorted(splits.items())):
        rng = np.random.default_rng([seed, split_index])
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for image_id in range(1, num_images + 1):
            img, objects = _image(rng)
            file_name = f'{image_id:06d}.png'
            img.save(osp.join(root, split, file_name))
            images.append(dict(id=image_id, file_name=file_name, width=img.width,
                               height=img.height))
            for label, (x0, y0, x1, y1) in objects:
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id,
                                        category_id=label + 1, bbox=[x0, y0, x1 - x0, y1 - y0],
                                        area=(x1 - x0) * (y1 - y0), iscrowd=0))
        ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
        with open(ann_file, 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        ann_files[split] = ann_file
    return ann_files
