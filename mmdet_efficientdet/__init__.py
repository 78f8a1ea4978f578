"""EfficientDet (D0–D7x, Lite0–4) for MMDetection.

Importing the package only registers its components into MMDetection's registries (use
``custom_imports=dict(imports=['mmdet_efficientdet'])`` in a config); it changes nothing of
mmengine or mmdet. What our tools need besides (weights-only loading of mmengine's own
checkpoints, clear errors for files that are no checkpoints) they turn on themselves:
:func:`mmdet_efficientdet.utils.checkpoints.enable_tool_checkpoints`.
"""
from . import datasets, deploy, engine, models  # noqa: F401  (registers the components)
from .version import __version__

__all__ = ['__version__']
