# Paper Table 4, row 1: the RetinaNet baseline, ResNet-50 + FPN (mmdet's own config).
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
