from .check_dataset_hook import CheckDatasetHook
from .invalid_loss_hook import StopOnInvalidLossHook

__all__ = ['CheckDatasetHook', 'StopOnInvalidLossHook']
