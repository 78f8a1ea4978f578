import pytest
import torch
from mmdet.models.backbones import EfficientNet as MMDetEfficientNet

from mmdet_efficientdet.converters import (ConversionError, convert_timm_efficientnet,
                                           load_backbone_checkpoint)
from mmdet_efficientdet.models import TFEfficientNet

from ..conftest import build, load_fixture, load_schema, num_params, schema_params

ARCH_OF_LEVEL = {'d0': 'b0', 'd1': 'b1', 'd2': 'b2', 'd3': 'b3', 'd4': 'b4', 'd5': 'b5',
                 'd6': 'b6', 'd7x': 'b7', 'lite0': 'lite0', 'lite1': 'lite1', 'lite2': 'lite2',
                 'lite3': 'lite3', 'lite4': 'lite4'}


@pytest.mark.parametrize('level,arch', sorted(ARCH_OF_LEVEL.items()))
def test_param_count_equals_effdet_backbone(level, arch):
    schema = load_schema(level)
    assert schema['config']['backbone_name'] == f'tf_efficientnet_{arch}'
    # the same key set as timm's: Lite has no squeeze-excite and a fixed 32-channel stem
    ours = TFEfficientNet(arch).state_dict()
    theirs = convert_timm_efficientnet({k[len('backbone.'):]: torch.zeros(v) for k, v in
                                        schema['state_dict'].items() if k.startswith('backbone.')})
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape)
                                                            for k, v in theirs.items()}
    assert num_params(TFEfficientNet(arch)) == schema_params(schema, 'backbone.')


@pytest.mark.parametrize('level', ['d0', 'd1', 'lite0', 'lite1'])
def test_effdet_backbone_keys_load_strictly(level):
    fixture = load_fixture(level)
    model = TFEfficientNet(ARCH_OF_LEVEL[level])
    load_backbone_checkpoint(model, fixture['state_dict'])
    expected = fixture['state_dict']['backbone.blocks.1.0.conv_pwl.weight']
    assert torch.equal(model.blocks[1][0].project_conv.conv.weight, expected)
    assert torch.equal(model.stem.bn.running_var, fixture['state_dict']['backbone.bn1.running_var'])


def _timm_state_dict(level):
    """effdet's backbone.* without the prefix, plus timm's classifier head = ImageNet layout."""
    sd = {k[len('backbone.'):]: v for k, v in load_fixture(level)['state_dict'].items()
          if k.startswith('backbone.')}
    sd.update({'conv_head.weight': torch.zeros(1280, 320, 1, 1), 'bn2.weight': torch.zeros(1280),
               'classifier.weight': torch.zeros(1000, 1280), 'classifier.bias': torch.zeros(1000)})
    return sd


@pytest.mark.parametrize('level', ['d0', 'lite0'])
def test_timm_imagenet_naming_loads_via_init_cfg(level, tmp_path):
    path = str(tmp_path / f'tf_efficientnet_{ARCH_OF_LEVEL[level]}.pth')
    torch.save({'state_dict': _timm_state_dict(level)}, path)
    model = build(dict(type='TFEfficientNet', arch=ARCH_OF_LEVEL[level],
                       init_cfg=dict(type='Pretrained', checkpoint=path)))
    model.init_weights()
    assert torch.equal(model.blocks[6][0].depthwise_conv.bn.running_mean,
                       torch.load(path, weights_only=True)['state_dict']
                       ['blocks.6.0.bn2.running_mean'])


def test_missing_and_unexpected_keys_are_named():
    sd = _timm_state_dict('d0')
    model = TFEfficientNet('b0')
    broken = dict(sd)
    del broken['blocks.2.1.se.conv_expand.bias']
    with pytest.raises(ConversionError, match=r"missing key 'blocks\.2\.1\.se\.conv2\.conv\.bias'"):
        load_backbone_checkpoint(model, broken)
    extra = dict(sd, **{'blocks.9.0.conv_pw.weight': torch.zeros(1)})
    with pytest.raises(ConversionError,
                       match=r"unexpected key 'blocks\.9\.0\.project_conv\.conv\.weight'"):
        load_backbone_checkpoint(model, extra)
    with pytest.raises(ConversionError, match=r"unexpected key 'blocks\.0\.0\.foo\.weight'"):
        convert_timm_efficientnet(dict(sd, **{'blocks.0.0.foo.weight': torch.zeros(1)}))
    with pytest.raises(ConversionError, match=r"missing key 'blocks\.0\.1\.depthwise_conv\.conv"
                                              r"\.weight' \(shape \(16, 1, 3, 3\)\)"):
        load_backbone_checkpoint(TFEfficientNet('b1'), sd)  # B1 has 2 blocks in stage 1


def test_output_shapes_are_ceil_divided_strides():
    model = TFEfficientNet('b0', out_indices=(0, 1, 2, 3, 4)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 375, 500))
    expected = [(-(-375 // s), -(-500 // s)) for s in (2, 4, 8, 16, 32)]
    assert [tuple(o.shape[-2:]) for o in outs] == expected
    assert [o.shape[1] for o in outs] == model.out_channels == [16, 24, 40, 112, 320]


def test_symmetric_pad_type_also_works():
    model = TFEfficientNet('b0', pad_type='symmetric').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape[-2:]) for o in outs] == [(8, 12), (4, 6), (2, 3)]


def test_frozen_stages_and_norm_eval():
    model = TFEfficientNet('b0', frozen_stages=2, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.blocks[1].parameters())
    assert all(p.requires_grad for p in model.blocks[2].parameters())
    assert not model.blocks[3][0].depthwise_conv.bn.training  # norm_eval
    unfrozen = TFEfficientNet('b0', frozen_stages=-1)
    assert unfrozen.blocks[0][0].project_conv.conv.weight.requires_grad


def test_with_cp_gives_the_same_result_and_gradients():
    torch.manual_seed(0)
    plain = TFEfficientNet('b0', drop_path_rate=0.0)
    cp = TFEfficientNet('b0', drop_path_rate=0.0, with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    for model in (plain, cp):
        model.train()
        sum(o.sum() for o in model(x)).backward()
    assert torch.allclose(plain.stem.conv.weight.grad, cp.stem.conv.weight.grad, atol=1e-5)


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match="unknown EfficientNet arch 'b8'; valid choices: b0"):
        TFEfficientNet('b8')
    with pytest.raises(ValueError, match=r'out_indices \(2, 5\).*\[0, 4\]'):
        TFEfficientNet('b0', out_indices=(2, 5))
    with pytest.raises(ValueError, match=r'frozen_stages=7 must be in \[-1, 5\]'):
        TFEfficientNet('b0', frozen_stages=7)
    with pytest.raises(ValueError, match="unknown pad_type 'valid'"):
        TFEfficientNet('b0', pad_type='valid')


def test_side_by_side_with_mmdet_efficientnet():
    ours = build(dict(type='TFEfficientNet', arch='b0'))
    theirs = build(dict(type='EfficientNet', arch='b0'))
    assert isinstance(ours, TFEfficientNet) and isinstance(theirs, MMDetEfficientNet)
    ours.eval()
    theirs.eval()  # (mmdet's train() returns None: no chaining)
    with torch.no_grad():
        assert len(ours(torch.randn(1, 3, 64, 64))) == 3
        assert len(theirs(torch.randn(1, 3, 64, 64))) >= 1
