"""Hooks and runner parts (as ``mmdet.engine``)."""
from .hooks import CheckDatasetHook, StopOnInvalidLossHook, WeightsOnlyCheckpointHook

__all__ = ['CheckDatasetHook', 'StopOnInvalidLossHook', 'WeightsOnlyCheckpointHook']
