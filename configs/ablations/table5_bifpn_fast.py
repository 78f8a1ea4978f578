# Paper Table 5: BiFPN with fast normalised weights
# (same backbone B3, width 160 and 6 repeats as EfficientDet-D3).
_base_ = '../efficientdet/efficientdet_d3_16xb4-300e_coco.py'
model = dict(neck=dict(topology='bifpn', fusion='fast'))
