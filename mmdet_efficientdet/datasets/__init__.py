from .transforms import EfficientDetResize

__all__ = ['EfficientDetResize']
