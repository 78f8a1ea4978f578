# Paper Table 5: which feature network? Same data, schedule and seeds; only the neck differs,
# each at the cost of the 3-repeat BiFPN (tools/ablate.py table5; docs/en/ablations.md).
# Small scale: EfficientDet-Lite0 (ImageNet backbone) on the embedded synthetic set, 192 px.
base = '../small/efficientdet_lite0_synthetic_192.py'
matched = ('neck FLOPs: the number of repeats of each feature network is chosen so that it '
           'costs within 10 % of the 3-repeat BiFPN (FPN 4, FPN+PANet 2)')
paper = ('EfficientDet (Tan, Pang, Le, CVPR 2020), Table 5: EfficientNet-B3 backbone, COCO val '
         'AP; its FPN and PANet have the same cost, its BiFPNs 0.67x of it')
variants = [
    dict(name='fpn', label='repeated top-down FPN', paper_ap=42.29,
         cfg_options={'model.neck.topology': 'fpn', 'model.neck.num_repeats': 4},
         paper_config='../table5_fpn_fast.py',
         paper_cfg_options={'model.neck.num_repeats': 8}),
    dict(name='pan', label='FPN + PANet', paper_ap=44.08,
         cfg_options={'model.neck.topology': 'pan', 'model.neck.num_repeats': 2},
         paper_config='../table5_pan_fast.py',
         paper_cfg_options={'model.neck.num_repeats': 4}),
    dict(name='bifpn_sum', label='BiFPN, no weights (sum)', paper_ap=43.94,
         cfg_options={'model.neck.fusion': 'sum'},
         paper_config='../table5_bifpn_sum.py'),
    dict(name='bifpn_fast', label='BiFPN, fast normalised weights', paper_ap=44.39,
         cfg_options={'model.neck.fusion': 'fast'},
         paper_config='../table5_bifpn_fast.py'),
]
