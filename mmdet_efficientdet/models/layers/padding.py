"""TF "same" and symmetric padding for mmcv ``ConvModule`` bricks and max-pooling."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...utils.misc import check_choice

PAD_TYPES = ('same', 'symmetric')


def conv_padding(pad_type: str, kernel_size: int, stride: int = 1,
                 dilation: int = 1) -> Tuple[dict, int]:
    """``(conv_cfg, padding)`` for a ``ConvModule`` in ``pad_type``.

    ``'same'`` is TensorFlow's SAME padding (what the official weights were trained with):
    stride-1 convs get the equivalent static symmetric padding, strided convs use mmcv's
    ``Conv2dAdaptivePadding`` which pads asymmetrically from the actual input size, so any
    input size works. ``'symmetric'`` is PyTorch's usual ``kernel_size // 2``. (Named
    ``pad_type`` as timm names it: torch's ``padding_mode`` is the fill, ``'zeros'`` ...)
    """
    check_choice('pad_type', pad_type, PAD_TYPES)
    if pad_type == 'same' and stride > 1:
        return dict(type='Conv2dAdaptivePadding'), 0
    return None, (kernel_size - 1) // 2 * dilation


def same_pad_amounts(size, kernel_size: int, stride: int) -> Tuple:
    """TF SAME padding (before, after) along one dimension of ``size``: ints for an int, or
    traced tensors while an exporter traces sizes (so a graph keeps them dynamic)."""
    total = ((size + stride - 1) // stride - 1) * stride + kernel_size - size
    total = total.clamp(min=0) if isinstance(total, torch.Tensor) else max(total, 0)
    return total // 2, total - total // 2


class MaxPool2dSame(nn.Module):
    """Max-pooling with TF SAME padding (padded with -inf, which TF's and effdet's pooling
    amounts to), for any input size.

    Args:
        kernel_size (int): Pooling window. Default: 3.
        stride (int): Stride. Default: 2.
        pad_value (float): What the padding holds. Default: -inf (mmdet's
            ``projects/EfficientDet`` pads with 0).
    """

    def __init__(self, kernel_size: int = 3, stride: int = 2,
                 pad_value: float = float('-inf')) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad_value = pad_value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_pad_amounts(x.shape[-2], self.kernel_size, self.stride)
        left, right = same_pad_amounts(x.shape[-1], self.kernel_size, self.stride)
        if torch.jit.is_tracing() or top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=self.pad_value)
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f'kernel_size={self.kernel_size}, stride={self.stride}, padding=same'
