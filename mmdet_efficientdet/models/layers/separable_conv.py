import warnings
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from .padding import conv_padding


def conv_module(*args, **kwargs) -> ConvModule:
    """``ConvModule`` that keeps a conv bias in front of BN without warning about it.

    The reference weights have such "redundant" biases (effdet's ``redundant_bias``), so they
    are part of the network, not a mistake.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Unnecessary conv bias')
        return ConvModule(*args, **kwargs)


class SeparableConvModule(nn.Module):
    """Depthwise k×k (no bias) followed by pointwise 1×1 (with bias), as in EfficientDet.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Depthwise kernel size. Default: 3.
        pad_type (str): ``'same'`` (TF) or ``'symmetric'``. Default: ``'same'``.
        norm_cfg (dict, optional): Norm after the pointwise conv. Default: None.
        act_cfg (dict, optional): Activation. Default: None.
        act_first (bool): Apply ``act_cfg`` before the depthwise conv (BiFPN nodes) instead of
            after the norm; never in place, since its input may be a feature map that the
            topology uses again. Default: False.
        pw_bias (bool): Bias in the pointwise conv. Default: True.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 pad_type: str = 'same',
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 act_first: bool = False,
                 pw_bias: bool = True) -> None:
        super().__init__()
        conv_cfg, padding = conv_padding(pad_type, kernel_size)
        self.depthwise = conv_module(
            in_channels, in_channels, kernel_size, padding=padding, groups=in_channels,
            bias=False, conv_cfg=conv_cfg, norm_cfg=None,
            act_cfg=act_cfg if act_first else None, inplace=False, order=('act', 'conv', 'norm'))
        self.pointwise = conv_module(
            in_channels, out_channels, 1, bias=pw_bias, norm_cfg=norm_cfg,
            act_cfg=None if act_first else act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))
