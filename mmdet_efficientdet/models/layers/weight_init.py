"""TF's variance-scaling initialiser, for ``init_cfg`` (mmengine has Kaiming and Xavier, whose
fans ignore ``groups``: a depthwise 3×3 conv of C channels gets fan-out 9·C there, 9 in TF)."""
import math

import torch.nn as nn
from mmengine.model.weight_init import BaseInit, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS

from ...utils.misc import check_choice

FAN_MODES = ('fan_in', 'fan_out', 'fan_avg')
DISTRIBUTIONS = ('normal', 'uniform')


@WEIGHT_INITIALIZERS.register_module(name='VarianceScaling')
class VarianceScalingInit(BaseInit):
    """``tf.keras.initializers.VarianceScaling`` (with a plain, not truncated, normal, as the
    reference port does): std = sqrt(scale / n), n the fan of ``mode``, at least 1.

    The reference's three schemes: EfficientNet ``scale=2, mode='fan_out'`` (normal); BiFPN
    ``scale=1, mode='fan_avg', distribution='uniform'`` (Glorot); head ``scale=1,
    mode='fan_in'`` (normal). ``bias`` / ``bias_prob`` as mmengine's other initialisers.

    Args:
        scale (float): Variance scale (the gain). Default: 1.0.
        mode (str): ``'fan_in'``, ``'fan_out'`` or ``'fan_avg'``. Default: ``'fan_in'``.
        distribution (str): ``'normal'`` or ``'uniform'``. Default: ``'normal'``.
        **kwargs: ``bias``, ``bias_prob``, ``layer`` (see mmengine ``BaseInit``).
    """

    def __init__(self, scale: float = 1.0, mode: str = 'fan_in', distribution: str = 'normal',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        check_choice('variance-scaling mode', mode, FAN_MODES)
        check_choice('variance-scaling distribution', distribution, DISTRIBUTIONS)
        self.scale = scale
        self.mode = mode
        self.distribution = distribution

    def init_conv(self, conv: nn.Conv2d) -> None:
        receptive = conv.weight[0][0].numel()
        fan_in = conv.weight.shape[1] * receptive
        fan_out = conv.weight.shape[0] * receptive // conv.groups
        fan = dict(fan_in=fan_in, fan_out=fan_out, fan_avg=(fan_in + fan_out) / 2)[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == 'normal':
            nn.init.normal_(conv.weight, 0.0, math.sqrt(variance))
        else:
            limit = math.sqrt(3.0 * variance)
            nn.init.uniform_(conv.weight, -limit, limit)
        if conv.bias is not None:
            nn.init.constant_(conv.bias, self.bias)

    def __call__(self, module: nn.Module) -> None:

        def init(m):
            if not isinstance(m, nn.Conv2d):
                return
            # layer names match the class or its direct bases, as in mmengine's initialisers
            names = {type(m).__name__, *(base.__name__ for base in type(m).__bases__)}
            if self.wholemodule or set(self.layer) & names:
                self.init_conv(m)

        module.apply(init)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return (f'{self.__class__.__name__}: scale={self.scale}, mode={self.mode}, '
                f'distribution={self.distribution}, bias={self.bias}')
