from .synthetic import CLASSES, PALETTE, SPLITS, make_synthetic_coco

__all__ = ['CLASSES', 'PALETTE', 'SPLITS', 'make_synthetic_coco']
