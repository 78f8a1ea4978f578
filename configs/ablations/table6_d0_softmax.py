# Paper Table 6: EfficientDet-D0 with softmax fusion.
_base_ = '../efficientdet/efficientdet_d0_8xb8-300e_coco.py'
model = dict(neck=dict(fusion='softmax'))
