# Fine-tuning, mmdet's way: EfficientDet-D0 trained on COCO -> a dataset of other classes (here
# the embedded synthetic set, 4 classes) with `load_from`. Make the COCO checkpoint first:
#   python tools/convert_weights.py tf_efficientdet_d0_34-f153e0cf.pth \
#       checkpoints/efficientdet_d0_coco.pth --level d0
# mmengine loads every weight but the class prediction layer, whose shape follows the class
# count: the log names the weights it skipped, which keep the model's own init (the prior
# bias). A checkpoint of another level is refused. For your own dataset change data_root,
# classes and the annotation files.
_base_ = '../efficientdet/efficientdet_d0_demo_synthetic.py'

load_from = 'checkpoints/efficientdet_d0_coco.pth'
image_size = 384
max_epochs = 12
norm_cfg = dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True)  # as trained on COCO
model = dict(
    data_preprocessor=dict(
        pad_size_divisor=image_size,
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))]),
    backbone=dict(norm_cfg=norm_cfg),
    neck=dict(norm_cfg=norm_cfg),
    bbox_head=dict(
        norm_cfg=norm_cfg,
        init_cfg=None,  # the reference's head init (prior bias) for the skipped class layer
        anchor_generator=dict(anchor_scale=4.0)))  # the anchors the COCO weights learnt

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.6, 1.4),
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

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=60),
    dict(type='CosineAnnealingLR', eta_min=1e-5, begin=0, end=max_epochs, T_max=max_epochs,
         by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
