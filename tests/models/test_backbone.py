import os.path as osp

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from PIL import Image

from mmdet_efficientdet.converters import (ConversionError, convert_efficientnet_pytorch,
                                           convert_timm_efficientnet, load_backbone_checkpoint,
                                           load_torch_file)
from mmdet_efficientdet.scaling import imagenet_checkpoint
from mmdet_efficientdet.models import TFEfficientNet

from ..conftest import ROOT, build, load_fixture, load_schema, num_params, schema_params

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
    # a file of another arch is named by the arch it holds (B1 has 2 blocks in stage 1)
    with pytest.raises(ConversionError, match=r"holds EfficientNet-b0 weights; this backbone "
                                              r"is EfficientNet-b1: use the b1 file, or "
                                              r"arch='b0'"):
        load_backbone_checkpoint(TFEfficientNet('b1'), sd)


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


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match="unknown EfficientNet arch 'b8'; valid choices: b0"):
        TFEfficientNet('b8')
    with pytest.raises(ValueError, match=r'out_indices \(2, 5\).*\[0, 4\]'):
        TFEfficientNet('b0', out_indices=(2, 5))
    with pytest.raises(ValueError, match=r'frozen_stages=7 must be in \[-1, 5\]'):
        TFEfficientNet('b0', frozen_stages=7)
    with pytest.raises(ValueError, match="unknown pad_type 'valid'"):
        TFEfficientNet('b0', pad_type='valid')


# --- the real ImageNet weights: efficientnet_pytorch files (the Lite0-2 packages) ----------

def _grace_hopper():
    """matplotlib's sample photo as timm evaluates it: 224x224, PIL bilinear, 0.5/0.5."""
    path = osp.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')
    image = Image.open(path).convert('RGB').resize((224, 224), Image.BILINEAR)
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 255
    return (pixels - 0.5) / 0.5


def _imagenet_probabilities(backbone, state_dict, image):
    """The file's own classifier (1x1 conv, BN, ReLU6, pooling, linear) on our backbone."""
    norm = torch.nn.BatchNorm2d(1280, eps=1e-3).eval()
    norm.load_state_dict({k[len('_bn1.'):]: v for k, v in state_dict.items()
                          if k.startswith('_bn1.')})
    with torch.no_grad():
        features = backbone.eval()(image)[-1]
        pooled = F.relu6(norm(F.conv2d(features, state_dict['_conv_head.weight']))).mean((2, 3))
        return F.linear(pooled, state_dict['_fc.weight'], state_dict['_fc.bias']).softmax(1)[0]


def test_real_lite0_weights_classify_grace_hopper_as_timm_does():
    """The ImageNet Lite0 file through our backbone: class 652 "military uniform" at
    p = 0.392, what timm's tf_efficientnet_lite0 gives with the same file and photo."""
    pretrained = dict(type='Pretrained', checkpoint=imagenet_checkpoint('lite0'))
    backbone = build(dict(type='TFEfficientNet', arch='lite0', out_indices=(4, ),
                          init_cfg=pretrained))
    backbone.init_weights()
    state_dict = load_torch_file(imagenet_checkpoint('lite0'))
    probabilities = _imagenet_probabilities(backbone, state_dict, _grace_hopper())
    assert probabilities.argmax().item() == 652
    assert probabilities.max().item() == pytest.approx(0.392, abs=0.005)


def test_lite0_config_starts_from_the_real_imagenet_weights():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/efficientdet_lite/'
                                         'efficientdet_lite0_8xb8-300e_coco.py'))
    assert cfg.model.backbone.init_cfg.checkpoint == imagenet_checkpoint('lite0')
    assert cfg.model.backbone.init_cfg.checkpoint.startswith('pkg://')  # no download
    model = build(cfg.model)
    model.init_weights()
    file = convert_efficientnet_pytorch(load_torch_file(imagenet_checkpoint('lite0')))
    backbone = model.backbone.state_dict()
    assert backbone.keys() == file.keys()
    assert all(torch.equal(backbone[key], value) for key, value in file.items())
    # and the detector sees the photo as the classifier does (its backbone is the file)
    state_dict = load_torch_file(imagenet_checkpoint('lite0'))
    model.eval()
    with torch.no_grad():
        features = model.backbone(_grace_hopper())
    assert [f.shape[1] for f in features] == [40, 112, 320]
    assert _imagenet_probabilities(model.backbone, state_dict,
                                   _grace_hopper()).argmax().item() == 652


