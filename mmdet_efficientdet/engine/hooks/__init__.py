from .check_dataset_hook import CheckDatasetHook
from .invalid_loss_hook import StopOnInvalidLossHook
from .weights_only_checkpoint_hook import WeightsOnlyCheckpointHook

__all__ = ['CheckDatasetHook', 'StopOnInvalidLossHook', 'WeightsOnlyCheckpointHook']
