from .tf_efficientnet import TFEfficientNet

__all__ = ['TFEfficientNet']
