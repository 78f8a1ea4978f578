"""Hooks and runner parts (as ``mmdet.engine``)."""
from .hooks import CheckDatasetHook, StopOnInvalidLossHook

__all__ = ['CheckDatasetHook', 'StopOnInvalidLossHook']
