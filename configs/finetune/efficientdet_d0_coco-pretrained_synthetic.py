# Fine-tuning: EfficientDet-D0 trained on COCO → a dataset of other classes (here the embedded
# synthetic set, 4 classes). Make the COCO checkpoint first:
#   python tools/convert_weights.py tf_efficientdet_d0_34-f153e0cf.pth \
#       checkpoints/efficientdet_d0_coco.pth --level d0
# The whole detector loads from it (mmengine's Pretrained init, applied after the model's own
# init) except the class prediction conv's pointwise layer, whose shape depends on the
# classes: partial_load=True lets it keep the reference init (prior bias), and the log lists
# it as the one weight skipped (without partial_load a checkpoint that does not fit is
# refused). Use your own dataset by changing data_root, metainfo and num_classes.
_base_ = ['../efficientdet/efficientdet_d0_demo_synthetic.py']
from mmdet_efficientdet.utils import synthetic  # noqa: E402
from mmdet_efficientdet.model_cfg import (efficientdet_model, efficientdet_pipelines,  # noqa
                                          efficientdet_tta)

coco_checkpoint = 'checkpoints/efficientdet_d0_coco.pth'
image_size = 384
max_epochs = 12
model = efficientdet_model('d0', num_classes=len(synthetic.CLASSES), input_size=image_size,
                           drop_path_rate=0.0)
model.update(_delete_=True, partial_load=True,
             init_cfg=dict(type='Pretrained', checkpoint=coco_checkpoint))
train_pipeline, test_pipeline = efficientdet_pipelines(image_size, scale_range=(0.6, 1.4))
tta_model, tta_pipeline = efficientdet_tta(image_size)  # tools/test.py --tta
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=60),
    dict(type='CosineAnnealingLR', eta_min=1e-5, begin=0, end=max_epochs, T_max=max_epochs,
         by_epoch=True, convert_to_iter_based=True),
]
