# Paper Table 4, row 2: EfficientNet-B3 + FPN (mmdet's FPN at the D3 width; D3 head).
_base_ = '../efficientdet/efficientdet_d3_16xb4-300e_coco.py'
model = dict(
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[48, 136, 384],
        out_channels=160,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=5))
