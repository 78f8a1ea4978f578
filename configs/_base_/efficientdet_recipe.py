# The paper's training recipe on COCO, shared by every level in configs/efficientdet/.
# Each level config adds the model and the input-size-dependent pipelines from the D-level
# table (mmdet_efficientdet.scaling.D_LEVELS).
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmdet_efficientdet'], allow_failed_imports=False)
# The paper's SyncBN, the mmengine way: the model holds BN and the Runner converts it in
# distributed runs (tools/train.py keeps BN, saying so, where the processes are CPU-only).
sync_bn = 'torch'
from mmdet_efficientdet.model_cfg import efficientdet_param_scheduler  # noqa: E402

max_epochs = 300
# 8 GPUs x 8 images = 64 images per step at lr 0.08; --auto-scale-lr rescales other sizes.
# drop_last: a last batch of one image would give the BNs of small levels one value per channel
train_dataloader = dict(batch_size=8, num_workers=8,
                        batch_sampler=dict(type='AspectRatioBatchSampler', drop_last=True))
val_dataloader = dict(batch_size=8, num_workers=4)
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=64)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.08, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(max_norm=10, norm_type=2))
# 1 epoch linear warmup 0.008 → 0.08, then cosine to 0 over the other epochs.
param_scheduler = efficientdet_param_scheduler(max_epochs)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# EMA of the weights with decay 0.9998 (mmengine's momentum = 1 - decay).
custom_hooks = [
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.0002,
         update_buffers=True, priority=49)
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
