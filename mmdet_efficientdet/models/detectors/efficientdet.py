from functools import partial
from typing import Optional

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmengine.logging import MMLogger

from ...converters import effdet_to_ours_in_place, mmdet_projects_to_ours_in_place
from ...utils.misc import check_choice


# what EfficientDetector(checkpoint_from=...) takes
CHECKPOINT_SOURCES = ('auto', 'mmdet-projects-tf')
# The weights whose shape follows the class count: what mmengine's loaders skip (with a
# warning) when a checkpoint of other classes is fine-tuned, as for any mmdet detector.
CLASS_LAYER_KEYS = ('bbox_head.conv_cls.pointwise.conv.weight',
                    'bbox_head.conv_cls.pointwise.conv.bias')


class CheckpointMismatchError(ValueError):
    """A checkpoint whose weights do not fit the model."""


def _architecture_mismatch(own: dict, state_dict: dict) -> Optional[str]:
    """What makes ``state_dict`` another architecture than ``own`` although its shared weights
    fit: weights the model does not have (squeeze-excite of D0 in Lite0, fusion weights of
    'fast' in 'sum' …) or, within a part (backbone, neck, head) that the checkpoint holds,
    weights of the model's that it lacks; None if neither."""
    unexpected = [key for key in state_dict if key not in own]
    parts = {key.split('.')[0] for key in state_dict if key in own}
    missing = [key for key in own if key not in state_dict and key.split('.')[0] in parts]
    if not unexpected and not missing:
        return None
    said = []
    if unexpected:
        said.append(f'{len(unexpected)} weights this model does not have (first: '
                    f'{unexpected[0]})')
    if missing:
        said.append(f'none of {len(missing)} weights of the model (first: {missing[0]})')
    return ' and '.join(said)


def _class_count_error(model: torch.nn.Module, own: dict, state_dict: dict) -> Optional[str]:
    """For a model that evaluates (``strict_classes``): a checkpoint class layer of another
    class count, which mmengine would skip, leaving a random one (``own``: the model's
    state dict)."""
    key = CLASS_LAYER_KEYS[1]
    theirs, ours = state_dict.get(key), own[key]
    if theirs is None or theirs.shape == ours.shape:
        return None
    anchors = model.bbox_head.num_base_priors
    return (f'the checkpoint is of {theirs.shape[0] // anchors} classes and the model of '
            f'{ours.shape[0] // anchors}: evaluated, its class layer would be random. Evaluate '
            f'with model.bbox_head.num_classes={theirs.shape[0] // anchors} (the config the '
            'checkpoint was trained with)')


def check_checkpoint_fits(model: torch.nn.Module, state_dict: dict, partial: bool) -> None:
    """Refuse a checkpoint that would leave ``model`` partly random: a weight of another
    shape outside the class layer (first one named, with both shapes: a checkpoint of another
    level), weights of another architecture whose shared ones happen to fit (a D0 checkpoint
    in a Lite0 model: squeeze-excite and fusion weights the model lacks), or no weight of the
    model's at all. Class-layer weights of another shape (a checkpoint of other classes) are
    left to mmengine, which skips them with a warning. With ``partial``, mismatched weights
    are removed from ``state_dict`` and listed, and the rest loads."""
    own = model.state_dict()
    mismatched = [(key, tuple(state_dict[key].shape), tuple(value.shape))
                  for key, value in own.items()
                  if hasattr(state_dict.get(key), 'shape') and state_dict[key].shape != value.shape]
    if state_dict and not any(key in state_dict for key in own):
        raise CheckpointMismatchError(
            f'no weight of the checkpoint belongs to this {type(model).__name__} (its first is '
            f'{next(iter(state_dict))!r}, the model\'s {next(iter(own))!r}): a checkpoint of '
            'another model')
    wrong_classes = (_class_count_error(model, own, state_dict)
                     if getattr(model, 'strict_classes', False) else None)
    if wrong_classes:
        raise CheckpointMismatchError(wrong_classes)
    if not partial:
        mismatched = [m for m in mismatched if m[0] not in CLASS_LAYER_KEYS]
    if not partial and mismatched:
        key, theirs, ours = mismatched[0]
        more = f' (and {len(mismatched) - 1} more)' if len(mismatched) > 1 else ''
        raise CheckpointMismatchError(
            f'the checkpoint does not fit this model: {key} is {theirs} in the checkpoint but '
            f'{ours} in the model{more}: a checkpoint of another level or architecture. To '
            'take what fits anyway, set model.partial_load=True (the rest is skipped)')
    other = _architecture_mismatch(own, state_dict)
    if not partial and other:
        raise CheckpointMismatchError(
            f'the checkpoint does not fit this model: it holds {other}: a checkpoint of '
            'another level or architecture. To take what fits anyway, set '
            'model.partial_load=True (the rest is skipped)')
    if not mismatched:
        return
    for key, _, _ in mismatched:
        del state_dict[key]
    MMLogger.get_current_instance().warning(
        f'partial_load: skipped {len(mismatched)} checkpoint weights of other shapes (kept the '
        'model\'s own): ' + ', '.join(f'{key} {theirs} -> {ours}'
                                      for key, theirs, ours in mismatched))


