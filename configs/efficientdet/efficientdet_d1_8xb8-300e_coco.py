# EfficientDet-D1: D0's config with its row of the scaling table (B1 backbone, 640 px, BiFPN 88
# x 4, head 3).
_base_ = './efficientdet_d0_8xb8-300e_coco.py'

image_size = 640
checkpoint = 'https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b1_aa-ea7a6ee0.pth'  # noqa
model = dict(
    data_preprocessor=dict(
        pad_size_divisor=image_size,
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))]),
    backbone=dict(arch='b1', drop_path_rate=0.2, init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(out_channels=88, num_repeats=4),
    bbox_head=dict(in_channels=88))

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
