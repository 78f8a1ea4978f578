"""Checkpoint formats: reading checkpoints weights-only (:mod:`.checkpoint_io`) and the key
layouts of the reference port, timm and ``efficientnet_pytorch`` in ours (:mod:`.effdet`).
The lowest layer of the package: it imports no model (docs/en/architecture.md)."""
from .checkpoint_io import (CheckpointFileError, load_local_checkpoint, load_torch_file,
                            mmengine_checkpoint_globals, resolve_package_path,
                            restore_history_buffers, weights_only_state)
from .mmdet_projects import (convert_mmdet_projects_state_dict, is_mmdet_projects_layout,
                             mmdet_projects_to_ours_in_place)
from .effdet import (COCO80_CHANNELS, COCO_UNUSED_IDS, ConversionError, check_state_dict,
                     convert_effdet_state_dict, convert_efficientnet_pytorch,
                     convert_timm_efficientnet, effdet_to_ours_in_place,
                     efficientnet_to_ours_in_place, is_effdet_layout,
                     load_backbone_checkpoint, unwrap_state_dict)

__all__ = [
    'COCO80_CHANNELS', 'COCO_UNUSED_IDS', 'CheckpointFileError', 'ConversionError',
    'check_state_dict', 'convert_effdet_state_dict', 'convert_efficientnet_pytorch',
    'convert_timm_efficientnet', 'effdet_to_ours_in_place',
    'efficientnet_to_ours_in_place', 'is_effdet_layout',
    'load_backbone_checkpoint', 'load_local_checkpoint',
    'load_torch_file', 'mmengine_checkpoint_globals', 'resolve_package_path',
    'restore_history_buffers', 'unwrap_state_dict', 'weights_only_state',
    'convert_mmdet_projects_state_dict', 'is_mmdet_projects_layout',
    'mmdet_projects_to_ours_in_place'
]