@pytest.mark.parametrize('arch', ['lite1', 'lite2'])
def test_other_lite_packages_load_and_refuse_the_wrong_arch(arch):
    load_backbone_checkpoint(TFEfficientNet(arch), imagenet_checkpoint(arch))
    with pytest.raises(ConversionError, match=rf"holds EfficientNet-{arch} weights; this "
                                              r"backbone is EfficientNet-lite0"):
        load_backbone_checkpoint(TFEfficientNet('lite0'), imagenet_checkpoint(arch))


def test_efficientnet_pytorch_b_layout_with_squeeze_excite():
    """lukemelas' B0-B7 release files: the same layout with _se_reduce / _se_expand (and no
    _expand_conv in the first block); their blocks are numbered through all stages."""
    ours = TFEfficientNet('b0')
    torch.manual_seed(0)
    for p in ours.parameters():
        p.data.normal_()
    flat, blocks = {}, [(s, i) for s, stage in enumerate(ours.blocks) for i in range(len(stage))]
    names = {'expand_conv.conv': '_expand_conv', 'expand_conv.bn': '_bn0',
             'depthwise_conv.conv': '_depthwise_conv', 'depthwise_conv.bn': '_bn1',
             'se.conv1.conv': '_se_reduce', 'se.conv2.conv': '_se_expand',
             'project_conv.conv': '_project_conv', 'project_conv.bn': '_bn2'}
    for key, value in ours.state_dict().items():
        if key.startswith('stem.'):
            flat[key.replace('stem.conv.', '_conv_stem.').replace('stem.bn.', '_bn0.')] = value
            continue
        _, stage, index, rest = key.split('.', 3)
        layer, name = rest.rsplit('.', 1)
        flat[f'_blocks.{blocks.index((int(stage), int(index)))}.{names[layer]}.{name}'] = value
    flat.update({'_conv_head.weight': torch.zeros(1280, 320, 1, 1), '_fc.bias': torch.zeros(9)})
    assert '_blocks.0._se_reduce.weight' in flat and '_blocks.0._expand_conv.weight' not in flat
    loaded = TFEfficientNet('b0')
    load_backbone_checkpoint(loaded, flat)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in ours.state_dict().items())
    with pytest.raises(ConversionError, match=r"unexpected key '_blocks\.3\._foo\.weight'"):
        convert_efficientnet_pytorch(dict(flat, **{'_blocks.3._foo.weight': torch.zeros(1)}))


def test_imagenet_files_load_through_mmengines_own_loaders():
    """The pkg:// scheme is registered with mmengine's CheckpointLoader and the backbone
    converts efficientnet_pytorch's layout on load: mmengine's load_checkpoint and its
    Pretrained initialiser take the package file as it is."""
    from mmengine.model import PretrainedInit
    from mmengine.runner import load_checkpoint
    path = imagenet_checkpoint('lite0')
    assert path.startswith('pkg://')
    ours = TFEfficientNet(arch='lite0')
    ours.init_cfg = dict(type='Pretrained', checkpoint=path)
    ours.init_weights()  # our initialiser
    loaded = TFEfficientNet(arch='lite0')
    load_checkpoint(loaded, path, strict=True)
    initialised = TFEfficientNet(arch='lite0')
    PretrainedInit(checkpoint=path)(initialised)
    for other in (loaded, initialised):
        for (key, a), b in zip(ours.state_dict().items(), other.state_dict().values()):
            assert torch.equal(a, b), key
