"""The lowest layer: helpers every other part may use (``check_choice``). The tools' helpers
are in :mod:`mmdet_efficientdet.apis`."""
from .misc import check_choice

__all__ = ['check_choice']
