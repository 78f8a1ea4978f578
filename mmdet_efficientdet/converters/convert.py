"""Library entry point of tools/convert_weights.py."""
from typing import Optional

import torch
from mmdet.datasets import CocoDataset
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.registry import DefaultScope

from ..model_cfg import efficientdet_model
from .effdet import (check_state_dict, convert_effdet_state_dict, load_torch_file,
                     unwrap_state_dict)


def convert_effdet_checkpoint(src: str, dst: Optional[str], level: str, num_classes: int = 80,
                              use_ema: bool = True) -> dict:
    """Convert an effdet ``tf_efficientdet_<level>`` checkpoint to an mmdet checkpoint for
    ``configs/efficientdet/efficientdet_<level>_*``, verified strictly against that model.

    Returns the checkpoint dict (``state_dict`` + ``meta``); writes it to ``dst`` if given.
    """
    register_all_modules(init_default_scope=False)
    state_dict = convert_effdet_state_dict(unwrap_state_dict(load_torch_file(src), use_ema),
                                           num_classes=num_classes)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(efficientdet_model(level, num_classes=num_classes))
    check_state_dict(state_dict, model.state_dict(), f'EfficientDet-{level} model')
    classes = (tuple(CocoDataset.METAINFO['classes']) if num_classes == 80 else
               tuple(f'coco_id_{i}' for i in range(1, 91)))
    checkpoint = dict(state_dict=state_dict,
                      meta=dict(source=str(src), level=level, num_classes=num_classes,
                                dataset_meta=dict(classes=classes)))
    if dst:
        torch.save(checkpoint, dst)
    return checkpoint
