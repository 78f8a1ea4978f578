# Paper Table 4, row 2: RetinaNet with ResNet-50 replaced by EfficientNet-B3 (mmdet's FPN and
# RetinaHead kept), at EfficientDet-D3's input size.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmdet_efficientdet'], allow_failed_imports=False)
# checkpoints that torch loads weights-only (mmdet's tools/test.py, --resume, DetInferencer)
custom_hooks = [dict(type='WeightsOnlyCheckpointHook')]
checkpoint = 'https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/tf_efficientnet_b3_aa-84b4657e.pth'  # noqa

model = dict(
    backbone=dict(_delete_=True, type='TFEfficientNet', arch='b3', out_indices=(2, 3, 4),
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(in_channels=[48, 136, 384], start_level=0, add_extra_convs='on_input'))
