from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmdet.registry import MODELS
from mmengine.model import BaseModule

from ...utils.misc import check_choice
from ..layers import MaxPool2dSame, SeparableConvModule, WeightedFusion, conv_module
from .topologies import TOPOLOGIES, validate_topology


class Resample(nn.Module):
    """Brings one feature map to a node's channels and level.

    1×1 conv (with bias) + BN when the channels differ, then max-pooling with TF "same"
    padding to go down ``level_diff`` levels, or nearest upsampling to the exact target size
    to go up. (The conv comes first, as in the reference.)

    Args:
        in_channels (int): Channels of the input.
        out_channels (int): Channels wanted.
        level_diff (int): Target level minus input level (>0: downsample).
        norm_cfg (dict): Norm after the 1×1 conv.
        upsample_mode (str): ``F.interpolate`` mode for upsampling. Default: ``'nearest'``.
    """

    def __init__(self, in_channels: int, out_channels: int, level_diff: int, norm_cfg: dict,
                 upsample_mode: str = 'nearest') -> None:
        super().__init__()
        self.conv = (conv_module(in_channels, out_channels, 1, bias=True, norm_cfg=norm_cfg,
                                 act_cfg=None) if in_channels != out_channels else None)
        stride = 2**level_diff if level_diff > 0 else 1
        self.pool = MaxPool2dSame(stride + 1, stride) if level_diff > 0 else None
        self.level_diff = level_diff
        self.upsample_mode = upsample_mode

    def forward(self, x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        if self.pool is not None:
            x = self.pool(x)
        elif self.level_diff < 0:
            x = F.interpolate(x, size=size, mode=self.upsample_mode)
        return x


class FusionNode(nn.Module):
    """One node: resample every input, fuse them, then swish → separable 3×3 → BN."""

    def __init__(self, level: int, inputs: List[int], input_channels: List[int],
                 input_levels: List[int], out_channels: int, fusion: str, eps: float,
                 pad_type: str, norm_cfg: dict, act_cfg: dict, upsample_mode: str) -> None:
        super().__init__()
        self.level = level
        self.inputs = inputs
        self.resample = nn.ModuleDict({
            str(i): Resample(input_channels[i], out_channels, level - input_levels[i], norm_cfg,
                             upsample_mode)
            for i in inputs
        })
        self.fusion = WeightedFusion(len(inputs), fusion, eps)
        self.conv = SeparableConvModule(out_channels, out_channels, 3, pad_type,
                                        norm_cfg=norm_cfg, act_cfg=act_cfg, act_first=True)

    def forward(self, features: List[torch.Tensor], size: Tuple[int, int]) -> torch.Tensor:
        return self.conv(self.fusion([self.resample[str(i)](features[i], size)
                                      for i in self.inputs]))


class FeatureCell(nn.Module):
    """One repeat of the topology."""

    def __init__(self, nodes: List[dict], in_channels: List[int], out_channels: int,
                 **node_kwargs) -> None:
        super().__init__()
        num_levels = len(in_channels)
        channels = list(in_channels)
        levels = list(range(num_levels))
        self.nodes = nn.ModuleList()
        for node in nodes:
            self.nodes.append(FusionNode(node['level'], node['inputs'], channels, levels,
                                         out_channels, **node_kwargs))
            channels.append(out_channels)
            levels.append(node['level'])
        self.output_ids = [
            max([i for i, lvl in enumerate(levels) if lvl == level]) for level in range(num_levels)
        ]

    def forward(self, inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        features = list(inputs)
        for node in self.nodes:
            features.append(node(features, inputs[node.level].shape[-2:]))
        return [features[i] for i in self.output_ids]


@MODELS.register_module()
class BiFPNNeck(BaseModule):
    """EfficientDet's weighted bi-directional feature pyramid (and FPN / PANet variants).

    FPN-like interface: ``in_channels`` are the backbone outputs used from ``start_level`` on;
    levels beyond them up to ``num_outs`` are made from the last one (1×1 conv + BN when the
    channels differ, then 3×3 stride-2 max-pooling with TF "same" padding). ``num_repeats``
    cells of the ``topology`` follow. Works for any input size: upsampling goes to the exact
    size of the target level, downsampling uses "same" padding.

    Args:
        in_channels (list[int]): Channels of each input level.
        out_channels (int): Width of every output level (W_bifpn).
        num_outs (int): Number of output levels (P3–P7: 5; D7x P3–P8: 6). Default: 5.
        start_level (int): First input used. Default: 0.
        num_repeats (int): Cells (D_bifpn). Default: 3.
        topology (str | list[dict]): ``'bifpn'``, ``'pan'``, ``'fpn'``, or a node list (see
            :mod:`.topologies`). Default: ``'bifpn'``.
        fusion (str): ``'fast'``, ``'softmax'`` or ``'sum'``. Default: ``'fast'``.
        eps (float): ε of the fast fusion. Default: 1e-4.
        pad_type (str): ``'same'`` or ``'symmetric'`` for the separable convs.
        norm_cfg (dict): Norm config. Default: BN eps 1e-3, momentum 0.01.
        act_cfg (dict): Activation before each node's conv. Default: Swish (``SiLU``).
        upsample_mode (str): Interpolation for upsampling. Default: ``'nearest'``.
        pool_pad_value (float): What the max-pooling's "same" padding holds: -inf as TF and
            effdet (default), 0 as mmdet's ``projects/EfficientDet`` (to run its weights as
            it does).
        with_cp (bool): Activation checkpointing per cell while training (inputs kept,
            the rest recomputed in backward). Default: False.
        init_cfg (dict, optional): Initialisation config. Default: the reference's (Glorot
            uniform with TF's per-group fans for every conv, BN 1/0; fusion weights 1).

    Example:
        >>> import torch
        >>> in_channels = [40, 112, 320]
        >>> inputs = [torch.rand(1, c, s, s) for c, s in zip(in_channels, [32, 16, 8])]
        >>> self = BiFPNNeck(in_channels, out_channels=64, num_outs=5, num_repeats=3).eval()
        >>> outputs = self(inputs)
        >>> [tuple(out.shape) for out in outputs]
        [(1, 64, 32, 32), (1, 64, 16, 16), (1, 64, 8, 8), (1, 64, 4, 4), (1, 64, 2, 2)]
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int = 5,
                 start_level: int = 0,
                 num_repeats: int = 3,
                 topology: Union[str, Sequence[dict]] = 'bifpn',
                 fusion: str = 'fast',
                 eps: float = 1e-4,
                 pad_type: str = 'same',
                 norm_cfg: dict = dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True),
                 act_cfg: dict = dict(type='SiLU'),
                 upsample_mode: str = 'nearest',
                 pool_pad_value: float = float('-inf'),
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='VarianceScaling', layer='Conv2d', scale=1.0, mode='fan_avg',
                     distribution='uniform'),
                dict(type='Constant', layer='_BatchNorm', val=1.0, bias=0.0)
            ]
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        if not 0 <= start_level < len(in_channels):
            raise ValueError(f'start_level={start_level} must be in [0, {len(in_channels) - 1}]')
        used = in_channels[start_level:]
        if num_outs < len(used):
            raise ValueError(f'num_outs={num_outs} must be >= the {len(used)} inputs used')
        if num_repeats < 1:
            raise ValueError(f'num_repeats={num_repeats} must be >= 1')
        if isinstance(topology, str):
            check_choice('topology', topology, TOPOLOGIES)
            nodes = TOPOLOGIES[topology](num_outs)
        else:
            nodes = validate_topology(topology, num_outs)
        self.in_channels, self.out_channels, self.num_outs = in_channels, out_channels, num_outs
        self.start_level, self.topology, self.with_cp = start_level, nodes, with_cp

        self.extra_levels = nn.ModuleList()
        channels = used[-1]
        for _ in range(num_outs - len(used)):
            self.extra_levels.append(Resample(channels, out_channels, 1, norm_cfg))
            channels = out_channels
        level_channels = used + [out_channels] * (num_outs - len(used))
        node_kwargs = dict(fusion=fusion, eps=eps, pad_type=pad_type, norm_cfg=norm_cfg,
                           act_cfg=act_cfg, upsample_mode=upsample_mode)
        self.cells = nn.ModuleList()
        for index in range(num_repeats):
            self.cells.append(FeatureCell(nodes, level_channels if index == 0 else
                                          [out_channels] * num_outs, out_channels,
                                          **node_kwargs))
        for module in self.modules():
            if isinstance(module, MaxPool2dSame):
                module.pad_value = pool_pad_value

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'BiFPNNeck expects {len(self.in_channels)} inputs '
                             f'(in_channels={self.in_channels}), got {len(inputs)}')
        features = list(inputs[self.start_level:])
        for extra in self.extra_levels:
            x = features[-1]
            size = ((x.shape[-2] + 1) // 2, (x.shape[-1] + 1) // 2)
            features.append(extra(x, size))
        for cell in self.cells:
            if self.with_cp and any(f.requires_grad for f in features):
                features = list(cp.checkpoint(lambda *f, cell=cell: tuple(cell(list(f))),
                                              *features, use_reentrant=False))
            else:
                features = cell(features)
        return tuple(features)


# mmdet's projects/EfficientDet names its neck 'BiFPN': the same name here (not taken while
# that project's own is registered); our arguments are BiFPNNeck's
if 'BiFPN' not in MODELS.module_dict:
    MODELS.register_module(name='BiFPN', module=BiFPNNeck)
