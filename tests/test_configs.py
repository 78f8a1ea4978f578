"""The configs are plain data that mmengine parses and dumps; every level config equals its row
of the scaling table; every config builds and trains a step."""
import ast
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import TRANSFORMS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmengine.structures import InstanceData

from mmdet_efficientdet.scaling import D_LEVELS, NORMALIZATION, efficientdet_dims, \
    imagenet_checkpoint
from mmdet_efficientdet.apis.level_configs import level_config_path
from mmdet_efficientdet.apis.synthetic import CLASSES, PALETTE

from .conftest import ROOT, build, level_model

ALL_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True))
OTHER_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/ablations/*.py')) +
                       glob.glob(osp.join(ROOT, 'configs/bifpn_in/*.py')))
DEMO_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/*/*_synthetic.py')))


def _name(path):
    return osp.relpath(path, ROOT)


@pytest.fixture
def quick_dump(request, monkeypatch):
    """mmengine's dump is its config text reflowed by yapf (~1 s a config here): the reflow
    changes no value, so most configs are dumped without it; the family configs with it."""
    if osp.basename(request.node.callspec.params['path']) not in YAPF_DUMPED:
        import mmengine.config.config as mmengine_config
        monkeypatch.setattr(mmengine_config, 'FormatCode', lambda text, **_: (text, False))


YAPF_DUMPED = ('efficientdet_d0_8xb8-300e_coco.py', 'efficientdet_lite0_demo_synthetic.py')


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=_name)
def test_configs_are_data_that_mmengine_parses_and_dumps(path, tmp_path, quick_dump):
    tree = ast.parse(open(path).read())
    assert not [node for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Lambda))]
    cfg = Config.fromfile(path)

    def leaked(value, key=''):
        if isinstance(value, dict):
            return [k for name, v in value.items() for k in leaked(v, f'{key}.{name}')]
        if isinstance(value, (list, tuple)):
            return [k for i, v in enumerate(value) for k in leaked(v, f'{key}[{i}]')]
        return [] if isinstance(value, (str, int, float, bool, type(None))) else [key]

    assert leaked(cfg.to_dict()) == []
    cfg.dump(str(tmp_path / 'dumped.py'))  # what the Runner writes into the work dir
    assert Config.fromfile(str(tmp_path / 'dumped.py')).to_dict() == cfg.to_dict()
    # every EMA warms up (a plain 0.9998 average of a short run is its random start)
    emas = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'EMAHook']
    assert all(h['ema_type'] in ('MomentumAnnealingEMA', 'ExpMomentumEMA') for h in emas)


def _steps(pipeline, kind):
    return [step for step in pipeline if step['type'] == kind]


