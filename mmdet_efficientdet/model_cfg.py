"""Model and pipeline dicts from the D-level table, for the configs in
``configs/efficientdet/`` (each is a few lines: ``phi`` and what differs from the recipe)."""
from typing import Optional

from .scaling import NORMALIZATION, efficientdet_dims, imagenet_checkpoint

BN = dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True)
# The reference's detection selection (effdet DetBenchPredict): see EfficientDetHead.
NMS = dict(type='nms', iou_threshold=0.5)
# effdet's soft-NMS (its official AP figures use it): Gaussian, sigma 0.5, scores >= 0.001.
SOFT_NMS = dict(type='soft_nms', iou_threshold=0.3, sigma=0.5, min_score=0.001,
                method='gaussian')


def efficientdet_model(phi: str,
                       num_classes: int = 80,
                       norm_cfg: Optional[dict] = None,
                       pad_type: str = 'same',
                       drop_path_rate: Optional[float] = None,
                       imagenet_backbone: bool = False,
                       backbone_init_cfg: Optional[dict] = None,
                       input_size: Optional[int] = None,
                       soft_nms: bool = False,
                       channels_last: bool = True,
                       with_cp: Optional[bool] = None) -> dict:
    """The ``model`` dict of EfficientDet-``phi`` with the paper's training settings.

    The model holds BN (``norm_cfg`` overrides it); the paper's SyncBN is asked of the
    runner, as mmengine does it: ``sync_bn = 'torch'`` in the config (the COCO recipe has it)
    converts BN in distributed runs.
    ``imagenet_backbone`` starts the backbone from timm's ImageNet ``tf_efficientnet_bX``
    release file (``backbone_init_cfg`` sets any other init). Images are padded to
    ``input_size`` (default: the level's) in the data preprocessor, so ``img_shape`` stays
    the image's own and boxes are clipped to it. ``drop_path_rate`` defaults to the level's.
    ``channels_last`` keeps weights and activations channels-last (faster depthwise convs on
    CPUs and tensor cores; ``tools/benchmark.py latency``). ``with_cp`` checkpoints
    activations in backbone blocks, BiFPN cells and head subnets (less memory per image,
    more compute: ``tools/benchmark.py memory``); it defaults to the level's (on for D6-D7x).
    """
    d = efficientdet_dims(phi)
    norm_cfg = dict(norm_cfg or BN)
    input_size = input_size or d['input_size']
    mean, std = NORMALIZATION[d['normalize']]
    if drop_path_rate is None:
        drop_path_rate = d['drop_path_rate']
    if with_cp is None:
        with_cp = d['with_cp']
    act_cfg = dict(type=d['act'])
    if imagenet_backbone:
        backbone_init_cfg = dict(type='Pretrained', checkpoint=imagenet_checkpoint(d['backbone']))
    return dict(
        type='EfficientDetector',
        channels_last=channels_last,
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=list(mean),
            std=list(std),
            bgr_to_rgb=True,
            # Pads (with the mean: 0 after normalisation) to input_size x input_size: the
            # pipelines resize every image to fit in it.
            pad_size_divisor=input_size,
            batch_augments=[dict(type='BatchFixedSizePad', size=(input_size, input_size))]),
        backbone=dict(
            type='TFEfficientNet',
            arch=d['backbone'],
            out_indices=d['backbone_out_indices'],
            pad_type=pad_type,
            drop_path_rate=drop_path_rate,
            norm_cfg=norm_cfg,
            with_cp=with_cp,
            init_cfg=backbone_init_cfg),
        neck=dict(
            type='BiFPNNeck',
            in_channels=d['backbone_channels'],
            out_channels=d['width'],
            num_outs=d['num_outs'],
            num_repeats=d['fpn_repeats'],
            topology='bifpn',
            fusion=d['fusion'],
            pad_type=pad_type,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            with_cp=with_cp),
        bbox_head=dict(
            type='EfficientDetHead',
            num_classes=num_classes,
            in_channels=d['width'],
            stacked_convs=d['head_repeats'],
            num_levels=d['num_outs'],
            pad_type=pad_type,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            with_cp=with_cp,
            anchor_generator=dict(
                type='EfficientDetAnchorGenerator',
                strides=d['strides'],
                anchor_scale=d['anchor_scale'],
                num_scales=3,
                aspect_ratios=((1.0, 1.0), (1.4, 0.7), (0.7, 1.4))),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[1.0] * 4),
            loss_cls=dict(
                type='FocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.25, loss_weight=1.0),
            # Huber(δ=0.1) = 0.1·SmoothL1(β=0.1); TF sums over 4 coords / (4·num_pos) and
            # weights by 50 → SmoothL1 averaged over positives × 50·0.1/4 = 1.25.
            loss_bbox=dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.25)),
        train_cfg=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0,
                ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        # The reference's selection: top 5000 (anchor, class) pairs over all levels, no
        # score threshold, clip to the image, batched NMS 0.5, best 100.
        test_cfg=dict(
            topk='all_levels',
            nms_pre=5000,
            score_thr=0.0,
            nms=dict(SOFT_NMS if soft_nms else NMS),
            max_per_img=100))


# what the test pipelines pack (TTA adds the flip)
TEST_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')


def _side(image_size) -> int:
    """A side length, or a level name (``'d0'`` …) for its input size."""
    if isinstance(image_size, str):
        return efficientdet_dims(image_size)['input_size']
    return image_size


def efficientdet_param_scheduler(max_epochs: int) -> list:
    """1 epoch linear warm-up from lr/10, then cosine to 0 over the other epochs."""
    return [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
             convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=1, end=max_epochs,
             T_max=max_epochs - 1, convert_to_iter_based=True),
    ]


def efficientdet_pipelines(image_size, scale_range=(0.1, 2.0)) -> tuple:
    """(train, test) pipelines: scale jitter + crop + flip, and resize to fit a square (test:
    the reference's one-scale resize, ``EfficientDetResize``).

    ``image_size`` is a side length or a level name (``'d0'`` …: its input size). Nothing is
    padded here: the data preprocessor pads (see :func:`efficientdet_model`), so
    ``img_shape`` is the resized image itself.
    """
    size = (_side(image_size), ) * 2
    train = [
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='RandomResize', scale=size, ratio_range=tuple(scale_range), keep_ratio=True),
        dict(type='RandomCrop', crop_size=size, allow_negative_crop=True),
        dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2), keep_empty=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    test = [
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='EfficientDetResize', scale=size),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs', meta_keys=TEST_META_KEYS),
    ]
    return train, test


def efficientdet_tta(image_size, scales=(1.0, 1.25)) -> tuple:
    """(tta_model, tta_pipeline) for ``tools/test.py --tta``, as mmdet's configs declare
    them: the test resize at each of ``scales`` × the level's size, each with and without a
    horizontal flip, merged by mmdet's ``DetTTAModel`` (NMS at the reference's IoU 0.5, best
    100). ``image_size``: a side length or a level name."""
    sizes = [int(round(_side(image_size) * scale)) for scale in scales]
    tta_model = dict(type='DetTTAModel',
                     tta_cfg=dict(nms=dict(NMS), max_per_img=100))
    tta_pipeline = [
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='TestTimeAug', transforms=[
            [dict(type='EfficientDetResize', scale=(size, size)) for size in sizes],
            [dict(type='RandomFlip', prob=1.0), dict(type='RandomFlip', prob=0.0)],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [dict(type='PackDetInputs', meta_keys=TEST_META_KEYS + ('flip', 'flip_direction'))],
        ]),
    ]
    return tta_model, tta_pipeline
