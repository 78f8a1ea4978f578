from .efficientdet import EfficientDetector

__all__ = ['EfficientDetector']
