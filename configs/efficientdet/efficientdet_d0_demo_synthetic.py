# The demo: EfficientDet-D0 structure (B0 + BiFPN 64x3 + head 3), trained from scratch on the
# embedded synthetic set (tools/make_dataset.py → data/synthetic) at a CPU-sized 192x192 input.
# `make demo` runs it: train → test (COCO AP table) → drawn predictions → loss/mAP plot.
_base_ = ['mmdet::_base_/default_runtime.py']
from mmdet_efficientdet.utils import synthetic  # noqa: E402  (a module: not a cfg key)
from mmdet_efficientdet.model_cfg import (efficientdet_model, efficientdet_pipelines,  # noqa
                                          efficientdet_tta)

custom_imports = dict(imports=['mmdet_efficientdet'], allow_failed_imports=False)

image_size = 192
max_epochs = 24
# BN momentum 0.1 (not the paper's 0.01): over a ~900-iteration run the slow running statistics
# lag so far behind the weights that eval-mode outputs collapse.
model = efficientdet_model(
    'd0', num_classes=len(synthetic.CLASSES), drop_path_rate=0.0, input_size=image_size,
    norm_cfg=dict(type='BN', eps=1e-3, momentum=0.1, requires_grad=True))
model['test_cfg']['score_thr'] = 0.05
# From scratch in 24 epochs, a head that starts near zero (mmdet's RetinaHead init) trains
# better than the reference's fan-in init, which starts with unit-variance box deltas
# (measured at seed 0: val mAP 0.31 with the reference's head init, see README).
model['bbox_head']['init_cfg'] = dict(
    type='Normal', layer='Conv2d', std=0.01,
    override=dict(type='Normal', name='conv_cls', std=0.01, bias_prob=0.01))
# The shapes are 12-200 px: anchors of 2 strides (16 px at P3) fit them better than 4.
model['bbox_head']['anchor_generator']['anchor_scale'] = 2.0
train_pipeline, test_pipeline = efficientdet_pipelines(image_size, scale_range=(0.6, 1.4))
tta_model, tta_pipeline = efficientdet_tta(image_size)  # tools/test.py --tta

data_root = 'data/synthetic/'
metainfo = dict(classes=synthetic.CLASSES, palette=synthetic.PALETTE)
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # P7 is 2x2 at 192 px, so a last batch of one image still trains; below 129 px set
    # drop_last=True here (P7 1x1: one value per channel in its BNs)
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json',
                     metric='bbox', classwise=True, format_only=False)
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Short from-scratch CPU schedule: AdamW converges much faster here than the paper's SGD.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=60),
    dict(type='CosineAnnealingLR', eta_min=3e-5, begin=0, end=max_epochs, T_max=max_epochs,
         by_epoch=True, convert_to_iter_based=True),
]
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.01, gamma=100,
         update_buffers=True, priority=49)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=2,
                    save_best='coco/bbox_mAP', rule='greater'))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
