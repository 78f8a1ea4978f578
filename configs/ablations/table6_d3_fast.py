# Paper Table 6: EfficientDet-D3 with fast fusion.
_base_ = '../efficientdet/efficientdet_d3_16xb4-300e_coco.py'
model = dict(neck=dict(fusion='fast'))
