"""What ``tools/check_dataset.py`` finds in a config's COCO-style datasets before a run
trains to AP 0.000: missing and unreadable images, sizes that differ from the annotation
file, unknown category ids, zero-size boxes and boxes outside their image (which mmdet drops
without a word), images without boxes, and a class count that does not fit ``num_classes``.
"""
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional

from mmengine.config import Config

EXAMPLES = 3  # shown per finding


class Findings:
    """Findings of one split: ``errors``/``notes`` map a kind to (count, first examples)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.errors: Dict[str, list] = defaultdict(lambda: [0, []])
        self.notes: Dict[str, list] = defaultdict(lambda: [0, []])
        self.summary = ''
        self.coco: Optional[dict] = None
        self.classes: Optional[List[str]] = None

    def add(self, kind: str, example: str, error: bool = True) -> None:
        entry = (self.errors if error else self.notes)[kind]
        entry[0] += 1
        if len(entry[1]) < EXAMPLES:
            entry[1].append(example)

    def lines(self) -> List[str]:
        out = [f'{self.name}: {self.summary}']
        for label, table in (('ERROR', self.errors), ('note', self.notes)):
            for kind, (count, examples) in table.items():
                out.append(f'  {label} {kind}: {count} (e.g. {"; ".join(examples)})')
        if not self.errors:
            out.append('  ok')
        return out


def dataset_configs(cfg: Config) -> Dict[str, dict]:
    """The dataset of each dataloader of ``cfg`` (train/val/test), wrappers unwrapped."""
    found, seen = {}, set()
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        dataset = loader.get('dataset') if loader else None
        while dataset is not None and 'dataset' in dataset and 'ann_file' not in dataset:
            dataset = dataset['dataset']  # RepeatDataset, ClassBalancedDataset, ...
        if dataset is None:
            continue
        key = (dataset.get('data_root'), dataset.get('ann_file'),
               str(dataset.get('data_prefix')))
        if key not in seen:  # test_dataloader is often val_dataloader again
            seen.add(key)
            found[split] = dataset
    return found


def _path(root: Optional[str], path: str) -> str:
    return path if not root or osp.isabs(path) else osp.join(root, path)


# PNG's last chunk (IEND, no data, its CRC) and JPEG's end-of-image marker: a file cut off in
# the middle lacks them. Read from the file's end only: cheap even for COCO's 118k images.
_PNG_END = b'IEND\xaeB`\x82'
_JPEG_END = b'\xff\xd9'


_SIGNATURES = {'.png': (b'\x89PNG\r\n\x1a\n', 'PNG'), '.jpg': (b'\xff\xd8', 'JPEG'),
               '.jpeg': (b'\xff\xd8', 'JPEG')}


def image_file_fault(path: str) -> Optional[str]:
    """Why a PNG or JPEG file cannot be read, judged from its first and last bytes (cheap even
    for COCO's 118k images): not an image of its kind at all, or cut off (a truncated copy or
    download); None if neither. Other formats are not judged."""
    suffix = osp.splitext(path)[1].lower()
    if suffix not in _SIGNATURES:
        return None
    signature, kind = _SIGNATURES[suffix]
    with open(path, 'rb') as f:
        head = f.read(len(signature))
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 1024))
        tail = f.read()
    if head != signature:
        return f'not a {kind} image (it begins with {head[:8]!r})'
    ends = (tail.rstrip(b'\x00').endswith(_PNG_END) if suffix == '.png'
            else _JPEG_END in tail)  # some cameras write data after JPEG's end marker
    return None if ends else 'the file is cut off (no end)'


def dropped_box(bbox, area, image: dict) -> Optional[str]:
    """Why mmdet's ``CocoDataset`` drops a box without a word: ``'zero_size'`` (w or h under
    1 px, or no area), ``'outside'`` (wholly outside its image), or None. The one rule both
    ``tools/check_dataset.py`` and the training start count by."""
    x, y, w, h = bbox
    if w < 1 or h < 1 or (area is not None and area <= 0):
        return 'zero_size'
    if (max(0, min(x + w, image['width']) - max(x, 0)) *
            max(0, min(y + h, image['height']) - max(y, 0))) == 0:
        return 'outside'
    return None


def mmdet_dropped_boxes(coco: dict, classes: Optional[List[str]]) -> Dict[str, int]:
    """How many boxes mmdet's ``CocoDataset`` drops without a word when it loads ``coco``, by
    its own rules: zero size, wholly outside the image, category not among ``classes``."""
    categories = {c['id']: c['name'] for c in coco.get('categories', [])}
    kept = {i for i, n in categories.items() if not classes or n in classes}
    images = {image['id']: image for image in coco.get('images', [])}
    dropped = dict(outside=0, zero_size=0, category=0)
    for ann in coco.get('annotations', []):
        image = images.get(ann.get('image_id'))
        if image is None or ann.get('ignore', False):
            continue
        reason = dropped_box(ann['bbox'], ann.get('area'), image)
        if reason:
            dropped[reason] += 1
        elif ann.get('category_id') not in kept:
            dropped['category'] += 1
    return dropped


def _read_image_size(path: str):
    """(width, height) of the decoded image, or the reason it cannot be decoded."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image.load()  # decodes it all: a truncated file fails here
            return image.size
    except Exception as error:  # PIL raises many kinds for foreign bytes
        return f'{type(error).__name__}: {error}'


