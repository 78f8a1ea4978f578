"""Checkpoints of mmdet's own ``projects/EfficientDet`` (open-mmlab/mmdetection, Apache-2.0:
``projects/EfficientDet/efficientdet/{bifpn,efficientdet_head,utils}.py`` with mmdet's
``EfficientNet`` backbone) in our naming: its users' way over to us.

Its network is EfficientDet's but for two things: its BiFPN pads max-pooling with 0 where TF
pads with -inf (set ``model.neck.pool_pad_value=0`` to run its weights exactly as it does),
and its anchors are mmdet's ``AnchorGenerator``'s (ratio major, ratios from ``sqrt``: 1.414 x
0.707 where TF has 1.4 x 0.7): the conversion reorders its prediction channels to our anchor
order, and our anchors then give boxes a little different from its. Its 90 classes are COCO's
ids, as effdet's. Its ``tensorflow/`` configs (its converted TF weights) differ in anchor
order and box-delta order, which the weights do not tell:
``EfficientDetector(checkpoint_from='mmdet-projects-tf')`` says so.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping

import torch

from .effdet import (COCO80_CHANNELS, TF_TO_MMDET_DELTAS, ConversionError,
                     convert_efficientnet_pytorch, convert_in_place)

# its BiFPN stage's fusion nodes, in our topology's node order (bifpn_topology)
_NODES = ('6_up', '5_up', '4_up', '3_up', '4_down', '5_down', '6_down', '7_down')
_WEIGHTS = ('p6_w1', 'p5_w1', 'p4_w1', 'p3_w1', 'p4_w2', 'p5_w2', 'p6_w2', 'p7_w2')
# its first stage's resampling convs: (our node, the input it resamples)
_RESAMPLE = {'p5_down_channel': (1, 2), 'p4_down_channel': (2, 1), 'p3_down_channel': (3, 0),
             'p4_level_connection': (4, 1), 'p5_level_connection': (5, 2)}
# mmdet EfficientNet block parts → efficientnet_pytorch's (converted to ours from there)
_BLOCK = {'expand_conv.conv': '_expand_conv', 'expand_conv.bn': '_bn0',
          'depthwise_conv.conv': '_depthwise_conv', 'depthwise_conv.bn': '_bn1',
          'se.conv1.conv': '_se_reduce', 'se.conv2.conv': '_se_expand',
          'linear_conv.conv': '_project_conv', 'linear_conv.bn': '_bn2'}
_SEPARABLE = {'depthwise_conv.weight': 'depthwise.conv.weight',
              'pointwise_conv.weight': 'pointwise.conv.weight',
              'pointwise_conv.bias': 'pointwise.conv.bias'}


def is_mmdet_projects_layout(keys) -> bool:
    """Whether state-dict ``keys`` are those of mmdet's ``projects/EfficientDet``."""
    return any(key.startswith(('neck.bifpn.', 'bbox_head.cls_header.')) for key in keys)


