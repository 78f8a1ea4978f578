"""Helpers. Only ``check_choice`` is imported here (the models use it); the tools' helpers
(runner arguments, resume, one-line errors, checkpoint safety, dataset checks, the synthetic
data maker) are modules of this package that the tools import by name."""
from .misc import check_choice

__all__ = ['check_choice']
