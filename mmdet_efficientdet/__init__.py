"""EfficientDet (D0–D7x) for MMDetection.

Importing the package registers its components into MMDetection's registries (use
``custom_imports=dict(imports=['mmdet_efficientdet'])`` in a config) and allows the classes
mmengine's own checkpoints need to load with ``torch.load(weights_only=True)``.
"""
from . import datasets, models  # noqa: F401  (registers the components)
from .checkpoint_files import register_local_checkpoint_loader
from .safe_globals import allow_mmengine_checkpoint_globals
from .version import __version__

allow_mmengine_checkpoint_globals()
register_local_checkpoint_loader()

__all__ = ['__version__', 'allow_mmengine_checkpoint_globals']
