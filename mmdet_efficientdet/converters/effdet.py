"""Weights of the reference port (effdet / timm) in our naming.

* :func:`convert_timm_efficientnet`: timm ``tf_efficientnet_bX`` keys (ImageNet weights, or
  effdet's ``backbone.*`` with the prefix removed) → :class:`TFEfficientNet` keys.
* :func:`convert_effdet_state_dict`: a whole effdet ``tf_efficientdet_dX`` state dict →
  :class:`EfficientDetector` keys: box deltas reordered from TF's (ty, tx, th, tw) to mmdet's
  (dx, dy, dw, dh); effdet's 90 class channels mapped to mmdet's 80 ``CocoDataset`` classes
  (or kept). Anchor order needs no change: ``EfficientDetAnchorGenerator`` keeps effdet's.
* :func:`check_state_dict`: strict comparison with a model, naming the first mismatch.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional

import torch

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


def convert_timm_efficientnet(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """timm ``tf_efficientnet_bX`` keys (no prefix) → ``TFEfficientNet`` keys.

    Classifier-head keys (``conv_head``, ``bn2``, ``classifier``) are dropped; any other key
    that does not belong to the network is an error naming it.
    """
    inverted = {key.split('.conv_pwl.')[0] for key in state_dict if '.conv_pwl.' in key}
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(_CLASSIFIER_PREFIXES):
            continue
        if key.startswith('conv_stem.'):
            out['stem.conv.' + key[len('conv_stem.'):]] = value
            continue
        if key.startswith('bn1.'):
            out['stem.bn.' + key[len('bn1.'):]] = value
            continue
        match = re.match(r'^(blocks\.\d+\.\d+)\.(se\.conv_reduce|se\.conv_expand|\w+)\.(\w+)$', key)
        table = _INVERTED_RESIDUAL if match and match[1] in inverted else _DEPTHWISE_SEPARABLE
        if not match or match[2] not in table:
            raise ConversionError(f'unexpected key {key!r} in an EfficientNet checkpoint '
                                  '(expected timm tf_efficientnet_bX naming)')
        out[f'{match[1]}.{table[match[2]]}.{match[3]}'] = value
    return out


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


def load_torch_file(path: str) -> Mapping:
    """``torch.load`` with ``weights_only=True`` (files, or URLs through mmengine)."""
    if re.match(r'^[a-z]+://', path):
        from mmengine.runner import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location='cpu')
    return torch.load(path, map_location='cpu', weights_only=True)


def load_backbone_checkpoint(backbone: torch.nn.Module, checkpoint,
                             prefix: Optional[str] = None) -> None:
    """Load weights into a :class:`TFEfficientNet`, strictly.

    ``checkpoint`` is a path/URL or a loaded dict in our naming (optionally under
    ``prefix``, as mmengine's ``PretrainedInit`` takes it: ``'backbone'`` selects the
    ``backbone.*`` keys of a detector checkpoint), timm ``tf_efficientnet_bX`` naming, or a
    whole effdet detector (its ``backbone.*`` part is used when no prefix is given).
    """
    loaded = load_torch_file(checkpoint) if isinstance(checkpoint, str) else checkpoint
    state_dict = unwrap_state_dict(loaded)
    if prefix is None:
        prefix = 'backbone.' if any(k.startswith('backbone.') for k in state_dict) else ''
    elif prefix and not prefix.endswith('.'):
        prefix += '.'
    if prefix:
        state_dict = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                                 if k.startswith(prefix))
    if any(k.startswith('conv_stem.') for k in state_dict):
        state_dict = convert_timm_efficientnet(state_dict)
    check_state_dict(state_dict, backbone.state_dict(), f'{type(backbone).__name__} backbone')
    backbone.load_state_dict(state_dict, strict=True)
