"""Compound scaling as data: the one EfficientNet stage table and the one EfficientDet
D-level table that every backbone, neck, head and config reads.

Nothing else in the package hard-codes a width, a depth or a resolution: the configs under
``configs/efficientdet/`` call :func:`efficientdet_dims` and the backbone calls
:func:`efficientnet_blocks`.
"""
import math
from typing import Dict, List, NamedTuple, Tuple

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
# (width multiplier, depth multiplier) per arch.
EFFICIENTNET_SCALING: Dict[str, Tuple[float, float]] = {
    'b0': (1.0, 1.0),
    'b1': (1.0, 1.1),
    'b2': (1.1, 1.2),
    'b3': (1.2, 1.4),
    'b4': (1.4, 1.8),
    'b5': (1.6, 2.2),
    'b6': (1.8, 2.6),
    'b7': (2.0, 3.1),
}
# Stage index whose last block ends each of the five stride levels 2, 4, 8, 16, 32.
STRIDE_LEVEL_STAGES = (0, 1, 2, 4, 6)


class DLevel(NamedTuple):
    """One row of the EfficientDet compound-scaling table."""
    backbone: str        # EfficientNet arch
    input_size: int      # square training/test resolution
    width: int           # BiFPN / head channels (W_bifpn)
    fpn_repeats: int     # BiFPN cells (D_bifpn)
    head_repeats: int    # conv repeats in the class and box nets (D_class)
    fusion: str          # BiFPN fusion: 'fast' (normalised) or 'sum'
    anchor_scale: float
    min_level: int
    max_level: int


# φ → every dimension (paper Table 1; D7 differs from D6 in input size and anchor scale only;
# D7x uses B7 and one more pyramid level).
D_LEVELS: Dict[str, DLevel] = {
    'd0': DLevel('b0', 512, 64, 3, 3, 'fast', 4.0, 3, 7),
    'd1': DLevel('b1', 640, 88, 4, 3, 'fast', 4.0, 3, 7),
    'd2': DLevel('b2', 768, 112, 5, 3, 'fast', 4.0, 3, 7),
    'd3': DLevel('b3', 896, 160, 6, 4, 'fast', 4.0, 3, 7),
    'd4': DLevel('b4', 1024, 224, 7, 4, 'fast', 4.0, 3, 7),
    'd5': DLevel('b5', 1280, 288, 7, 4, 'fast', 4.0, 3, 7),
    'd6': DLevel('b6', 1280, 384, 8, 5, 'sum', 4.0, 3, 7),
    'd7': DLevel('b6', 1536, 384, 8, 5, 'sum', 5.0, 3, 7),
    'd7x': DLevel('b7', 1536, 384, 8, 5, 'sum', 4.0, 3, 8),
}


def check_choice(name: str, value, choices) -> None:
    """Raise a ValueError naming ``value`` and the valid ``choices``."""
    if value not in choices:
        raise ValueError(f'unknown {name} {value!r}; valid choices: {", ".join(map(str, choices))}')


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never going below 90 %."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


def round_channels(channels: int, width_multiplier: float) -> int:
    return make_divisible(channels * width_multiplier) if width_multiplier != 1.0 else channels


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


def efficientnet_stem_channels(arch: str) -> int:
    check_choice('EfficientNet arch', arch, EFFICIENTNET_SCALING)
    return round_channels(EFFICIENTNET_STEM_CHANNELS, EFFICIENTNET_SCALING[arch][0])


def efficientnet_blocks(arch: str) -> List[List[BlockSpec]]:
    """The scaled block list of ``arch``, one inner list per stage."""
    check_choice('EfficientNet arch', arch, EFFICIENTNET_SCALING)
    width, depth = EFFICIENTNET_SCALING[arch]
    in_channels = efficientnet_stem_channels(arch)
    stages = []
    for index, (kernel, stride, expand, channels, repeats) in enumerate(EFFICIENTNET_STAGES):
        out_channels = round_channels(channels, width)
        blocks = []
        for i in range(round_repeats(repeats, depth)):
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
    """Everything a config needs for EfficientDet-``phi`` (``'d0'`` … ``'d7'``, ``'d7x'``)."""
    check_choice('EfficientDet level', phi, D_LEVELS)
    row = D_LEVELS[phi]
    out_channels = efficientnet_out_channels(row.backbone)
    return dict(
        **row._asdict(),
        backbone_out_indices=(2, 3, 4),
        backbone_channels=out_channels[2:],
        num_outs=row.max_level - row.min_level + 1,
        strides=[2**level for level in range(row.min_level, row.max_level + 1)],
    )
