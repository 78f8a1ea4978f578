"""tools/infer.py on a folder (with a corrupt file) and on a short generated video."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from .conftest import ROOT, build, call_tool, level_model, load_tool

DEMO = osp.join(ROOT, 'configs/efficientdet/efficientdet_d0_demo_synthetic.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A demo-structure model (4 classes) whose class bias makes every anchor score ~0.5, as
    tools/train.py would save it (with dataset_meta)."""
    torch.manual_seed(0)
    model = build(level_model('d0', num_classes=4))
    model.init_weights()
    with torch.no_grad():
        model.bbox_head.conv_cls.pointwise.conv.bias.zero_()
    path = str(tmp_path_factory.mktemp('ckpt') / 'demo.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(
        classes=('circle', 'square', 'triangle', 'cross')))), path)
    return path


def test_folder_with_a_corrupt_file(checkpoint, tmp_path, capsys):
    folder = tmp_path / 'images'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in (('a.jpg', (120, 200)), ('b.png', (300, 90))):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 this is not a JPEG')
    out = tmp_path / 'out'
    assert call_tool('infer', DEMO, checkpoint, folder, '--out-dir', out, '--score-thr',
                     '0.3') == 0
    skipped = [line for line in capsys.readouterr().err.splitlines()
               if line.startswith('infer: skipped')]
    assert len(skipped) == 1 and 'broken.jpg: not a readable image' in skipped[0]
    assert sorted(p.name for p in (out / 'vis').iterdir()) == ['a.jpg', 'b.png']
    detections = json.loads((out / 'detections.json').read_text())
    assert {d['file_name'] for d in detections} == {'a.jpg', 'b.png'}
    for d in detections:
        x, y, w, h = d['bbox']
        size = (200, 120) if d['file_name'] == 'a.jpg' else (90, 300)
        assert d['score'] >= 0.3 and d['category'] in ('circle', 'square', 'triangle', 'cross')
        # the dataset's ids (the demo data's annotation files, made by tools/make_dataset.py,
        # are not there in the test: COCO's convention of ids from 1), as test.py --out has them
        assert d['category_id'] == ('circle', 'square', 'triangle', 'cross').index(
            d['category']) + 1
        assert 0 <= x and 0 <= y and x + w <= size[0] + 1e-3 and y + h <= size[1] + 1e-3


def test_video(checkpoint, tmp_path, capsys):
    video = str(tmp_path / 'clip.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 10, (160, 96))
    rng = np.random.default_rng(1)
    for _ in range(4):
        writer.write(rng.integers(0, 255, (96, 160, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / 'out'
    assert call_tool('infer', DEMO, checkpoint, video, '--out-dir', out) == 0
    assert 'infer: 4 frames drawn' in capsys.readouterr().out
    capture = cv2.VideoCapture(str(out / 'clip_det.mp4'))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (160, 96)
    detections = json.loads((out / 'detections.json').read_text())
    assert {d['file_name'] for d in detections} <= {f'frame_{i:06d}' for i in range(4)}


def test_category_ids_are_the_annotation_files(tmp_path):
    """detections.json names categories by the dataset's ids, as tools/test.py --out does."""
    from mmengine.config import Config
    infer = load_tool('infer')
    (tmp_path / 'annotations').mkdir()
    names = ((7, 'cross'), (3, 'circle'), (12, 'square'), (5, 'triangle'))
    categories = [dict(id=i, name=n) for i, n in names]
    (tmp_path / 'annotations' / 'instances_val.json').write_text(json.dumps(dict(
        images=[], annotations=[], categories=categories)))
    cfg = Config.fromfile(DEMO)
    cfg.test_dataloader.dataset.data_root = str(tmp_path) + '/'
    classes = ('circle', 'square', 'triangle', 'cross')
    assert infer.category_ids(cfg, classes) == [3, 12, 5, 7]
    cfg.test_dataloader.dataset.data_root = str(tmp_path / 'elsewhere') + '/'
    assert infer.category_ids(cfg, classes) == [1, 2, 3, 4]
