from .fusion import FUSION_MODES, WeightedFusion
from .padding import PADDING_MODES, MaxPool2dSame, conv_padding, same_pad_amounts
from .separable_conv import SeparableConvModule, SqueezeExcite, conv_module
from .weight_init import VarianceScalingInit

__all__ = [
    'FUSION_MODES', 'WeightedFusion', 'PADDING_MODES', 'MaxPool2dSame', 'conv_padding',
    'same_pad_amounts', 'SeparableConvModule', 'SqueezeExcite', 'conv_module',
    'VarianceScalingInit'
]
