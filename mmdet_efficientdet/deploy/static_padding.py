"""TF "same" padding for deployment: made static for one input size (deploy mode: no padding
computed at run time, a symmetric one folded into the conv or pool itself), or computed from
traced sizes so that an exported graph takes any size."""
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import fuse_conv_bn
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmengine.model import revert_sync_batchnorm

from ..models.layers.padding import MaxPool2dSame, same_pad_amounts


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
                       conv.bias is not None, device=conv.weight.device,
                       dtype=conv.weight.dtype)
    static.load_state_dict(conv.state_dict())
    return static if symmetric else nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), static)


def _static_pool(pool: MaxPool2dSame, size: Tuple[int, int]) -> nn.Module:
    """TF "same" max pooling for inputs of ``size``: a bare ``nn.MaxPool2d`` whenever it can be
    one (the padding before folded in, the one after, -inf, left to windows that run past the
    input's end, which ``ceil_mode`` keeps: as many outputs, the same windows), else an
    explicit -inf pad. The runtimes run a pad as a separate copy of the tensor (OpenVINO: in
    a slow reference kernel). A window must fit the input with its
    padding before on both sides (OpenVINO refuses a ceil-mode window larger than that)."""
    kernel, stride = (pool.kernel_size, ) * 2, (pool.stride, ) * 2
    left, right, top, bottom = _pads(size, kernel, stride)
    if pool.pad_value != float('-inf'):  # ceil mode's windows ignore what they run past
        return nn.Sequential(nn.ConstantPad2d((left, right, top, bottom), pool.pad_value),
                             nn.MaxPool2d(pool.kernel_size, pool.stride))
    if right >= left and bottom >= top and 2 * max(left, top) <= pool.kernel_size and \
            min(size[0] + 2 * top, size[1] + 2 * left) >= pool.kernel_size:
        probe = torch.zeros(1, 1, *size)
        for ceil_mode in (False, True):
            static = nn.MaxPool2d(pool.kernel_size, pool.stride, padding=(top, left),
                                  ceil_mode=ceil_mode)
            try:
                if static(probe).shape == pool(probe).shape:
                    return static
            except RuntimeError:  # no output at all without ceil mode
                continue
    return nn.Sequential(nn.ConstantPad2d((left, right, top, bottom), float('-inf')),
                         nn.MaxPool2d(pool.kernel_size, pool.stride))


_MAKE_STATIC: Dict[type, Callable[[nn.Module, Tuple[int, int]], nn.Module]] = {
    Conv2dAdaptivePadding: _static_conv,
    MaxPool2dSame: _static_pool,
}


def _replace_children(model: nn.Module, convert: Callable[[nn.Module], Optional[nn.Module]]) -> int:
    """Put ``convert(child)`` in place of every child of ``model`` (at any depth) for which it
    returns a module; returns how many were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = convert(child)
            if new is not None:
                setattr(parent, name, new)
                replaced += 1
    return replaced


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
    return _replace_children(model, lambda child: _MAKE_STATIC[type(child)](
        child, sizes[child]) if child in sizes else None)


@torch.no_grad()
def fold_bn_and_fix_padding(model: nn.Module, input_size: Optional[Tuple[int, int]]) -> None:
    """The deploy form of any mmdet detector: SyncBN reverted, every BN folded into the conv
    before it (mmcv's ``fuse_conv_bn``), and, for an ``input_size`` (H, W), our run-time
    "same" padding made static (one ``model._forward`` at that size)."""
    model.eval()
    revert_sync_batchnorm(model)
    fuse_conv_bn(model)
    if input_size is not None:
        dummy = next(model.parameters()).new_zeros((1, 3, *input_size))
        make_padding_static(model, lambda: model._forward(dummy))


class Conv2dSameTraced(nn.Conv2d):
    """A conv with TF "same" padding computed by tensor ops (mmcv's ``Conv2dAdaptivePadding``
    computes it with ``math.ceil``, which a tracer turns into constants)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = _pads(x.shape[-2:], self.kernel_size, self.stride, self.dilation)
        return F.conv2d(F.pad(x, list(pads)), self.weight, self.bias, self.stride, 0,
                        self.dilation, self.groups)


def _traceable_conv(child: nn.Module) -> Optional[nn.Module]:
    if type(child) is not Conv2dAdaptivePadding:
        return None
    traced = Conv2dSameTraced(child.in_channels, child.out_channels, child.kernel_size,
                              child.stride, 0, child.dilation, child.groups,
                              child.bias is not None, device=child.weight.device,
                              dtype=child.weight.dtype)
    traced.load_state_dict(child.state_dict())
    return traced


def make_padding_traceable(model: nn.Module) -> int:
    """Replace every ``Conv2dAdaptivePadding`` of ``model`` by a ``Conv2dSameTraced`` (same
    weights), so that a traced export keeps the input size dynamic. Returns the count."""
    return _replace_children(model, _traceable_conv)
