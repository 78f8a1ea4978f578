# Paper Table 6: softmax vs fast normalised fusion in the same BiFPN (accuracy and latency).
# Small scale: EfficientDet-Lite0 (ImageNet backbone) on the embedded synthetic set, 192 px.
base = '../small/efficientdet_lite0_synthetic_192.py'
matched = 'the same network; only the fusion of each BiFPN node differs'
paper = ('EfficientDet (CVPR 2020), Table 6, its smallest model: softmax 33.96 AP, fast 33.85 AP '
         'on COCO val, fast fusion 1.28x faster on a GPU')
variants = [
    dict(name='softmax', label='softmax fusion', paper_ap=33.96,
         cfg_options={'model.neck.fusion': 'softmax'},
         paper_config='../table6_d0_softmax.py'),
    dict(name='fast', label='fast normalised fusion', paper_ap=33.85,
         cfg_options={'model.neck.fusion': 'fast'},
         paper_config='../table6_d0_fast.py'),
]
