from .anchor_generator import EfficientDetAnchorGenerator

__all__ = ['EfficientDetAnchorGenerator']
