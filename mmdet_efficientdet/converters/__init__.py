from .convert import convert_effdet_checkpoint
from .effdet import (COCO80_CHANNELS, COCO_UNUSED_IDS, CheckpointFileError, ConversionError,
                     check_state_dict, convert_effdet_state_dict, convert_efficientnet_pytorch,
                     convert_timm_efficientnet, load_backbone_checkpoint, load_local_checkpoint,
                     load_torch_file, resolve_package_path, unwrap_state_dict)

__all__ = [
    'COCO80_CHANNELS', 'COCO_UNUSED_IDS', 'CheckpointFileError', 'ConversionError',
    'check_state_dict', 'convert_effdet_checkpoint', 'convert_effdet_state_dict',
    'convert_efficientnet_pytorch', 'convert_timm_efficientnet', 'load_backbone_checkpoint',
    'load_local_checkpoint', 'load_torch_file', 'resolve_package_path', 'unwrap_state_dict'
]
