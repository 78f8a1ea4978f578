# EfficientDet-D7X: every dimension and the schedule come from the D-level table
# (mmdet_efficientdet.scaling); the backbone starts from timm's ImageNet weights.
_base_ = ['../_base_/efficientdet_recipe.py']
from mmdet_efficientdet.model_cfg import (efficientdet_model,  # noqa: E402
                                          efficientdet_param_scheduler, efficientdet_pipelines,
                                          efficientdet_tta)
from mmdet_efficientdet.scaling import efficientdet_dims  # noqa: E402

phi = 'd7x'
model = efficientdet_model(phi, imagenet_backbone=True)  # with_cp: the level's (on)
train_pipeline, test_pipeline = efficientdet_pipelines(phi)
tta_model, tta_pipeline = efficientdet_tta(phi)  # tools/test.py --tta
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
max_epochs = efficientdet_dims(phi)['max_epochs']
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = efficientdet_param_scheduler(max_epochs)
