# Paper Table 6: EfficientDet-D6 with fast fusion.
_base_ = '../efficientdet/efficientdet_d6_32xb2-300e_coco.py'
model = dict(neck=dict(fusion='fast'))