def _backbone(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """mmdet ``EfficientNet`` (layers.0 the stem, then its stage groups) → ours, through
    ``efficientnet_pytorch``'s numbering of the blocks (one count over all of them)."""
    blocks = sorted({tuple(map(int, m.groups())) for m in
                     (re.match(r'^backbone\.layers\.(\d+)\.(\d+)\.', k) for k in state_dict)
                     if m})
    number = {block: index for index, block in enumerate(blocks)}
    flat = OrderedDict()
    for key, value in state_dict.items():
        if not key.startswith('backbone.'):
            continue
        stem = re.match(r'^backbone\.layers\.0\.(conv|bn)\.(\w+)$', key)
        block = re.match(r'^backbone\.layers\.(\d+)\.(\d+)\.(.+)\.(\w+)$', key)
        if stem:
            flat[f'{"_conv_stem" if stem[1] == "conv" else "_bn0"}.{stem[2]}'] = value
        elif block and block[3] in _BLOCK:
            flat[f'_blocks.{number[int(block[1]), int(block[2])]}.{_BLOCK[block[3]]}.'
                 f'{block[4]}'] = value
        elif not re.match(r'^backbone\.layers\.\d+\.(conv|bn)\.', key):  # its last 1x1 conv
            raise ConversionError(f'unexpected key {key!r} in an mmdet EfficientNet backbone')
    return OrderedDict(('backbone.' + k, v) for k, v in convert_efficientnet_pytorch(flat).items())


def _neck_key(key: str):
    weights = re.match(r'^neck\.bifpn\.(\d+)\.(p\d_w\d)$', key)
    if weights and weights[2] in _WEIGHTS:
        return f'neck.cells.{weights[1]}.nodes.{_WEIGHTS.index(weights[2])}.fusion.weights'
    match = re.match(r'^neck\.bifpn\.(\d+)\.(\w+?)\.(.+)$', key)
    if not match:
        return None
    cell, part, rest = match.groups()
    prefix = f'neck.cells.{cell}.nodes'
    if part.startswith('conv') and part[4:] in _NODES:
        node = _NODES.index(part[4:])
        if rest.startswith('bn.'):
            return f'{prefix}.{node}.conv.pointwise.bn.{rest[3:]}'
        return f'{prefix}.{node}.conv.{_SEPARABLE[rest]}' if rest in _SEPARABLE else None
    if part in _RESAMPLE:
        node, source = _RESAMPLE[part]
        layer = 'conv' if rest.startswith('down_conv.') else 'bn'
        return f'{prefix}.{node}.resample.{source}.conv.{layer}.{rest.split(".", 1)[1]}'
    if part == 'p5_to_p6' and rest.startswith('0.'):
        inner = rest[2:]
        layer = 'conv' if inner.startswith('down_conv.') else 'bn'
        return f'neck.extra_levels.0.conv.{layer}.{inner.split(".", 1)[1]}'
    return None


def _head_key(key: str):
    match = re.match(r'^bbox_head\.(cls|reg)_(conv_list|bn_list|header)\.(.+)$', key)
    if not match:
        return None
    net, part, rest = match.groups()
    if part == 'bn_list':
        return f'bbox_head.{net}_norms.{rest}'
    if part == 'conv_list':
        index, name = rest.split('.', 1)
        return f'bbox_head.{net}_convs.{index}.{_SEPARABLE[name]}' if name in _SEPARABLE \
            else None
    return f'bbox_head.conv_{net}.{_SEPARABLE[rest]}' if rest in _SEPARABLE else None


def convert_mmdet_projects_state_dict(state_dict: Mapping[str, torch.Tensor],
                                      num_classes: int = 80, tensorflow: bool = False,
                                      num_scales: int = 3,
                                      num_ratios: int = 3) -> Dict[str, torch.Tensor]:
    """A ``projects/EfficientDet`` state dict → ``EfficientDetector`` keys: its prediction
    channels from its anchor order (ratio major) to ours (octave scale major); 90 COCO-id
    classes mapped to mmdet's 80 ``CocoDataset`` ones (``num_classes=80``) or kept (90).
    ``tensorflow``: a checkpoint of its ``configs/tensorflow/`` (its converted TF weights:
    ``YXYXAnchorGenerator``, octave scale major as ours, and ``YXYXDeltaXYWHBBoxCoder``, box
    deltas in TF's (dy, dx, dh, dw) order, put in mmdet's (dx, dy, dw, dh))."""
    if num_classes not in (80, 90):
        raise ConversionError(f'num_classes={num_classes}: choose 80 (mmdet CocoDataset) or 90 '
                              '(COCO ids, as the project trains)')
    out = _backbone(state_dict)
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            continue
        target = _neck_key(key) or _head_key(key)
        if target is None:
            raise ConversionError(f'unexpected key {key!r}: not part of an mmdet '
                                  'projects/EfficientDet model')
        out[target] = value
    anchors = num_scales * num_ratios
    # its anchor a = ratio * num_scales + scale (tensorflow: as ours, scale * num_ratios + ratio)
    order = [scale * num_ratios + ratio if tensorflow else ratio * num_scales + scale
             for scale in range(num_scales) for ratio in range(num_ratios)]
    for net in ('cls', 'reg'):
        for suffix in ('weight', 'bias'):
            key = f'bbox_head.conv_{net}.pointwise.conv.{suffix}'
            if key not in out:
                raise ConversionError(f'missing {key}: not an mmdet projects/EfficientDet '
                                      'detector checkpoint')
            tensor = out[key].reshape(anchors, -1, *out[key].shape[1:])[order]
            if net == 'cls' and num_classes == 80:
                tensor = tensor[:, COCO80_CHANNELS]
            if net == 'reg' and tensorflow:
                tensor = tensor[:, list(TF_TO_MMDET_DELTAS)]
            out[key] = tensor.reshape(-1, *tensor.shape[2:]).contiguous()
    return out


def mmdet_projects_to_ours_in_place(state_dict: dict, prefix: str, num_classes: int,
                                    tensorflow: bool = False) -> bool:
    """As ``effdet_to_ours_in_place``, for ``projects/EfficientDet``'s layout (``tensorflow``:
    of its ``configs/tensorflow/``)."""
    return convert_in_place(state_dict, prefix, lambda theirs: convert_mmdet_projects_state_dict(
        theirs, num_classes=80 if num_classes == 80 else 90, tensorflow=tensorflow)
        if is_mmdet_projects_layout(theirs) else None)
