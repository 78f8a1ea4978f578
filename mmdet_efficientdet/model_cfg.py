"""Model and pipeline dicts from the D-level table, for the configs in
``configs/efficientdet/`` (each is a few lines: ``phi`` and what differs from the recipe)."""
from typing import Optional

from .scaling import efficientdet_dims

BN = dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True)
SYNC_BN = dict(type='SyncBN', eps=1e-3, momentum=0.01, requires_grad=True)
IMAGENET_MEAN_BGR = (104, 116, 124)


def efficientdet_model(phi: str,
                       num_classes: int = 80,
                       sync_bn: bool = False,
                       norm_cfg: Optional[dict] = None,
                       padding_mode: str = 'same',
                       drop_path_rate: float = 0.2,
                       backbone_init_cfg: Optional[dict] = None) -> dict:
    """The ``model`` dict of EfficientDet-``phi`` with the paper's training settings.

    ``sync_bn`` selects SyncBN (the paper's recipe; ``EfficientDetector`` falls back to BN
    where a run cannot synchronise); ``norm_cfg`` overrides the norm entirely.
    """
    d = efficientdet_dims(phi)
    norm_cfg = dict(norm_cfg or (SYNC_BN if sync_bn else BN))
    return dict(
        type='EfficientDetector',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_size_divisor=1),
        backbone=dict(
            type='TFEfficientNet',
            arch=d['backbone'],
            out_indices=d['backbone_out_indices'],
            padding_mode=padding_mode,
            drop_path_rate=drop_path_rate,
            norm_cfg=norm_cfg,
            init_cfg=backbone_init_cfg),
        neck=dict(
            type='BiFPNNeck',
            in_channels=d['backbone_channels'],
            out_channels=d['width'],
            num_outs=d['num_outs'],
            num_repeats=d['fpn_repeats'],
            topology='bifpn',
            fusion=d['fusion'],
            padding_mode=padding_mode,
            norm_cfg=norm_cfg),
        bbox_head=dict(
            type='EfficientDetHead',
            num_classes=num_classes,
            in_channels=d['width'],
            num_repeats=d['head_repeats'],
            num_levels=d['num_outs'],
            padding_mode=padding_mode,
            norm_cfg=norm_cfg,
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
        test_cfg=dict(
            nms_pre=5000,
            min_bbox_size=0,
            score_thr=0.001,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100))


def efficientdet_pipelines(image_size, scale_range=(0.1, 2.0)) -> tuple:
    """(train, test) pipelines: scale jitter + crop + flip, and resize + pad to a square.

    ``image_size`` is a side length or a level name (``'d0'`` …: its input size).
    """
    if isinstance(image_size, str):
        image_size = efficientdet_dims(image_size)['input_size']
    size = (image_size, image_size)
    pad = dict(img=IMAGENET_MEAN_BGR)
    train = [
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='RandomResize', scale=size, ratio_range=tuple(scale_range), keep_ratio=True),
        dict(type='RandomCrop', crop_size=size, allow_negative_crop=True),
        dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2), keep_empty=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='Pad', size=size, pad_val=pad),
        dict(type='PackDetInputs'),
    ]
    test = [
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='Resize', scale=size, keep_ratio=True),
        dict(type='Pad', size=size, pad_val=pad),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
    ]
    return train, test
