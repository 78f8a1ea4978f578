"""TF "same" padding for deployment: made static for one input size (deploy mode: no padding
computed at run time, a symmetric one folded into the conv or pool itself), or computed from
traced sizes so that an exported graph takes any size."""
from typing import Callable, Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import Conv2dAdaptivePadding

from .padding import MaxPool2dSame, same_pad_amounts


def _pads(size: Tuple[int, int], kernel: Tuple[int, int], stride: Tuple[int, int],
          dilation: Tuple[int, int] = (1, 1)) -> Tuple[int, int, int, int]:
    """(left, right, top, bottom) of TF SAME padding for an input of ``size`` (H, W)."""
    top, bottom = same_pad_amounts(size[0], (kernel[0] - 1) * dilation[0] + 1, stride[0])
    left, right = same_pad_amounts(size[1], (kernel[1] - 1) * dilation[1] + 1, stride[1])
    return left, right, top, bottom


def _static_conv(conv: Conv2dAdaptivePadding, size: Tuple[int, int]) -> nn.Module:
    left, right, top, bottom = _pads(size, conv.weight.shape[-2:], conv.stride, conv.dilation)
    symmetric = left == right and top == bottom
    static = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                       (top, left) if symmetric else 0, conv.dilation, conv.groups,
                       conv.bias is not None)
    static.load_state_dict(conv.state_dict())
    return static if symmetric else nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), static)


def _static_pool(pool: MaxPool2dSame, size: Tuple[int, int]) -> nn.Module:
    kernel, stride = (pool.kernel_size, ) * 2, (pool.stride, ) * 2
    left, right, top, bottom = _pads(size, kernel, stride)
    if left == right and top == bottom and 2 * max(left, top) <= pool.kernel_size:
        return nn.MaxPool2d(pool.kernel_size, pool.stride, padding=(top, left))
    return nn.Sequential(nn.ConstantPad2d((left, right, top, bottom), float('-inf')),
                         nn.MaxPool2d(pool.kernel_size, pool.stride))


_MAKE_STATIC: Dict[type, Callable[[nn.Module, Tuple[int, int]], nn.Module]] = {
    Conv2dAdaptivePadding: _static_conv,
    MaxPool2dSame: _static_pool,
}


@torch.no_grad()
def make_padding_static(model: nn.Module, run: Callable[[], object]) -> int:
    """Replace every run-time "same"-padding conv and max-pool of ``model`` by a static one for
    the sizes they see while ``run()`` is called (one forward at the deploy input size).

    Returns the number of modules replaced. The model then only takes that input size.
    """
    sizes, hooks = {}, []

    def record(module, args):
        sizes.setdefault(module, tuple(args[0].shape[-2:]))

    for module in model.modules():
        if type(module) in _MAKE_STATIC:
            hooks.append(module.register_forward_pre_hook(record))
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if child in sizes:
                setattr(parent, name, _MAKE_STATIC[type(child)](child, sizes[child]))
                replaced += 1
    return replaced


class Conv2dSameTraced(nn.Conv2d):
    """A conv with TF "same" padding computed by tensor ops (mmcv's ``Conv2dAdaptivePadding``
    computes it with ``math.ceil``, which a tracer turns into constants)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = [(k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation)]
        top, bottom = same_pad_amounts(x.shape[-2], kernel[0], self.stride[0])
        left, right = same_pad_amounts(x.shape[-1], kernel[1], self.stride[1])
        return F.conv2d(F.pad(x, [left, right, top, bottom]), self.weight, self.bias,
                        self.stride, 0, self.dilation, self.groups)


def make_padding_traceable(model: nn.Module) -> int:
    """Replace every ``Conv2dAdaptivePadding`` of ``model`` by a ``Conv2dSameTraced`` (same
    weights), so that a traced export keeps the input size dynamic. Returns the count."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is Conv2dAdaptivePadding:
                traced = Conv2dSameTraced(child.in_channels, child.out_channels,
                                          child.kernel_size, child.stride, 0, child.dilation,
                                          child.groups, child.bias is not None)
                traced.load_state_dict(child.state_dict())
                setattr(parent, name, traced.to(child.weight.device))
                replaced += 1
    return replaced
