# EfficientDet-D0 on COCO with the reference recipe (google/automl): the family's full config.
# D1-D7x (and the Lite levels) inherit it and override the numbers of their row of the
# compound-scaling table, mmdet_efficientdet/scaling.py (the tests check every config against
# its row, and every model's parameter count against the reference port's).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmdet_efficientdet'], allow_failed_imports=False)

image_size = 512
norm_cfg = dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True)  # TF's momentum 0.99
# timm's TF-ported ImageNet weights of EfficientNet-B0, the reference's starting point
checkpoint = 'https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b0_aa-827b6e33.pth'  # noqa

model = dict(
    type='EfficientDetector',
    channels_last=True,  # faster training steps on CPUs and tensor cores; eval is contiguous
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        # padded (with the mean: 0 after normalisation) to image_size x image_size; the
        # pipelines fit every image into that square, so img_shape stays the image's own
        pad_size_divisor=image_size,
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))]),
    backbone=dict(
        type='TFEfficientNet',
        arch='b0',
        out_indices=(2, 3, 4),  # strides 8, 16, 32 (P3-P5)
        drop_path_rate=0.0,  # automl trains D0 without drop path (0.2 from D1 on)
        norm_cfg=norm_cfg,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(
        type='BiFPNNeck',
        in_channels=[40, 112, 320],
        out_channels=64,  # W_bifpn
        num_outs=5,  # P3-P7
        num_repeats=3,  # D_bifpn
        topology='bifpn',
        fusion='fast',
        norm_cfg=norm_cfg,
        act_cfg=dict(type='SiLU'),
        with_cp=False),
    bbox_head=dict(
        type='EfficientDetHead',
        num_classes=80,
        in_channels=64,
        stacked_convs=3,  # D_class
        norm_cfg=norm_cfg,
        act_cfg=dict(type='SiLU'),
        with_cp=False,
        anchor_generator=dict(
            type='EfficientDetAnchorGenerator',
            strides=[8, 16, 32, 64, 128],
            anchor_scale=4.0,
            num_scales=3,
            aspect_ratios=[(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[1.0] * 4),
        loss_cls=dict(
            type='FocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.25, loss_weight=1.0),
        # Huber(delta=0.1) = 0.1 * SmoothL1(beta=0.1); TF sums it over the 4 coordinates,
        # divides by 4 * num_pos and weights it by 50: SmoothL1 per positive x 50 * 0.1 / 4
        loss_bbox=dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.25)),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            # TF's argmax matcher: each box also gets its one best anchor, whatever its IoU
            # (mmdet's default would give it every anchor tied at that IoU)
            min_pos_iou=0,
            gt_max_assign_all=False,
            ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    # The reference's selection (effdet DetBenchPredict): the 5000 best (anchor, class) pairs
    # over all levels, no score threshold, boxes clipped to the image, then Gaussian soft-NMS
    # as for the published AP. Hard NMS: tools/test.py --nms hard (or
    # nms=dict(type='nms', iou_threshold=0.5)).
    test_cfg=dict(
        topk='all_levels',
        nms_pre=5000,
        score_thr=0.0,
        nms=dict(type='soft_nms', iou_threshold=0.3, sigma=0.5, min_score=0.001,
                 method='gaussian'),
        max_per_img=100))

# Scale jitter 0.1-2.0, crop, flip; PIL's bilinear resize in training and testing alike
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.1, 2.0),
         keep_ratio=True, backend='pillow'),
    dict(type='RandomCrop', crop_size=(image_size, image_size), allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2), keep_empty=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# The reference's test resize: one scale for both axes (EfficientDetResize)
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='EfficientDetResize', scale=(image_size, image_size)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# tools/test.py --tta: 1.0x and 1.25x the input size, each with and without a flip
tta_model = dict(type='DetTTAModel',
                 tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug', transforms=[
        [dict(type='EfficientDetResize', scale=(image_size, image_size)),
         dict(type='EfficientDetResize', scale=(image_size * 5 // 4, image_size * 5 // 4))],
        [dict(type='RandomFlip', prob=1.0), dict(type='RandomFlip', prob=0.0)],
        [dict(type='LoadAnnotations', with_bbox=True)],
        [dict(type='PackDetInputs',
              meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                         'flip', 'flip_direction'))],
    ]),
]

# drop_last: a last batch of one image would give the BNs of small levels one value each
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    batch_sampler=dict(type='AspectRatioBatchSampler', drop_last=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# SGD, lr 0.08 for 64 images a step (8 GPUs x 8): the Runner scales it to the batch you run
# (and says so in the log); no weight decay on norms, biases and BiFPN fusion weights
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.08, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'fusion.weights': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(enable=True, base_batch_size=64)

max_epochs = 300
# 1 epoch of linear warm-up from lr/10, then cosine to 0
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=1, end=max_epochs,
         T_max=max_epochs - 1, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

custom_hooks = [
    # EMA of the weights, decay 0.9998 (momentum 1 - decay) reached after a warm-up as TF's
    # (decay (n) / (10 + n) at update n): evaluated and saved
    dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=0.0002, gamma=10,
         update_buffers=True, priority=49),
    # a NaN / infinite loss stops the run with one line; no NaN weights are saved
    dict(type='StopOnInvalidLossHook'),
    # before the first iteration (rank 0 reads, the others wait): missing or cut-off images
    # stop the run, and the boxes mmdet drops without a word (outside, zero-size, unknown
    # category) are counted. check_files=False skips the image files; or leave it out
    dict(type='CheckDatasetHook'),
    # checkpoints that torch loads weights-only (mmdet's tools/test.py, --resume,
    # init_detector, DetInferencer): the Runner's state written as plain Python
    dict(type='WeightsOnlyCheckpointHook'),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
# The paper's SyncBN, the mmengine way: the model holds BN and the Runner converts it in
# distributed GPU runs (tools/train.py keeps BN, saying so, where the processes are CPU-only)
sync_bn = 'torch'
