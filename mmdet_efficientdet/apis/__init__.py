"""What the tools and users' scripts are made of (the top layer: models never import it)."""
from .convert import convert_effdet_checkpoint
from .inferencer import EfficientDetInferencer
from .model_index import config_path, mim_root, model_config_and_weights, model_index

__all__ = ['EfficientDetInferencer', 'config_path', 'convert_effdet_checkpoint', 'mim_root',
           'model_config_and_weights', 'model_index']
