from .synthetic import CLASSES, PALETTE, SPLITS, make_synthetic_coco
from .transforms import EfficientDetResize

__all__ = ['CLASSES', 'PALETTE', 'SPLITS', 'make_synthetic_coco', 'EfficientDetResize']
