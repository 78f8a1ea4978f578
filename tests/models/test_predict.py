"""Detections: the reference's selection, boxes inside the image, mmdet's selection on request."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.apis import inference_detector, init_detector
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import register_all_modules
from mmengine.config import Config, ConfigDict

from mmdet_efficientdet.apis import convert_effdet_checkpoint
from mmdet_efficientdet.converters import convert_effdet_state_dict

from ..conftest import HARD_NMS, ROOT, build, effdet_checkpoint, level_model, load_predict_fixture

D0_CONFIG = osp.join(ROOT, 'configs/efficientdet/efficientdet_d0_8xb8-300e_coco.py')


def _fixture_model(fixture, level, nms=HARD_NMS):
    """The level's model (effdet's DetBenchPredict selection: hard NMS unless ``nms``)
    with the fixture's weights."""
    model = build(level_model(level, num_classes=90, nms=nms)).eval()
    model.load_state_dict(convert_effdet_state_dict(fixture['state_dict'], 90))
    return model


def _pipeline_metainfo(fixture):
    """The metainfo our test pipeline gives the fixture's image: a 700×420 image resized to fit
    the fixture's 384×256 input (the level's pipeline with that input size)."""
    width, height = fixture['predict_orig_size_wh']
    pipeline = Config.fromfile(D0_CONFIG).test_pipeline
    pipeline[0] = dict(type='mmdet.LoadImageFromNDArray')
    input_h, input_w = fixture['input'].shape[-2:]
    resize = next(t for t in pipeline if t['type'] == 'EfficientDetResize')
    resize['scale'] = (input_w, input_h)
    data = Compose(pipeline)(dict(img=np.zeros((height, width, 3), np.uint8), img_id=0))
    sample = data['data_samples']
    sample.set_metainfo(dict(batch_input_shape=(input_h, input_w)))
    assert sample.scale_factor == pytest.approx((fixture['predict_scale'],) * 2)
    return sample


def _matched(reference, result, min_iou):
    """Which of the reference rows (x1, y1, x2, y2, score, COCO id) have a detection of the same
    class with IoU > min_iou and |Δscore| < 1e-4."""
    iou = bbox_overlaps(reference[:, :4], result.bboxes)
    same_class = reference[:, 5:6].long() - 1 == result.labels[None]
    same_score = (reference[:, 4:5] - result.scores[None]).abs() < 1e-4
    return (same_class & same_score & (iou > min_iou)).any(1)


@pytest.mark.parametrize('level', ['d0', 'd1'])
def test_predict_equals_effdet_detections(level):
    fixture = load_predict_fixture(level)
    model = _fixture_model(fixture, level)
    sample = _pipeline_metainfo(fixture)
    with torch.no_grad():
        result = model.predict(fixture['input'], [sample])[0].pred_instances
    reference = fixture['predict_detections']
    area = (reference[:, 2] - reference[:, 0]) * (reference[:, 3] - reference[:, 1])
    positive = reference[area > 0]
    matched = _matched(positive, result, min_iou=0.97)
    assert matched.float().mean() >= 0.99, f'{int(matched.sum())} of {len(positive)} matched'
    assert len(result) == 100
    width, height = fixture['predict_orig_size_wh']  # clipped there, up to float rounding
    assert result.bboxes[:, 0::2].min() >= 0 and result.bboxes[:, 0::2].max() <= width + 1e-3
    assert result.bboxes[:, 1::2].min() >= 0 and result.bboxes[:, 1::2].max() <= height + 1e-3