@pytest.mark.parametrize('level', list(D_LEVELS))
def test_level_config_is_its_row_of_the_table(level):
    path = level_config_path(level)
    cfg = Config.fromfile(path)
    d = efficientdet_dims(level)
    model = cfg.model
    size = (d['input_size'], d['input_size'])
    # backbone
    assert model.backbone.arch == d['backbone']
    assert tuple(model.backbone.out_indices) == d['backbone_out_indices']
    assert model.backbone.drop_path_rate == d['drop_path_rate']
    assert model.backbone.init_cfg == dict(type='Pretrained',
                                           checkpoint=imagenet_checkpoint(d['backbone']))
    # BiFPN and head
    neck, head = model.neck, model.bbox_head
    assert (neck.in_channels, neck.out_channels, neck.num_outs, neck.num_repeats,
            neck.fusion, neck.topology) == (d['backbone_channels'], d['width'], d['num_outs'],
                                            d['fpn_repeats'], d['fusion'], 'bifpn')
    assert (head.in_channels, head.stacked_convs, len(head.anchor_generator.strides)) == (
        d['width'], d['head_repeats'], d['num_outs'])
    assert 'num_levels' not in head  # the head counts the anchor strides
    assert neck.act_cfg.type == head.act_cfg.type == d['act']
    assert head.anchor_generator.strides == d['strides']
    assert head.anchor_generator.anchor_scale == d['anchor_scale']
    # activation checkpointing where the reference batch needs it (tools/benchmark.py memory)
    assert model.backbone.with_cp == neck.with_cp == head.with_cp == d['with_cp']
    # input: normalisation, padding in the preprocessor, pipelines at the level's size
    mean, std = NORMALIZATION[d['normalize']]
    assert (model.data_preprocessor.mean, model.data_preprocessor.std) == (list(mean), list(std))
    assert model.data_preprocessor.pad_size_divisor == d['input_size']
    assert model.data_preprocessor.batch_augments == [dict(type='BatchFixedSizePad', size=size)]
    train, test = cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline
    assert [s['scale'] for s in _steps(train, 'RandomResize')] == [size]
    assert [s['crop_size'] for s in _steps(train, 'RandomCrop')] == [size]
    assert [s['scale'] for s in _steps(test, 'EfficientDetResize')] == [size]
    assert [t['scale'] for t in cfg.tta_pipeline[1]['transforms'][0]] == [
        size, (d['input_size'] * 5 // 4, ) * 2]
    assert not [s for s in train + test if 'Pad' in s['type']]
    # the schedule and batch of the file name (8xb8-300e: 8 GPUs x 8 images, 300 epochs)
    gpus, batch = map(int, osp.basename(path).split('_')[2].split('-')[0].split('xb'))
    assert gpus * batch == cfg.auto_scale_lr.base_batch_size == 64
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.train_cfg.max_epochs == d['max_epochs'] and f'{d["max_epochs"]}e' in path
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 0.1, 1)
    assert (cosine.type, cosine.end, cosine.T_max) == ('CosineAnnealingLR', d['max_epochs'],
                                                       d['max_epochs'] - 1)


def test_the_coco_recipe_is_the_references():
    cfg = Config.fromfile(level_config_path('d0'))
    model = cfg.model
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == (
        'SGD', 0.08, 0.9, 4e-5)
    # weight decay on conv weights only: not on norms, biases, fusion weights
    paramwise = cfg.optim_wrapper.paramwise_cfg
    assert paramwise.norm_decay_mult == paramwise.bias_decay_mult == 0
    assert paramwise.custom_keys == {'fusion.weights': dict(decay_mult=0.0)}
    assert cfg.optim_wrapper.clip_grad.max_norm == 10
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=64)
    ema = cfg.custom_hooks[0]
    assert (ema.ema_type, ema.momentum, ema.gamma) == ('MomentumAnnealingEMA', 0.0002, 10)
    assert 'StopOnInvalidLossHook' in [h['type'] for h in cfg.custom_hooks]
    loss_cls = model.bbox_head.loss_cls
    assert (loss_cls.type, loss_cls.alpha, loss_cls.gamma) == ('FocalLoss', 0.25, 1.5)
    assert model.bbox_head.loss_bbox == dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.25)
    assigner = model.train_cfg.assigner
    assert (assigner.pos_iou_thr, assigner.neg_iou_thr, assigner.min_pos_iou,
            assigner.gt_max_assign_all) == (0.5, 0.5, 0, False)  # one argmax anchor per box
    assert model.test_cfg.topk == 'all_levels' and model.test_cfg.nms_pre == 5000
    from mmdet_efficientdet.models.dense_heads.efficientdet_head import SOFT_NMS
    assert model.test_cfg.nms == SOFT_NMS == dict(type='soft_nms', iou_threshold=0.3, sigma=0.5,
                                                  min_score=0.001, method='gaussian')
    assert _steps(cfg.train_dataloader.dataset.pipeline, 'RandomResize')[0].ratio_range == (
        0.1, 2.0)
    # one resize kernel: PIL's bilinear in training and testing
    assert _steps(cfg.train_dataloader.dataset.pipeline, 'RandomResize')[0].backend == 'pillow'
    assert TRANSFORMS.build(dict(type='EfficientDetResize', scale=(8, 8))).backend == 'pillow'
    # SyncBN the mmengine way: the model holds BN, the Runner converts it when distributed
    assert model.backbone.norm_cfg == dict(type='BN', eps=1e-3, momentum=0.01,
                                           requires_grad=True)
    assert cfg.sync_bn == 'torch'
    norms = {type(m) for m in build(level_model('d0')).modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    assert norms == {torch.nn.BatchNorm2d}


@pytest.mark.parametrize('path', DEMO_CONFIGS, ids=_name)
def test_demo_configs_name_the_embedded_dataset(path):
    cfg = Config.fromfile(path)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        assert loader.dataset.metainfo == dict(classes=CLASSES, palette=PALETTE)
    assert cfg.model.bbox_head.num_classes == len(CLASSES)
    assert cfg.auto_scale_lr.enable


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


@pytest.mark.parametrize('path', OTHER_CONFIGS + [level_config_path(level) for level in
                                                  ('lite0', 'lite4', 'd7x')], ids=_name)
def test_dropin_ablation_and_level_configs_train_one_step(path):
    cfg = Config.fromfile(path)
    if (cfg.model.backbone.get('init_cfg') or {}).get('type') == 'Pretrained':
        cfg.model.backbone.init_cfg = None  # no download in tests
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


def test_finetune_config_loads_a_coco_checkpoint_the_mmdet_way(tmp_path, capsys):
    """load_from a 90-class (here 80-class) COCO D0 into the 4-class fine-tuning model:
    mmengine skips the class layer with a warning naming it; everything else is loaded."""
    coco = build(level_model('d0', num_classes=80))
    torch.manual_seed(5)
    coco.init_weights()
    checkpoint = str(tmp_path / 'efficientdet_d0_coco.pth')
    torch.save(dict(state_dict=coco.state_dict()), checkpoint)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/finetune/efficientdet_d0_coco-pretrained_'
                                   'synthetic.py'))
    assert cfg.load_from == 'checkpoints/efficientdet_d0_coco.pth'
    assert cfg.model.bbox_head.num_classes == 4
    assert cfg.model.bbox_head.anchor_generator.anchor_scale == 4.0  # as trained on COCO
    model = build(cfg.model)
    model.init_weights()
    load_checkpoint(model, checkpoint, map_location='cpu')  # what the Runner's load_from does
    class_layer = {'bbox_head.conv_cls.pointwise.conv.weight',
                   'bbox_head.conv_cls.pointwise.conv.bias'}
    warned = capsys.readouterr().out  # mmengine prints what it skipped
    assert all(f'size mismatch for {key}' in warned for key in class_layer), warned
    for key, value in coco.state_dict().items():
        if key not in class_layer:
            assert torch.equal(model.state_dict()[key], value), key
    bias = model.bbox_head.conv_cls.pointwise.conv.bias
    assert bias.shape == (9 * 4, ) and torch.allclose(bias, torch.full_like(bias, -4.59512))
