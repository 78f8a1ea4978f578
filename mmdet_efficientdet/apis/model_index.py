"""Our configs and model index, in a checkout or an installed wheel.

An installed wheel carries ``configs/``, ``tools/`` and ``model-index.yml`` in
``mmdet_efficientdet/.mim/``, as OpenMMLab packages do (mmdet's ``.mim``): what ``mim`` and
mmengine's inferencers read. A checkout has them beside the package.
"""
import os.path as osp
from typing import Dict, List, Tuple

from mmengine.fileio import load

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def mim_root() -> str:
    """The folder holding ``configs/`` and ``model-index.yml``: the package's ``.mim`` when
    installed from a wheel, the repository root in a checkout."""
    packaged = osp.join(PACKAGE_DIR, '.mim')
    if osp.isdir(osp.join(packaged, 'configs')):
        return packaged
    checkout = osp.dirname(PACKAGE_DIR)
    if osp.isdir(osp.join(checkout, 'configs')):
        return checkout
    raise FileNotFoundError(f'no configs found: neither {packaged}/configs (an installed wheel) '
                            f'nor {checkout}/configs (a checkout); reinstall the package')


def config_path(name: str) -> str:
    """The absolute path of one of our configs, wherever the package is: ``name`` relative
    to ``configs/`` (``'efficientdet/efficientdet_d0_8xb8-300e_coco.py'``).

    >>> from mmengine.config import Config
    >>> cfg = Config.fromfile(config_path('efficientdet/efficientdet_d0_8xb8-300e_coco.py'))
    >>> cfg.model.type
    'EfficientDetector'
    """
    path = osp.join(mim_root(), 'configs', name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'no config {name!r} under {osp.join(mim_root(), "configs")}')
    return path


def model_index() -> List[Dict]:
    """The models of our metafiles (``Name``, ``Config``, ``Weights`` …), in index order."""
    root = mim_root()
    models = []
    for metafile in load(osp.join(root, 'model-index.yml'))['Import']:
        models.extend(load(osp.join(root, metafile))['Models'])
    return models


def model_config_and_weights(name: str) -> Tuple[str, str]:
    """(config path, weights URL) of the model called ``name`` in our model index."""
    models = {model['Name']: model for model in model_index()}
    if name not in models:
        raise ValueError(f'no model {name!r} in the model index; choose one of '
                         f'{", ".join(models)}')
    return osp.join(mim_root(), models[name]['Config']), models[name].get('Weights')
