from typing import Tuple

from mmdet.apis import DetInferencer
from mmengine.config import Config

from .model_index import model_config_and_weights


class EfficientDetInferencer(DetInferencer):
    """mmdet's ``DetInferencer`` that also knows our models by their metafile name.

    mmengine looks model names up only in the packages of its own fixed list
    (``mmengine.config.utils.MODULE2PACKAGE``), which a plugin cannot join without changing
    mmengine; this subclass reads our ``model-index.yml`` instead. Everything else is
    ``DetInferencer``'s (a config path and ``weights=`` work with ``DetInferencer`` itself).

    Example:
        >>> inferencer = EfficientDetInferencer('efficientdet_d0_8xb8-300e_coco')
        >>> result = inferencer('demo.jpg')  # effdet's release weights, converted on load
    """

    def __init__(self, model=None, weights=None, device=None, scope='mmdet', **kwargs):
        super().__init__(model=model, weights=weights, device=device, scope=scope, **kwargs)

    def _load_model_from_metafile(self, model: str) -> Tuple[Config, str]:
        path, weights = model_config_and_weights(model)
        return Config.fromfile(path), weights
