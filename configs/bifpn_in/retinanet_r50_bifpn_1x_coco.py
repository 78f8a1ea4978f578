# mmdet's own RetinaNet (ResNet-50) with BiFPNNeck in place of its FPN: C3–C5 in, P3–P7 out.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmdet_efficientdet'], allow_failed_imports=False)
# checkpoints that torch loads weights-only (mmdet's tools/test.py, --resume, DetInferencer)
custom_hooks = [dict(type='WeightsOnlyCheckpointHook')]
model = dict(
    neck=dict(
        _delete_=True,
        type='BiFPNNeck',
        in_channels=[256, 512, 1024, 2048],
        start_level=1,
        out_channels=256,
        num_outs=5,
        num_repeats=3,
        norm_cfg=dict(type='BN', requires_grad=True)))
