import glob
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet_efficientdet.model_cfg import efficientdet_model
from mmdet_efficientdet.scaling import (D_LEVELS, IMAGENET_CHECKPOINTS, NORMALIZATION,
                                        efficientdet_dims)

from .conftest import ROOT, build

LEVEL_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/efficientdet*/efficientdet_*_coco.py')))
ALL_CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True)
                     if '_base_' not in p)
LITE_CONFIGS = [p for p in LEVEL_CONFIGS if osp.basename(p).startswith('efficientdet_lite')]
OTHER_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/ablations/*.py')) +
                       glob.glob(osp.join(ROOT, 'configs/bifpn_in/*.py')))


def _level(path):
    return osp.basename(path).split('_')[1]


def _first_base_or_import(path):
    """'base' or 'import': which comes first in the file, as mmengine's parser sees it."""
    import ast
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == '_base_':
            return 'base'
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return 'import'
    return None


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_configs_survive_mmengines_parsing(path, tmp_path):
    # an import before _base_ switches mmengine to its lazy-import parser, which refuses
    # this (non-lazy) inheritance chain
    assert _first_base_or_import(path) in ('base', None)
    cfg = Config.fromfile(path)

    def leaked(value, key=''):
        if isinstance(value, dict):
            return [k for name, v in value.items() for k in leaked(v, f'{key}.{name}')]
        if isinstance(value, (list, tuple)):
            return [k for i, v in enumerate(value) for k in leaked(v, f'{key}[{i}]')]
        return [] if isinstance(value, (str, int, float, bool, type(None))) else [key]

    assert leaked(cfg.to_dict()) == []  # no helper function, module or object in the config
    cfg.dump(str(tmp_path / 'dumped.py'))  # what the Runner writes into the work dir
    assert Config.fromfile(str(tmp_path / 'dumped.py')).to_dict() == cfg.to_dict()


def test_one_config_per_level():
    assert sorted(map(_level, LEVEL_CONFIGS)) == sorted(D_LEVELS)


@pytest.mark.parametrize('path', LEVEL_CONFIGS, ids=_level)
def test_level_config_follows_the_table_and_builds(path):
    cfg = Config.fromfile(path)
    phi = _level(path)
    d = efficientdet_dims(phi)
    model = cfg.model
    assert model.backbone.arch == d['backbone']
    assert model.neck.act_cfg.type == model.bbox_head.act_cfg.type == d['act']
    mean, std = NORMALIZATION[d['normalize']]
    assert (model.data_preprocessor.mean, model.data_preprocessor.std) == (list(mean), list(std))
    assert (model.neck.out_channels, model.neck.num_repeats, model.neck.fusion,
            model.neck.num_outs) == (d['width'], d['fpn_repeats'], d['fusion'], d['num_outs'])
    assert model.bbox_head.stacked_convs == d['head_repeats']
    # activation checkpointing where the reference batch needs it (tools/benchmark.py memory)
    heavy = phi in ('d6', 'd7', 'd7x')
    assert model.backbone.with_cp == model.neck.with_cp == model.bbox_head.with_cp == heavy
    assert cfg.tta_model.type == 'DetTTAModel' and cfg.tta_pipeline[1].type == 'TestTimeAug'
    assert model.bbox_head.anchor_generator.anchor_scale == d['anchor_scale']
    size = (d['input_size'], d['input_size'])
    assert [s['scale'] for s in cfg.train_pipeline if s['type'] == 'RandomResize'] == [size]
    assert [s['scale'] for s in cfg.test_pipeline if s['type'] == 'EfficientDetResize'] == [size]
    # padding is the data preprocessor's (img_shape stays the image's), not the pipelines'
    assert not [s for s in cfg.train_pipeline + cfg.test_pipeline if 'Pad' in s['type']]
    assert model.data_preprocessor.pad_size_divisor == d['input_size']
    assert model.data_preprocessor.batch_augments == [dict(type='BatchFixedSizePad', size=size)]
    # the reference's selection
    assert model.test_cfg.topk == 'all_levels' and model.test_cfg.nms_pre == 5000
    assert model.test_cfg.nms == dict(type='nms', iou_threshold=0.5)
    # ImageNet backbone: timm's release file of the level's EfficientNet
    assert model.backbone.init_cfg == dict(type='Pretrained', checkpoint=(
        'https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/'
        + IMAGENET_CHECKPOINTS[d['backbone']]))
    # the recipe
    assert cfg.optim_wrapper.optimizer.lr == 0.08 and cfg.auto_scale_lr.base_batch_size == 64
    assert cfg.optim_wrapper.clip_grad.max_norm == 10
    assert cfg.custom_hooks[0].momentum == pytest.approx(1 - 0.9998)
    assert model.bbox_head.loss_cls.gamma == 1.5 and model.test_cfg.max_per_img == 100
    # SyncBN the mmengine way: the model holds BN, the Runner converts it when distributed
    assert model.backbone.norm_cfg.type == 'BN' and cfg.sync_bn == 'torch'
    assert cfg.train_cfg.max_epochs == (600 if phi in ('d7', 'd7x') else 300)
    assert ('600e' if phi in ('d7', 'd7x') else '300e') in osp.basename(path)
    cosine = cfg.param_scheduler[1]
    assert (cosine.type, cosine.end, cosine.T_max) == (
        'CosineAnnealingLR', cfg.train_cfg.max_epochs, cfg.train_cfg.max_epochs - 1)
    detector = build(model)
    norms = {type(m) for m in detector.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    assert norms == {torch.nn.BatchNorm2d}


def _tiny_batch(model, num_images=2, size=(128, 160)):
    inputs, samples = [], []
    generator = torch.Generator().manual_seed(0)
    for i in range(num_images):
        inputs.append(torch.randint(0, 255, (3, *size), generator=generator, dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, scale_factor=(1, 1),
                                             pad_shape=size))
        boxes = torch.tensor([[8.0, 10.0, 70.0, 90.0], [60.0, 40.0, 150.0, 120.0]])[:i + 1]
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.arange(i + 1))
        samples.append(sample)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training=True)


@pytest.mark.parametrize('path', OTHER_CONFIGS + LITE_CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_dropin_and_ablation_configs_train_one_step(path):
    cfg = Config.fromfile(path)
    if (cfg.model.backbone.get('init_cfg') or {}).get('type') == 'Pretrained':
        cfg.model.backbone.init_cfg = None  # torchvision://resnet50: no download in tests
    if cfg.model.data_preprocessor.get('batch_augments'):
        # the level's fixed-size padding (up to 1536 px) would not fit a tiny CPU step
        cfg.model.data_preprocessor.pad_size_divisor = 32
        cfg.model.data_preprocessor.batch_augments = None
    model = build(cfg.model)
    model.init_weights()
    model.train()
    losses = model(**_tiny_batch(model), mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss), losses
    loss.backward()
    grads = [p.grad for p in model.neck.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)


def test_finetune_config_keeps_everything_but_the_class_conv(tmp_path):
    coco = build(efficientdet_model('d0', num_classes=80))
    torch.manual_seed(5)
    coco.init_weights()
    checkpoint = str(tmp_path / 'efficientdet_d0_coco.pth')
    torch.save(dict(state_dict=coco.state_dict()), checkpoint)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/finetune/efficientdet_d0_coco-pretrained_'
                                   'synthetic.py'))
    assert cfg.model.init_cfg == dict(type='Pretrained',
                                      checkpoint='checkpoints/efficientdet_d0_coco.pth')
    assert cfg.model.bbox_head.num_classes == 4
    assert cfg.model.bbox_head.anchor_generator.anchor_scale == 4.0  # as trained on COCO
    cfg.model.init_cfg.checkpoint = checkpoint
    model = build(cfg.model)
    model.init_weights()
    reinitialised = {'bbox_head.conv_cls.pointwise.conv.weight',
                     'bbox_head.conv_cls.pointwise.conv.bias'}
    for key, value in coco.state_dict().items():
        if key not in reinitialised:
            assert torch.equal(model.state_dict()[key], value), key
    bias = model.bbox_head.conv_cls.pointwise.conv.bias
    assert bias.shape == (9 * 4, ) and torch.allclose(bias, torch.full_like(bias, -4.59512))