def _read_annotations(ann_file: str, findings: Findings) -> Optional[dict]:
    """The parsed COCO-style file, or None with the reason added to ``findings``."""
    problem = None
    if not osp.isfile(ann_file):
        problem = ('annotation file missing', ann_file)
    else:
        try:
            with open(ann_file) as f:
                coco = json.load(f)
        except ValueError as error:  # json's JSONDecodeError, UnicodeDecodeError
            problem = ('annotation file is not valid JSON', f'{ann_file}: {error}')
        else:
            if not isinstance(coco, dict) or 'images' not in coco:
                problem = ('not a COCO-style annotation file (no "images")', ann_file)
            elif not coco['images']:
                problem = ('annotation file lists no image: an empty dataset', ann_file)
    if problem:
        findings.summary = ann_file
        findings.add(*problem)
        return None
    return coco


def _check_boxes(coco: dict, classes: List[str], findings: Findings) -> Dict[int, int]:
    """Each annotation against its image and the classes; the boxes mmdet keeps, by image."""
    categories = {c['id']: c['name'] for c in coco.get('categories', [])}
    used = {i for i, n in categories.items() if n in classes}
    images = {image['id']: image for image in coco['images']}
    boxes = defaultdict(int)
    for ann in coco.get('annotations', []):
        image = images.get(ann.get('image_id'))
        where = f"annotation {ann.get('id')} of image {ann.get('image_id')}"
        if image is None:
            findings.add('annotations of unknown image ids', where)
            continue
        category = ann.get('category_id')
        if category not in categories:
            findings.add('unknown category ids (mmdet drops their boxes)',
                         f'{where}: category_id {category}, the file has '
                         f'{sorted(categories)}')
            continue
        if category not in used:
            findings.add('boxes of categories not in the config\'s classes (not trained)',
                         f'{where}: {categories[category]!r}', error=False)
            continue
        reason = dropped_box(ann['bbox'], ann.get('area'), image)
        if reason:
            kind = ('zero-size boxes (w or h < 1 px: mmdet drops them)' if reason == 'zero_size'
                    else 'boxes wholly outside their image (mmdet drops them)')
            findings.add(kind, f'{where}: bbox {ann["bbox"]} in '
                         f'{image["width"]}x{image["height"]}')
            continue
        x, y, w, h = ann['bbox']
        if x < -1 or y < -1 or x + w > image['width'] + 1 or y + h > image['height'] + 1:
            findings.add('boxes outside their image',
                         f'{where}: bbox {ann["bbox"]} in {image["width"]}x{image["height"]}')
        boxes[image['id']] += 1
    return boxes


def _check_image_files(coco: dict, image_dir: str, decode, boxes: Dict[int, int],
                       findings: Findings) -> None:
    """Each image file: there, readable (decoded, or its ends only), of the file's size."""
    for image in coco['images']:
        path = osp.join(image_dir, image['file_name'])
        if not osp.isfile(path):
            findings.add('missing image files', path)
            continue
        if decode == 'ends':
            fault = image_file_fault(path)
            if fault:
                findings.add('unreadable images', f'{path}: {fault}')
        elif decode:
            size = _read_image_size(path)
            if isinstance(size, str):
                findings.add('unreadable images', f'{path}: {size}')
            elif size != (image['width'], image['height']):
                findings.add('images whose size differs from the annotation file',
                             f'{path}: {size[0]}x{size[1]}, file says '
                             f'{image["width"]}x{image["height"]}')
        if not boxes[image['id']]:
            findings.add('images without boxes', image['file_name'], error=False)


def check_coco_dataset(name: str, dataset: dict, num_classes: Optional[int],
                       decode: bool = True) -> Findings:
    """Check one COCO-style dataset config (``ann_file``, ``data_prefix.img``, ``metainfo``).
    ``decode``: decode every image (``True``), only check that PNG and JPEG files are not cut
    off (``'ends'``: fast), or only that the files exist (``False``). ``findings.coco`` is
    the parsed annotation file (None where it could not be read)."""
    findings = Findings(name)
    root = dataset.get('data_root')
    ann_file = _path(root, dataset['ann_file'])
    coco = _read_annotations(ann_file, findings)
    if coco is None:
        return findings
    categories = {c['id']: c['name'] for c in coco.get('categories', [])}
    classes = (dataset.get('metainfo') or {}).get('classes')
    classes = list(classes) if classes else list(categories.values())
    for missing in [c for c in classes if c not in categories.values()]:
        findings.add('classes of the config with no category in the file', repr(missing))
    boxes = _check_boxes(coco, classes, findings)
    image_dir = _path(root, (dataset.get('data_prefix') or {}).get('img', ''))
    _check_image_files(coco, image_dir, decode, boxes, findings)
    counts = f'{len(classes)} classes, model.bbox_head.num_classes={num_classes}'
    if num_classes is not None and num_classes < len(classes):
        findings.add('more classes than the model has outputs', counts)
    elif num_classes is not None and num_classes > len(classes):
        findings.add('model outputs no class uses', counts, error=False)
    findings.summary = (f'{ann_file}: {len(coco["images"])} images, {sum(boxes.values())} '
                        f'boxes, {len(classes)} classes')
    findings.coco, findings.classes = coco, classes
    return findings


def model_num_classes(cfg: Config) -> Optional[int]:
    head = cfg.get('model', {}).get('bbox_head')
    return head.get('num_classes') if head else None
