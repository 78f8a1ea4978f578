"""The level configs (``configs/efficientdet*/efficientdet_<level>_*_coco.py``) by level name,
in a checkout or an installed wheel (its ``.mim/configs``)."""
import glob
import os.path as osp

from ..scaling import D_LEVELS
from ..utils.misc import check_choice
from .model_index import mim_root


def level_config_path(level: str) -> str:
    """The COCO config of EfficientDet-``level`` (``'d0'`` … ``'d7x'``, ``'lite0'`` …)."""
    check_choice('EfficientDet level', level, D_LEVELS)
    root = osp.join(mim_root(), 'configs')
    paths = glob.glob(osp.join(root, 'efficientdet*', f'efficientdet_{level}_*_coco.py'))
    if len(paths) != 1:
        raise FileNotFoundError(f'no config of level {level} under {root}: pass a config path '
                                'instead')
    return paths[0]


def level_model_cfg(level: str, num_classes: int = 80, pretrained: bool = False):
    """The ``model`` dict of EfficientDet-``level``'s config, with ``num_classes`` classes;
    its ImageNet backbone init only if ``pretrained`` (a download, for the B levels)."""
    from mmengine.config import Config
    model = Config.fromfile(level_config_path(level)).model
    model.bbox_head.num_classes = num_classes
    if not pretrained:
        model.backbone.init_cfg = None
    return model
