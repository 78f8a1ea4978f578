"""EfficientDet (D0–D7x, Lite0–4) for MMDetection.

Importing the package only registers its components into MMDetection's registries (use
``custom_imports=dict(imports=['mmdet_efficientdet'])`` in a config) and the ``pkg://``
checkpoint scheme; it replaces nothing of mmengine or mmdet. What our tools need besides (clear
errors for files that are no checkpoints, checkpoints written whole) they turn on themselves:
:func:`mmdet_efficientdet.apis.checkpoints.enable_tool_checkpoints`.

The layers, each importing only from those before it (``tests/test_layers.py``): utils
(check_choice) → scaling → converters (checkpoint formats) → datasets, models → deploy →
engine → apis (what the tools are made of). docs/en/architecture.md says why.
"""
from . import datasets, deploy, engine, models  # noqa: F401  (registers the components)
from .version import __version__

__all__ = ['__version__']
