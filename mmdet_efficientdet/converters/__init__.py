from .convert import convert_effdet_checkpoint
from .effdet import (COCO80_CHANNELS, COCO_UNUSED_IDS, ConversionError, check_state_dict,
                     convert_effdet_state_dict, convert_timm_efficientnet, load_backbone_checkpoint,
                     load_torch_file, unwrap_state_dict)

__all__ = [
    'COCO80_CHANNELS', 'COCO_UNUSED_IDS', 'ConversionError', 'check_state_dict',
    'convert_effdet_checkpoint', 'convert_effdet_state_dict', 'convert_timm_efficientnet',
    'load_backbone_checkpoint', 'load_torch_file', 'unwrap_state_dict'
]
