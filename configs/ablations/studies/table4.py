# Paper Table 4: backbone x feature network. The same EfficientNet backbone with
# RetinaNet's FPN and head (mmdet's) or with EfficientDet's BiFPN and head.
# Small scale: the ImageNet EfficientNet-Lite0 backbone on the embedded synthetic set, 192 px.
base = '../small/efficientdet_lite0_synthetic_192.py'
matched = ('the same backbone (EfficientNet-Lite0, ImageNet), anchors, losses and schedule; '
           "the FPN variant has mmdet's RetinaNet neck and head, at the BiFPN's width 64")
paper = ('EfficientDet (CVPR 2020), Table 4: ResNet-50 + FPN 37.0 AP, EfficientNet-B3 + FPN '
         '40.3, EfficientNet-B3 + BiFPN 44.4 (COCO val)')
variants = [
    dict(name='lite0_fpn', label='EfficientNet-Lite0 + FPN, RetinaNet head', paper_ap=40.3,
         cfg_options={
             'model.neck': dict(_delete_=True, type='FPN', in_channels=[40, 112, 320],
                                out_channels=64, start_level=0, add_extra_convs='on_input',
                                num_outs=5),
             # RetinaNet's head (4 shared plain 3x3 convs per subnet, no BN), with the same
             # anchors, assignment and losses as the EfficientDet head
             'model.bbox_head': dict(
                 _delete_=True, type='RetinaHead', num_classes=4, in_channels=64,
                 stacked_convs=3, feat_channels=64,
                 anchor_generator=dict(type='EfficientDetAnchorGenerator',
                                       strides=[8, 16, 32, 64, 128], anchor_scale=2.0,
                                       num_scales=3,
                                       aspect_ratios=[(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]),
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0],
                                 target_stds=[1.0, 1.0, 1.0, 1.0]),
                 loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.25,
                               loss_weight=1.0),
                 loss_bbox=dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.25))},
         paper_config='../table4_effb3_fpn.py'),
    dict(name='lite0_bifpn', label='EfficientNet-Lite0 + BiFPN, EfficientDet head',
         paper_ap=44.4, cfg_options={}, paper_config='../table4_effb3_bifpn.py'),
]
