"""Checks of a config that the training start (``CheckDatasetHook``) and our tools make: a
mistake there otherwise trains without a word."""
from typing import Optional, Tuple

from mmengine.config import Config


def fixed_input_size(model_cfg: dict) -> Optional[Tuple[int, int]]:
    """(H, W) the config pads its inputs to (its ``BatchFixedSizePad``), or None."""
    for augment in (model_cfg.get('data_preprocessor') or {}).get('batch_augments') or []:
        if augment.get('type') == 'BatchFixedSizePad':
            return tuple(augment['size'])
    return None


def _pipeline_sizes(cfg: Config):
    """(where, size) of each image size that ``image_size`` is meant to set."""
    preprocessor = cfg.get('model', {}).get('data_preprocessor', {})
    if preprocessor.get('pad_size_divisor'):
        yield 'model.data_preprocessor.pad_size_divisor', preprocessor['pad_size_divisor']
    padded = fixed_input_size(cfg.get('model', {}))
    if padded:
        yield 'model.data_preprocessor.batch_augments (BatchFixedSizePad).size', padded
    keys = dict(RandomResize='scale', RandomCrop='crop_size', EfficientDetResize='scale')
    for split in ('train', 'val', 'test'):
        dataset = (cfg.get(f'{split}_dataloader') or {}).get('dataset')
        while dataset is not None and 'pipeline' not in dataset and 'dataset' in dataset:
            dataset = dataset['dataset']
        for i, step in enumerate((dataset or {}).get('pipeline') or []):
            key = keys.get(step.get('type'))
            if key and key in step:
                yield f'{split}_dataloader.dataset.pipeline[{i}].{key}', step[key]


def check_image_size(cfg: Config) -> None:
    """A config whose ``image_size`` is not the size its pipelines and data preprocessor use
    (``image_size`` set in a child config or by ``--cfg-options`` changes nothing once the
    base file has been read): a ValueError naming the keys to set."""
    size = cfg.get('image_size')
    if not isinstance(size, int) or isinstance(size, bool):
        return
    other = [(where, value) for where, value in _pipeline_sizes(cfg)
             if any(n != size for n in (value if isinstance(value, (list, tuple)) else [value]))]
    if other:
        where, value = other[0]
        more = f' (and {len(other) - 1} more)' if len(other) > 1 else ''
        raise ValueError(
            f'image_size={size}, but the config uses {value} at {where}{more}: image_size only '
            'sets the sizes of the file that defines it, when it is read. Set those keys too '
            '(a config that inherits ours redefines train_pipeline, test_pipeline and '
            'model.data_preprocessor with its image_size; docs/en/configs.md shows one)')
