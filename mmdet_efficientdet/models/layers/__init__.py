from .fusion import FUSION_MODES, WeightedFusion
from .padding import PAD_TYPES, MaxPool2dSame, conv_padding, same_pad_amounts
from .separable_conv import SeparableConvModule, conv_module
from .weight_init import VarianceScalingInit

__all__ = [
    'FUSION_MODES', 'WeightedFusion', 'PAD_TYPES', 'MaxPool2dSame', 'conv_padding',
    'same_pad_amounts', 'SeparableConvModule', 'conv_module',
    'VarianceScalingInit'
]
