import pytest
import torch

from mmdet_efficientdet.converters import (COCO80_CHANNELS, ConversionError, check_state_dict,
                                           convert_effdet_state_dict, unwrap_state_dict)
from mmdet_efficientdet.model_cfg import efficientdet_model

from ..conftest import LEVELS, LITE_LEVELS, build, load_fixture, load_schema, num_params


@pytest.mark.parametrize('level', LEVELS + LITE_LEVELS)
def test_param_count_equals_effdet_with_90_classes(level):
    schema = load_schema(level)
    model = build(efficientdet_model(level, num_classes=90))
    assert num_params(model) == schema['num_params']
    head = model.bbox_head
    assert head.anchor_generator.anchor_scale == schema['config']['anchor_scale']
    assert head.num_levels == schema['config']['max_level'] - schema['config']['min_level'] + 1


def _run(level, num_classes, channels_last=False):
    fixture = load_fixture(level)
    model = build(efficientdet_model(level, num_classes=num_classes,
                                     channels_last=channels_last)).eval()
    model.load_state_dict(convert_effdet_state_dict(fixture['state_dict'], num_classes))
    with torch.no_grad():
        cls_scores, bbox_preds = model.bbox_head(model.extract_feat(fixture['input']))
    head = model.bbox_head
    sizes = [c.shape[-2:] for c in cls_scores]
    anchors = torch.cat(head.prior_generator.grid_priors(sizes, device='cpu'))
    logits = torch.cat([c[0].permute(1, 2, 0).reshape(-1, num_classes) for c in cls_scores])
    deltas = torch.cat([b[0].permute(1, 2, 0).reshape(-1, 4) for b in bbox_preds])
    return fixture, head, anchors, logits, deltas


def _match_by_geometry(anchors_xyxy, fixture_yxyx):
    """index into the fixture of each of our anchors, matched by their coordinates."""
    ours = anchors_xyxy[:, [1, 0, 3, 2]].double()
    ref = fixture_yxyx.double()
    assert ours.shape == ref.shape

    def key(boxes):
        return [tuple(row) for row in torch.round(boxes * 100).long().tolist()]

    position = {k: i for i, k in enumerate(key(ref))}
    assert len(position) == len(ref), 'fixture anchors are not unique'
    index = torch.tensor([position[k] for k in key(ours)])
    assert torch.allclose(ours, ref[index], atol=1e-3)
    return index


@pytest.mark.parametrize('level', ['d0', 'd1', 'lite0', 'lite1'])
def test_parity_with_effdet(level):
    fixture, head, anchors, logits, deltas = _run(level, 90)
    index = _match_by_geometry(anchors, fixture['anchors_yxyx'])
    assert len(set(index.tolist())) == len(index) == 18414
    assert (logits - fixture['cls_logits_flat'][index]).abs().max() <= 1e-4
    tf_deltas = fixture['box_deltas_flat_tytxthtw'][index]
    assert (deltas - tf_deltas[:, [1, 0, 3, 2]]).abs().max() <= 1e-4
    boxes = head.bbox_coder.decode(anchors, deltas)
    assert (boxes - fixture['decoded_boxes_xyxy'][index]).abs().max() <= 1e-2
    # channels-last (our configs' default) sums in another order: same bars on the outputs
    # (its deltas' rounding, times boxes of ~1000 px, exceeds the 1e-2 px box bar)
    _, _, _, logits_cl, deltas_cl = _run(level, 90, channels_last=True)
    assert (logits_cl - fixture['cls_logits_flat'][index]).abs().max() <= 1e-4
    assert (deltas_cl - tf_deltas[:, [1, 0, 3, 2]]).abs().max() <= 1e-4


def test_80_class_conversion_keeps_the_kept_classes_logits():
    fixture, _, anchors, logits, _ = _run('d0', 80)
    index = _match_by_geometry(anchors, fixture['anchors_yxyx'])
    assert logits.shape[1] == 80 and len(COCO80_CHANNELS) == 80
    assert (logits - fixture['cls_logits_flat'][index][:, COCO80_CHANNELS]).abs().max() <= 1e-4
    dropped = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
    assert [i + 1 for i in range(90) if i not in COCO80_CHANNELS] == sorted(dropped)


def test_wrapped_checkpoints_and_mismatched_level():
    sd = load_fixture('d1')['state_dict']
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in sd.items()}
    key = 'fpn.cell.0.fnode.0.combine.edge_weights'
    wrapped = {'state_dict': sd, 'state_dict_ema': ema}
    assert unwrap_state_dict(wrapped)[key].equal(ema[key])
    assert unwrap_state_dict(wrapped, use_ema=False)[key].equal(sd[key])
    assert 'backbone.bn1.weight' in unwrap_state_dict({f'module.{k}': v for k, v in sd.items()})
    d0 = build(efficientdet_model('d0'))
    with pytest.raises(ConversionError, match=r"shape mismatch at 'neck\.extra_levels\.0\.conv\."
                                              r"conv\.weight': checkpoint \(88, 320, 1, 1\) vs "
                                              r"EfficientDet-d0 \(64, 320, 1, 1\)"):
        check_state_dict(convert_effdet_state_dict(sd), d0.state_dict(), 'EfficientDet-d0')
    with pytest.raises(ConversionError, match="unexpected key 'foo.bar'"):
        convert_effdet_state_dict(dict(sd, **{'foo.bar': torch.zeros(1)}))
    with pytest.raises(ConversionError, match='num_classes=81'):
        convert_effdet_state_dict(sd, num_classes=81)


def test_training_step_d0_tiny_input():
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    model = build(efficientdet_model('d0', num_classes=3))
    model.init_weights()
    samples = []
    for label in (1, 2):  # batch of 2: train-mode BN on the 1x1 P7 map needs > 1 value
        sample = DetDataSample(metainfo=dict(img_shape=(96, 128), pad_shape=(96, 128),
                                             batch_input_shape=(96, 128)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[10.0, 12.0, 60.0, 70.0]]),
                                           labels=torch.tensor([label]))
        samples.append(sample)
    losses = model.loss(torch.randn(2, 3, 96, 128), samples)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert model.bbox_head.conv_cls.pointwise.conv.weight.grad.abs().sum() > 0
