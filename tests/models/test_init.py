"""Initialisation: the reference's schemes from init_cfg; loaded weights are never undone."""
import math

import pytest
import torch
from mmengine.config import Config

from mmdet_efficientdet.converters import ConversionError
from mmdet_efficientdet.models import BiFPNNeck, TFEfficientNet

from ..conftest import ROOT, build, level_model
from .test_backbone import _timm_state_dict


def _init(module, seed=0):
    torch.manual_seed(seed)
    module.init_weights()
    return module


def test_backbone_from_scratch_is_tf_fan_out_per_group():
    backbone = _init(TFEfficientNet('b0'))
    block = backbone.blocks[5][1]  # 192 -> 1152 -> 192, depthwise 5x5
    depthwise = block.depthwise_conv.conv.weight  # [1152, 1, 5, 5]: fan-out 25 per group
    assert depthwise.std().item() == pytest.approx(math.sqrt(2 / 25), rel=0.05)
    project = block.project_conv.conv.weight  # [192, 1152, 1, 1]: fan-out 192
    assert project.std().item() == pytest.approx(math.sqrt(2 / 192), rel=0.05)
    se_bias = block.se.conv1.conv.bias
    assert torch.equal(se_bias, torch.zeros_like(se_bias))
    assert backbone.blocks[5][1].depthwise_conv.bn.weight.eq(1).all()


def test_neck_is_glorot_uniform_with_tf_fans():
    neck = _init(BiFPNNeck([40, 112, 320], 64, num_outs=5))
    node = neck.cells[1].nodes[0]
    depthwise = node.conv.depthwise.conv.weight  # [64, 1, 3, 3]: fan-in 9, fan-out 9
    limit = math.sqrt(3 / 9)
    assert depthwise.abs().max() <= limit and depthwise.abs().max() > 0.9 * limit
    pointwise = node.conv.pointwise.conv.weight  # [64, 64, 1, 1]
    limit = math.sqrt(3 / 64)
    assert pointwise.abs().max() <= limit and pointwise.abs().max() > 0.9 * limit
    assert node.conv.pointwise.conv.bias.eq(0).all()
    assert node.fusion.weights.eq(1).all()


def test_head_is_fan_in_normal_with_the_prior_bias():
    model = _init(build(level_model('d0', num_classes=80)))
    head = model.bbox_head
    assert head.cls_convs[0].depthwise.conv.weight.std().item() == pytest.approx(1 / 3, rel=0.1)
    assert head.reg_convs[1].pointwise.conv.weight.std().item() == pytest.approx(1 / 8, rel=0.05)
    assert head.conv_cls.depthwise.conv.weight.std().item() == pytest.approx(1 / 3, rel=0.1)
    prior = -math.log((1 - 0.01) / 0.01)
    assert torch.allclose(head.conv_cls.pointwise.conv.bias, torch.full((720, ), prior))
    assert head.conv_reg.pointwise.conv.bias.eq(0).all()
    assert head.cls_convs[0].pointwise.conv.bias.eq(0).all()


def test_whole_detector_checkpoint_is_not_undone_by_init(tmp_path):
    source = _init(build(level_model('d0', num_classes=3)), seed=1)
    with torch.no_grad():
        source.bbox_head.conv_cls.pointwise.conv.bias.fill_(0.25)
    path = str(tmp_path / 'det.pth')
    torch.save(dict(state_dict=source.state_dict()), path)
    cfg = level_model('d0', num_classes=3)
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint=path)
    model = _init(build(cfg), seed=2)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    # the head alone, from the same file
    cfg = level_model('d0', num_classes=3)
    cfg['bbox_head']['init_cfg'] = dict(type='Pretrained', checkpoint=path, prefix='bbox_head')
    model = _init(build(cfg), seed=2)
    assert model.bbox_head.conv_cls.pointwise.conv.bias.eq(0.25).all()
    assert torch.equal(model.bbox_head.reg_convs[2].depthwise.conv.weight,
                       source.bbox_head.reg_convs[2].depthwise.conv.weight)


def test_imagenet_backbone_from_a_local_timm_file(tmp_path):
    timm_file = str(tmp_path / 'tf_efficientnet_b0_aa.pth')
    torch.save(_timm_state_dict('d0'), timm_file)
    cfg = Config.fromfile(f'{ROOT}/configs/efficientdet/efficientdet_d0_8xb8-300e_coco.py')
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    cfg.model.backbone.init_cfg.checkpoint = timm_file  # the release file, as downloaded
    model = _init(build(cfg.model))
    expected = _timm_state_dict('d0')
    assert torch.equal(model.backbone.stem.conv.weight, expected['conv_stem.weight'])
    assert torch.equal(model.backbone.blocks[6][0].project_conv.bn.running_var,
                       expected['blocks.6.0.bn3.running_var'])
    # the detector's own init ran for the rest: the prior bias
    assert model.bbox_head.conv_cls.pointwise.conv.bias.mean() < -4


def test_pretrained_prefix_follows_mmengine(tmp_path):
    detector = _init(build(level_model('d0', num_classes=3)), seed=3)
    path = str(tmp_path / 'det.pth')
    torch.save(dict(state_dict=detector.state_dict()), path)
    for prefix in ('backbone', 'backbone.'):
        backbone = _init(TFEfficientNet('b0', init_cfg=dict(type='Pretrained', checkpoint=path,
                                                            prefix=prefix)))
        assert torch.equal(backbone.stem.conv.weight, detector.backbone.stem.conv.weight)
    with pytest.raises(ConversionError, match="missing key 'stem.conv.weight'"):
        _init(TFEfficientNet('b0', init_cfg=dict(type='Pretrained', checkpoint=path,
                                                 prefix='neck')))
