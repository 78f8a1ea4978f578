from .efficientdet_resize import EfficientDetResize

__all__ = ['EfficientDetResize']
