import pytest
import torch

from mmdet_efficientdet.converters import (COCO80_CHANNELS, ConversionError,
                                           convert_effdet_state_dict, unwrap_state_dict)

from ..conftest import (LEVELS, LITE_LEVELS, build, level_model, load_fixture, load_schema,
                        num_params)


@pytest.mark.parametrize('level', LEVELS + LITE_LEVELS)
def test_param_count_equals_effdet_with_90_classes(level):
    schema = load_schema(level)
    model = build(level_model(level, num_classes=90))
    assert num_params(model) == schema['num_params']
    head = model.bbox_head
    assert head.anchor_generator.anchor_scale == schema['config']['anchor_scale']
    assert head.num_levels == schema['config']['max_level'] - schema['config']['min_level'] + 1


def _run(level, num_classes):
    fixture = load_fixture(level)
    model = build(level_model(level, num_classes=num_classes)).eval()
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
    assert len(set(index.tolist())) == len(index) == len(fixture['anchors_yxyx'])
    assert (logits - fixture['cls_logits_flat'][index]).abs().max() <= 1e-4
    tf_deltas = fixture['box_deltas_flat_tytxthtw'][index]
    assert (deltas - tf_deltas[:, [1, 0, 3, 2]]).abs().max() <= 1e-4
    boxes = head.bbox_coder.decode(anchors, deltas)
    reference = fixture['decoded_boxes_xyxy'][index]
    # decoding scales the deltas' float error (<= 1e-4 above) by the box size: random Lite
    # weights give boxes of up to ~3700 px, whose corners then move by up to ~0.07 px with
    # the arithmetic order of another thread count
    size = torch.maximum(reference[:, 2] - reference[:, 0],
                         reference[:, 3] - reference[:, 1]).abs()[:, None]
    assert ((boxes - reference).abs() <= 1e-2 + 2e-4 * size).all()


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
    # another level's refusal: tests/test_tools.py (the converter), test_mistakes (loading)
    with pytest.raises(ConversionError, match="unexpected key 'foo.bar'"):
        convert_effdet_state_dict(dict(sd, **{'foo.bar': torch.zeros(1)}))
    with pytest.raises(ConversionError, match='num_classes=81'):
        convert_effdet_state_dict(sd, num_classes=81)


def test_training_step_d0_tiny_input():
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    model = build(level_model('d0', num_classes=3))
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


def test_channels_last_only_while_training():
    """channels_last speeds up training steps; in eval mode the model is contiguous again,
    so its outputs are bit-equal to a contiguous model's (the reference's)."""
    torch.manual_seed(0)
    plain = build(level_model('d0', num_classes=3, channels_last=False))
    fast = build(level_model('d0', num_classes=3, channels_last=True))
    fast.load_state_dict(plain.state_dict())
    conv = fast.backbone.stem.conv.weight  # 3x3: the formats differ (a 1x1 is both)
    assert fast.training and conv.is_contiguous(memory_format=torch.channels_last)
    fast.eval()
    plain.eval()
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    inputs = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(*(model._forward(inputs) for model in (plain, fast))):
            assert all(torch.equal(x, y) for x, y in zip(a, b))
    fast.train()
    assert conv.is_contiguous(memory_format=torch.channels_last)


def test_images_without_boxes_give_finite_losses_and_gradients():
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    model = build(level_model('d0', num_classes=4))
    model.init_weights()
    samples = []
    for boxes in ([], [[5.0, 5.0, 40.0, 50.0]]):
        sample = DetDataSample(metainfo=dict(img_shape=(96, 128), pad_shape=(96, 128),
                                             batch_input_shape=(96, 128)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes).reshape(-1, 4),
                                           labels=torch.zeros(len(boxes), dtype=torch.long))
        samples.append(sample)
    for batch in ([samples[0], samples[0]], samples):  # all-empty batch, and a mixed one
        model.zero_grad()
        losses = model.loss(torch.randn(len(batch), 3, 96, 128), batch)
        loss, _ = model.parse_losses(losses)
        assert torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)


def test_the_head_takes_its_levels_from_the_anchor_strides():
    from mmdet.registry import MODELS
    head_cfg = level_model('d7x')['bbox_head']
    assert 'num_levels' not in head_cfg
    head = MODELS.build(head_cfg)
    assert head.num_levels == 6 and len(head.cls_norms[0]) == 6
    with pytest.raises(ValueError, match=r'num_levels=5, but the anchor generator has 6 strides'):
        MODELS.build(dict(head_cfg, num_levels=5))
