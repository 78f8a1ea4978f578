# Paper Table 4, row 3: EfficientNet-B3 + BiFPN (= EfficientDet-D3).
_base_ = '../efficientdet/efficientdet_d3_16xb4-300e_coco.py'