def test_mmdet_selection_stays_selectable_and_differs():
    fixture = load_predict_fixture('d0')
    model = _fixture_model(fixture, 'd0')
    sample = _pipeline_metainfo(fixture)
    model.bbox_head.test_cfg = dict(
        topk='each_level', nms_pre=1000, score_thr=0.05, min_bbox_size=0,
        nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
    with torch.no_grad():
        feats = model.extract_feat(fixture['input'])
        ours = model.bbox_head.predict(feats, [sample], rescale=True)[0]
        cls_scores, bbox_preds = model.bbox_head(feats)
        # AnchorHead's own selection on the same outputs
        mmdet = super(type(model.bbox_head), model.bbox_head).predict_by_feat(
            cls_scores, bbox_preds, batch_img_metas=[sample.metainfo],
            cfg=ConfigDict(model.bbox_head.test_cfg), rescale=True)[0]
    assert torch.equal(ours.bboxes, mmdet.bboxes) and torch.equal(ours.labels, mmdet.labels)
    # ... which is not the reference's
    matched = _matched(fixture['predict_detections'], ours, min_iou=0.97)
    assert matched.sum() < 99
    model.bbox_head.test_cfg['topk'] = 'per_level'
    with pytest.raises(ValueError, match="test_cfg.topk 'per_level'; valid choices: "
                                         'all_levels, each_level'):
        model.bbox_head.predict(feats, [sample], rescale=True)


def test_soft_nms_keeps_overlaps_with_decayed_scores():
    fixture = load_predict_fixture('d0')
    sample = _pipeline_metainfo(fixture)
    results = {}
    soft_nms = Config.fromfile(D0_CONFIG).model.test_cfg.nms  # the COCO configs' default
    for soft in (False, True):
        model = _fixture_model(fixture, 'd0', nms=soft_nms if soft else HARD_NMS)
        model.bbox_head.test_cfg['max_per_img'] = 1000  # so that decayed overlaps stay in
        with torch.no_grad():
            results[soft] = model.predict(fixture['input'], [sample])[0].pred_instances
    hard, soft = results[False], results[True]
    assert torch.equal(soft.bboxes[0], hard.bboxes[0])
    bad = (soft.scores[:-1] < soft.scores[1:]).nonzero()[:, 0]
    assert not len(bad), (bad, soft.scores[bad], soft.scores[bad + 1])

    def max_same_class_iou(result):
        iou = bbox_overlaps(result.bboxes, result.bboxes)
        iou[~(result.labels[:, None] == result.labels[None])] = 0
        return iou.fill_diagonal_(0).max()

    assert max_same_class_iou(hard) <= 0.5 < max_same_class_iou(soft)
    assert soft.scores.min() >= 0.001  # effdet's score threshold


def _images(tmp_path):
    """(W, H) sizes of ordinary photos and extreme ones."""
    rng = np.random.default_rng(0)
    for width, height in ((500, 375), (427, 640), (640, 453), (17, 999), (2000, 3000)):
        yield (width, height), rng.integers(0, 255, (height, width, 3), dtype=np.uint8)


def _converted_d0(tmp_path):
    path = str(tmp_path / 'd0.pth')
    convert_effdet_checkpoint(effdet_checkpoint(tmp_path, 'd0', predict=True), path,
                              Config.fromfile(D0_CONFIG).model)
    return path


@pytest.mark.parametrize('weights', ['random', 'converted'])
def test_inference_detector_boxes_stay_inside_the_image(weights, tmp_path):
    register_all_modules()
    checkpoint = _converted_d0(tmp_path) if weights == 'converted' else None
    cfg = Config.fromfile(D0_CONFIG)
    cfg.model.backbone.init_cfg = None  # no download: random or converted weights
    model = init_detector(cfg, checkpoint, device='cpu')
    for (width, height), image in _images(tmp_path):
        result = inference_detector(model, image)
        boxes = result.pred_instances.bboxes
        assert result.img_shape[0] <= 512 and result.img_shape[1] <= 512
        assert max(result.img_shape) == 512  # the real resized image, not the padded square
        assert 0 < len(boxes) <= 100, (width, height)
        assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= width, (width, height)
        assert boxes[:, 1::2].min() >= 0 and boxes[:, 1::2].max() <= height, (width, height)


@pytest.mark.parametrize('sizes,classes,k', [([(16, 24), (8, 12), (4, 6)], 20, 500),
                                             ([(2, 2), (1, 1)], 9, 500),
                                             ([(8, 8), (4, 4)], 90, 2000)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_selection_over_all_levels_equals_the_plain_topk(sizes, classes, k, channels_last):
    """The exact top-k of ``predict`` and the superset the ONNX graph selects from."""
    from mmdet_efficientdet.deploy.graph_selection import pairs_above_bound
    from mmdet_efficientdet.models.dense_heads.efficientdet_head import (
        class_tables, select_topk_all_levels)
    torch.manual_seed(classes)
    anchors = 9
    cls_scores = [torch.randn(2, anchors * classes, h, w) for h, w in sizes]
    cls_scores[0][:, :, ::3] += 3  # some anchors much better, with several good classes
    cls_scores[-1][:, :2 * classes] = 4.0  # ties
    bbox_preds = [torch.randn(2, anchors * 4, h, w) for h, w in sizes]
    if channels_last:
        cls_scores = [c.to(memory_format=torch.channels_last) for c in cls_scores]
    logits, deltas, anchor_ids, labels = select_topk_all_levels(cls_scores, bbox_preds,
                                                                classes, k)
    # the plain definition: every pair of every level, one top-k
    flat_logits = torch.cat([c.permute(0, 2, 3, 1).reshape(2, -1) for c in cls_scores], 1)
    flat_deltas = torch.cat([b.permute(0, 2, 3, 1).reshape(2, -1, 4) for b in bbox_preds], 1)
    expected_logits, flat_ids = flat_logits.topk(min(k, flat_logits.shape[1]), dim=1)
    assert torch.equal(logits, expected_logits)
    for i in range(2):
        pairs = (anchor_ids[i] * classes + labels[i]).sort()
        assert torch.equal(pairs.values, flat_ids[i].sort().values)
        assert torch.equal(deltas[i], flat_deltas[i, anchor_ids[i]])
    # the graph's superset (no top-k of k): every one of the k best pairs, and a
    # superset exactly when the bound is below the k-th best
    tables, best = class_tables(cls_scores, classes)
    for i in range(2):
        sup_logits, sup_anchors, sup_labels = pairs_above_bound(tables, best, i, k, anchors)
        pairs = set((sup_anchors * classes + sup_labels).tolist())
        assert set(flat_ids[i].tolist()) <= pairs
        assert torch.equal(flat_logits[i, sup_anchors * classes + sup_labels], sup_logits)
        assert len(pairs) == len(sup_logits) == (flat_logits[i] >= sup_logits.min()).sum()
        # a little more than k, also with fewer anchors than k (unless ties hold more)
        assert len(sup_logits) <= max(1.2 * k, (flat_logits[i] >= expected_logits[i, -1]).sum())


def test_best_after_nms_equals_nms_over_all_candidates():
    from mmcv.ops import batched_nms

    from mmdet_efficientdet.models.dense_heads.efficientdet_head import best_after_nms
    torch.manual_seed(0)
    for num, max_num in [(5000, 100), (3000, 300), (50, 100)]:
        xy = torch.rand(num, 2) * 300
        boxes = torch.cat([xy, xy + 10 + torch.rand(num, 2) * 80], 1)
        scores, labels = torch.rand(num), torch.randint(0, 3, (num, ))
        scores[10:20] = scores[9]  # equal scores
        nms_cfg = dict(type='nms', iou_threshold=0.5)
        dets, keep = best_after_nms(boxes, scores, labels, nms_cfg, max_num)
        all_dets, all_keep = batched_nms(boxes, scores, labels, nms_cfg)
        assert len(keep) == min(max_num, len(all_keep))
        assert set(keep.tolist()) == set(all_keep[:max_num].tolist())
        # the same rows, up to the order of equal scores
        assert torch.equal(dets[keep.argsort()], all_dets[:max_num][all_keep[:max_num].argsort()])


def test_effdet_release_files_load_as_they_are(tmp_path):
    """A file in the layout of effdet's releases (a bare state dict, 90 COCO ids) loads
    through mmdet's own loaders, converted on load, as the converted file does."""
    from mmdet.apis import DetInferencer
    fixture = load_predict_fixture('d0')
    release = str(tmp_path / 'tf_efficientdet_d0_release.pth')
    torch.save(fixture['state_dict'], release)  # what effdet publishes
    converted = _converted_d0(tmp_path)
    register_all_modules()
    cfg = Config.fromfile(D0_CONFIG)
    cfg.model.backbone.init_cfg = None
    image = next(_images(tmp_path))[1]
    direct = inference_detector(init_detector(cfg, release, device='cpu'), image)
    reference = inference_detector(init_detector(cfg, converted, device='cpu'), image)
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(direct.pred_instances[key], reference.pred_instances[key]), key
    cfg = Config.fromfile(D0_CONFIG)  # inference_detector changed the pipeline of the last
    cfg.model.backbone.init_cfg = None
    inferencer = DetInferencer(model=cfg, weights=release, device='cpu', show_progress=False)
    scores = inferencer(image, return_datasamples=True)['predictions'][0].pred_instances.scores
    assert torch.equal(scores, reference.pred_instances.scores)


def _mmdet_projects_d0(pool_pad_value, checkpoint_from='auto'):
    """The committed fixture of mmdet projects/EfficientDet's D0 (its outputs, made from its
    source by tests/fixtures/make_mmdet_projects_fixtures.py) and our D0's raw outputs after
    loading its seeded weights, in its key names, as they are."""
    from ..conftest import FIXTURES
    from ..fixtures.seeded import seeded_input, seeded_state_dict
    fixture = torch.load(osp.join(osp.dirname(FIXTURES), 'mmdet_projects', 'efficientdet_d0.pth'),
                         weights_only=True)
    cfg = level_model('d0', num_classes=90)
    cfg.neck.pool_pad_value = pool_pad_value
    cfg.checkpoint_from = checkpoint_from
    model = build(cfg).eval()
    model.load_state_dict(seeded_state_dict(fixture['state_dict_shapes']), strict=True)
    with torch.no_grad():
        return fixture, model._forward(seeded_input((1, 3, *fixture['input_hw'])))


@pytest.mark.parametrize('pad_value', [0.0, float('-inf')])
def test_mmdet_projects_efficientdet_checkpoints_load_with_its_outputs(pad_value):
    """A checkpoint of mmdet's own projects/EfficientDet D0 (its keys, seeded weights; its
    outputs made from its source by tests/fixtures/make_mmdet_projects_fixtures.py) loads
    into our D0, converted on load: its outputs, in our anchor order, once the BiFPN pads its
    max-pooling with 0 as it does (pool_pad_value=0); TF's -inf differs at the borders."""
    fixture, (cls_scores, bbox_preds) = _mmdet_projects_d0(pool_pad_value=pad_value)
    # its anchor a = ratio * 3 + scale, ours scale * 3 + ratio
    order = [ratio * 3 + scale for scale in range(3) for ratio in range(3)]
    worst = 0.0
    for ours, theirs, width in ((cls_scores, fixture['cls_scores'], 90),
                                (bbox_preds, fixture['bbox_preds'], 4)):
        for mine, its in zip(ours, theirs):
            its = its.reshape(1, 9, width, *its.shape[-2:])[:, order].reshape(its.shape)
            worst = max(worst, (mine - its).abs().max().item())
    assert (worst <= 1e-5) == (pad_value == 0.0), worst


def test_mmdet_projects_tensorflow_checkpoints_need_saying_so():
    """Its tensorflow/ configs' checkpoints have the same keys and head outputs, read as TF
    reads them: anchors octave-scale major as ours, deltas (dy, dx, dh, dw).
    checkpoint_from='mmdet-projects-tf' keeps the anchor order and swaps the deltas."""
    fixture, (cls_scores, bbox_preds) = _mmdet_projects_d0(
        pool_pad_value=0.0, checkpoint_from='mmdet-projects-tf')
    for mine, its in zip(cls_scores, fixture['cls_scores']):
        assert (mine - its).abs().max() <= 1e-5
    for mine, its in zip(bbox_preds, fixture['bbox_preds']):
        its = its.reshape(1, 9, 4, *its.shape[-2:])[:, :, [1, 0, 3, 2]].reshape(its.shape)
        assert (mine - its).abs().max() <= 1e-5
    with pytest.raises(ValueError, match='checkpoint_from'):
        build(dict(level_model('d0'), checkpoint_from='mmdet-projects'))
