from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks import DropPath
from mmdet.models.layers import SELayer
from mmdet.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...converters import efficientnet_to_ours_in_place
from ...scaling import (EFFICIENTNET_SCALING, STRIDE_LEVEL_STAGES, BlockSpec, efficientnet_blocks,
                        efficientnet_family, efficientnet_stem_channels)
from ...utils.misc import check_choice
from ..layers import conv_padding


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck with squeeze-excite (EfficientNet's block).

    expand 1×1 (skipped when the expand ratio is 1) → depthwise k×k → SE (none in Lite) →
    project 1×1 (BN, no activation) → identity skip with drop-path when the shapes match.

    Args:
        spec (BlockSpec): Kernel, stride, expand ratio and channels (from the stage table).
        pad_type (str): ``'same'`` (TF) or ``'symmetric'``.
        drop_path_rate (float): Drop-path probability of the skip branch.
        norm_cfg (dict): Norm layer config.
        act_cfg (dict): Activation config.
        se_ratio (float): Squeeze width over the block's input channels; 0: no SE.
    """

    def __init__(self, spec: BlockSpec, pad_type: str, drop_path_rate: float,
                 norm_cfg: dict, act_cfg: dict, se_ratio: float) -> None:
        super().__init__()
        mid_channels = spec.in_channels * spec.expand_ratio
        if spec.expand_ratio != 1:
            self.expand_conv = ConvModule(spec.in_channels, mid_channels, 1, bias=False,
                                          norm_cfg=norm_cfg, act_cfg=act_cfg)
        else:
            self.expand_conv = None
        conv_cfg, padding = conv_padding(pad_type, spec.kernel_size, spec.stride)
        self.depthwise_conv = ConvModule(
            mid_channels, mid_channels, spec.kernel_size, stride=spec.stride, padding=padding,
            groups=mid_channels, bias=False, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        # mmdet's SELayer squeezes to int(mid_channels / ratio); EfficientNet counts the
        # squeeze width from the block's input channels: int(in_channels * se_ratio)
        self.se = (SELayer(mid_channels, ratio=spec.expand_ratio / se_ratio,
                           act_cfg=(act_cfg, dict(type='Sigmoid')))
                   if se_ratio > 0 else nn.Identity())
        self.project_conv = ConvModule(mid_channels, spec.out_channels, 1, bias=False,
                                       norm_cfg=norm_cfg, act_cfg=None)
        self.has_skip = spec.stride == 1 and spec.in_channels == spec.out_channels
        self.drop_path = (DropPath(drop_path_rate)
                          if self.has_skip and drop_path_rate > 0 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand_conv is None else self.expand_conv(x)
        out = self.project_conv(self.se(self.depthwise_conv(out)))
        if self.has_skip:
            out = self.drop_path(out) + x
        return out


@MODELS.register_module()
class TFEfficientNet(BaseModule):
    """EfficientNet B0–B7 and Lite0–Lite4, the same networks as TF's / timm's
    ``tf_efficientnet_bX`` / ``tf_efficientnet_liteX``.

    Built from the one stage table in :mod:`mmdet_efficientdet.scaling`, scaled by the arch's
    width/depth multipliers; the Lite family (ReLU6, no squeeze-excite, stem and end stages
    not scaled) is a row of the family table there. The outputs are the five stride levels
    2, 4, 8, 16, 32 (ends of stages 1, 2, 3, 5, 7), chosen by ``out_indices``.

    Args:
        arch (str): ``'b0'`` … ``'b7'``, ``'lite0'`` … ``'lite4'``. Default: ``'b0'``.
        out_indices (Sequence[int]): Stride levels to output, 0…4 for strides 2…32.
            Default: (2, 3, 4), strides 8, 16, 32 as EfficientDet uses.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k ≥ 1 the stem and the stride
            levels 0…k-1 (parameters not trained, norms in eval mode). Default: -1.
        pad_type (str): ``'same'`` (TF SAME, needed by the official weights) or
            ``'symmetric'``. Default: ``'same'``.
        drop_path_rate (float): Drop-path rate, as timm's: block ``i`` of ``n`` drops its
            residual branch with probability ``drop_path_rate * i / n`` (0 for the first
            block; the last gets slightly less than ``drop_path_rate``). Default: 0.2.
        norm_cfg (dict): Norm config. Default: BN with eps 1e-3, momentum 0.01.
        act_cfg (dict, optional): Activation. Default: the family's (Swish ``SiLU``; Lite:
            ``ReLU6``).
        norm_eval (bool): Keep norm layers in eval mode while training. Default: False.
        with_cp (bool): Activation checkpointing per block. Default: False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)`` loads weights in
            our naming, timm's ``tf_efficientnet_bX`` naming (the ImageNet release files),
            ``efficientnet_pytorch``'s (its B0–B7 files, the Lite0–2 packages' files) or
            effdet's ``backbone.*``; ``checkpoint`` is a path, a URL or ``pkg://PACKAGE/PATH``
            (a file inside an installed Python package); ``prefix`` as mmengine's
            (``'backbone'`` takes the ``backbone.*`` keys of a detector checkpoint). A file of
            another arch is refused, naming the arch it holds. Default: the reference's
            initialisation from scratch (TF variance scaling, fan-out per group, BN 1/0).

    ``out_indices`` and ``frozen_stages`` count stride levels here, layers in mmdet's own
    ``EfficientNet`` (layer 0 the stem, then its stage groups): our ``out_indices=(2, 3, 4)``
    is its ``(3, 4, 5)`` (strides 8, 16, 32; mmdet's ``projects/EfficientDet`` configs), and
    our ``frozen_stages=k`` its ``k + 1`` (ours -1, nothing frozen, is its 0).

    Example:
        >>> import torch
        >>> self = TFEfficientNet(arch='b0', out_indices=(2, 3, 4))
        >>> outputs = self(torch.rand(1, 3, 256, 256))
        >>> [tuple(out.shape) for out in outputs]
        [(1, 40, 32, 32), (1, 112, 16, 16), (1, 320, 8, 8)]
    """

    def __init__(self,
                 arch: str = 'b0',
                 out_indices: Sequence[int] = (2, 3, 4),
                 frozen_stages: int = -1,
                 pad_type: str = 'same',
                 drop_path_rate: float = 0.2,
                 norm_cfg: dict = dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True),
                 act_cfg: Optional[dict] = None,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is None:
            # timm's _init_weight_goog. (The stem, a direct child ConvModule, is re-initialised
            # by mmcv's kaiming_init after this: fan-out normal with gain 2, the same law.)
            init_cfg = [
                dict(type='VarianceScaling', layer='Conv2d', scale=2.0, mode='fan_out'),
                dict(type='Constant', layer='_BatchNorm', val=1.0, bias=0.0)
            ]
        super().__init__(init_cfg=init_cfg)
        check_choice('EfficientNet arch', arch, EFFICIENTNET_SCALING)
        family = efficientnet_family(arch)
        act_cfg = act_cfg or dict(type=family.act)
        num_levels = len(STRIDE_LEVEL_STAGES)
        out_indices = tuple(out_indices)
        for index in out_indices:
            if not 0 <= index < num_levels:
                raise ValueError(f'out_indices {out_indices}: each index must be in '
                                 f'[0, {num_levels - 1}] (stride levels 2, 4, 8, 16, 32)')
        if not -1 <= frozen_stages <= num_levels:
            raise ValueError(f'frozen_stages={frozen_stages} must be in [-1, {num_levels}]')
        self.arch = arch
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp

        stem_cfg, stem_pad = conv_padding(pad_type, 3, 2)
        self.stem = ConvModule(3, efficientnet_stem_channels(arch), 3, stride=2,
                               padding=stem_pad, bias=False, conv_cfg=stem_cfg,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)
        stages = efficientnet_blocks(arch)
        total = sum(len(stage) for stage in stages)
        self.blocks = nn.ModuleList()
        index = 0
        for stage in stages:
            layers = []
            for spec in stage:
                layers.append(MBConvBlock(spec, pad_type, drop_path_rate * index / total,
                                          norm_cfg, act_cfg, family.se_ratio))
                index += 1
            self.blocks.append(nn.Sequential(*layers))
        self.out_channels = [stages[s][-1].out_channels for s in STRIDE_LEVEL_STAGES]
        self.out_stages = {STRIDE_LEVEL_STAGES[level] for level in out_indices}
        self._freeze_stages()

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        last_stage = STRIDE_LEVEL_STAGES[self.frozen_stages - 1] if self.frozen_stages else -1
        return [self.stem] + list(self.blocks[:last_stage + 1])

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def _run_stage(self, stage: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        for block in stage:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.stem(x)
        outs = []
        for index, stage in enumerate(self.blocks):
            x = self._run_stage(stage, x)
            if index in self.out_stages:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'TFEfficientNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # timm's and efficientnet_pytorch's files (the ImageNet weights, pkg://…) load as
        # they are through any loader: mmengine's PretrainedInit, load_checkpoint, torch's
        efficientnet_to_ours_in_place(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def init_weights(self) -> None:
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            from ...converters import load_backbone_checkpoint
            load_backbone_checkpoint(self, self.init_cfg['checkpoint'],
                                     prefix=self.init_cfg.get('prefix'))
            MMLogger.get_current_instance().info(
                f'TFEfficientNet-{self.arch}: loaded {self.init_cfg["checkpoint"]}')
            self._is_init = True
            return
        super().init_weights()
