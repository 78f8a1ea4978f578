# EfficientDet-D7X: every dimension comes from the D-level table (mmdet_efficientdet.scaling).
_base_ = ['../_base_/efficientdet_recipe.py']
from mmdet_efficientdet.model_cfg import efficientdet_model, efficientdet_pipelines  # noqa

phi = 'd7x'
model = efficientdet_model(phi, sync_bn=True)
train_pipeline, test_pipeline = efficientdet_pipelines(phi)
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
