"""Library entry point of tools/convert_weights.py."""
from typing import Optional

import torch
from mmdet.datasets import CocoDataset
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.registry import DefaultScope

from ..converters import (check_state_dict, convert_effdet_state_dict, load_torch_file,
                          unwrap_state_dict)


def convert_effdet_checkpoint(src: str, dst: Optional[str], model_cfg: dict,
                              num_classes: int = 80, use_ema: bool = True) -> dict:
    """Convert an effdet ``tf_efficientdet_<level>`` checkpoint to an mmdet checkpoint for
    the detector of ``model_cfg`` (a level config's ``model``, its class count set to
    ``num_classes``), verified strictly against that model.

    Returns the checkpoint dict (``state_dict`` + ``meta``); writes it to ``dst`` if given.
    """
    register_all_modules(init_default_scope=False)
    state_dict = convert_effdet_state_dict(unwrap_state_dict(load_torch_file(src), use_ema),
                                           num_classes=num_classes)
    model_cfg = dict(model_cfg)
    model_cfg['backbone'] = dict(model_cfg['backbone'], init_cfg=None)  # shapes only
    model_cfg['bbox_head'] = dict(model_cfg['bbox_head'], num_classes=num_classes)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    check_state_dict(state_dict, model.state_dict(), 'EfficientDet model of the config')
    classes = (tuple(CocoDataset.METAINFO['classes']) if num_classes == 80 else
               tuple(f'coco_id_{i}' for i in range(1, 91)))
    checkpoint = dict(state_dict=state_dict,
                      meta=dict(source=str(src), num_classes=num_classes,
                                dataset_meta=dict(classes=classes)))
    if dst:
        torch.save(checkpoint, dst)
    return checkpoint