@MODELS.register_module()
class EfficientDetector(SingleStageDetector):
    """EfficientDet: ``TFEfficientNet`` + ``BiFPNNeck`` + ``EfficientDetHead``.

    A plain mmdet single-stage detector that holds BN, whatever process builds it (the
    paper's SyncBN is the runner's business: ``sync_bn = 'torch'`` in the config), converts
    effdet's release files on load and refuses checkpoints of another level or architecture.
    Its deploy form (BN folded, static padding): ``mmdet_efficientdet.deploy.switch_to_deploy``.

    Args:
        channels_last (bool): While training, keep weights and activations in channels-last
            memory format, which makes the depthwise convs' backward much faster on CPUs
            (figures: docs/en/results.md) and suits tensor cores. In eval mode the
            model is contiguous again (as fast for inference here, and bit-equal to the
            reference's outputs). Default: False.
        checkpoint_from (str): ``'auto'`` (default): our own, effdet's and mmdet
            ``projects/EfficientDet``'s checkpoints are told apart by their keys and converted
            on load. ``'mmdet-projects-tf'``: a checkpoint of that project's
            ``configs/tensorflow/`` (its converted TF weights), whose anchor and box-delta
            orders its keys do not tell.
        strict_classes (bool): Refuse a checkpoint of another class count instead of
            skipping its class layer (fine-tuning's convention): what evaluation wants
            (``tools/test.py`` sets it). Default: False.
        partial_load (bool): Weights of a checkpoint whose shapes do not fit this model are
            skipped (and listed in the log) instead of refused. Default False: a checkpoint
            of other classes loads as into any mmdet model (mmengine skips the class layer
            with a warning: ``load_from`` fine-tuning), and one of another level or
            architecture (test, ``load_from``, ``init_detector``, infer) raises an error
            naming the first weight that does not fit and both shapes.
        *args, **kwargs: ``SingleStageDetector`` arguments (backbone, neck, bbox_head, ...).
    """

    def __init__(self, *args, channels_last: bool = False, partial_load: bool = False,
                 strict_classes: bool = False, checkpoint_from: str = 'auto',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check_choice('checkpoint_from', checkpoint_from, CHECKPOINT_SOURCES)
        self.checkpoint_from = checkpoint_from
        self.partial_load = partial_load
        self.strict_classes = strict_classes
        self.channels_last = channels_last
        self.train(self.training)

    def train(self, mode: bool = True) -> 'EfficientDetector':
        super().train(mode)
        if self.channels_last:
            self.to(memory_format=torch.channels_last if mode else torch.contiguous_format)
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # called first, with the whole checkpoint, by torch's and mmengine's loaders alike
        # (load_from, tools/test.py, init_detector, DetInferencer): the reference port's
        # release files are converted here, so they load as they are
        projects = partial(mmdet_projects_to_ours_in_place,
                           tensorflow=self.checkpoint_from == 'mmdet-projects-tf')
        for layout, convert in (('effdet', effdet_to_ours_in_place),
                                ('mmdet projects/EfficientDet', projects)):
            if convert(state_dict, prefix, self.bbox_head.num_classes):
                MMLogger.get_current_instance().info(
                    f'the checkpoint is in the layout of {layout}: converted on load')
        if prefix == '':
            check_checkpoint_fits(self, state_dict, self.partial_load)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def loss(self, batch_inputs: torch.Tensor, batch_data_samples) -> dict:
        try:
            return super().loss(batch_inputs, batch_data_samples)
        except ValueError as error:
            if 'Expected more than 1 value per channel' not in str(error):
                raise
            batch, _, height, width = batch_inputs.shape
            raise ValueError(
                f'a training batch of {batch} image(s) of {height}x{width} leaves one value per '
                'channel for a BatchNorm of the coarsest level (P7 is then 1x1): train with '
                'batches of 2 or more images (drop_last=True in train_dataloader\'s '
                'batch_sampler drops a last batch of one) or with larger images') from error

    def extract_feat(self, batch_inputs: torch.Tensor):
        if self.channels_last and self.training:
            batch_inputs = batch_inputs.contiguous(memory_format=torch.channels_last)
        return super().extract_feat(batch_inputs)


# mmdet's projects/EfficientDet names its detector 'EfficientDet': the same name here, for
# configs that come from there (not taken while that project's own is registered)
if 'EfficientDet' not in MODELS.module_dict:
    MODELS.register_module(name='EfficientDet', module=EfficientDetector)
