# EfficientDet-D7: D6's config with its row of the scaling table (B6 backbone, 1536 px, BiFPN
# 384 x 8, head 5, anchor scale 5, 600 epochs).
_base_ = './efficientdet_d6_32xb2-300e_coco.py'

image_size = 1536
model = dict(
    data_preprocessor=dict(
        pad_size_divisor=image_size,
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))]),
    bbox_head=dict(anchor_generator=dict(anchor_scale=5.0)))

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
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='EfficientDetResize', scale=(image_size, image_size)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
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

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 600
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=1, end=max_epochs,
         T_max=max_epochs - 1, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
