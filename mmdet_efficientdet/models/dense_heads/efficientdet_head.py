from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmdet.models.dense_heads import AnchorHead
from mmdet.registry import MODELS
from mmengine.model import bias_init_with_prob, normal_init

from ..layers import SeparableConvModule


@MODELS.register_module()
class EfficientDetHead(AnchorHead):
    """EfficientDet's class and box subnets, built on mmdet's ``AnchorHead``.

    Each subnet is shared across levels: ``num_repeats`` separable 3×3 convs (pointwise with
    bias), each followed by a BN of its own **per level** and swish, then a separable 3×3
    prediction conv (A×K class logits / A×4 box deltas). Everything else (anchors, assigner,
    sampler, FocalLoss, box loss, NMS, ``predict_by_feat``) is mmdet's.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the neck outputs (W_bifpn).
        num_repeats (int): Conv repeats (D_class). Default: 3.
        num_levels (int): Pyramid levels (one BN per level and repeat). Default: 5.
        padding_mode (str): ``'same'`` or ``'symmetric'``. Default: ``'same'``.
        norm_cfg (dict): Norm config. Default: BN eps 1e-3, momentum 0.01.
        act_cfg (dict): Activation. Default: Swish (``SiLU``).
        prior_prob (float): Initial foreground probability of the class bias. Default: 0.01.
        **kwargs: ``AnchorHead`` arguments (anchor_generator, bbox_coder, losses, cfgs).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 num_repeats: int = 3,
                 num_levels: int = 5,
                 padding_mode: str = 'same',
                 norm_cfg: dict = dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True),
                 act_cfg: dict = dict(type='SiLU'),
                 prior_prob: float = 0.01,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        self.num_repeats = num_repeats
        self.num_levels = num_levels
        self.padding_mode = padding_mode
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.prior_prob = prior_prob
        super().__init__(num_classes, in_channels, feat_channels=in_channels,
                         init_cfg=init_cfg, **kwargs)

    def _subnet(self) -> Tuple[nn.ModuleList, nn.ModuleList]:
        convs = nn.ModuleList([
            SeparableConvModule(self.in_channels, self.in_channels, 3, self.padding_mode)
            for _ in range(self.num_repeats)
        ])
        norms = nn.ModuleList([
            nn.ModuleList([
                build_norm_layer(self.norm_cfg, self.in_channels)[1]
                for _ in range(self.num_levels)
            ]) for _ in range(self.num_repeats)
        ])
        return convs, norms

    def _init_layers(self) -> None:
        self.cls_convs, self.cls_norms = self._subnet()
        self.reg_convs, self.reg_norms = self._subnet()
        self.act = build_activation_layer(self.act_cfg)
        self.conv_cls = SeparableConvModule(
            self.in_channels, self.num_base_priors * self.cls_out_channels, 3, self.padding_mode)
        self.conv_reg = SeparableConvModule(
            self.in_channels, self.num_base_priors * self.bbox_coder.encode_size,
            3, self.padding_mode)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    normal_init(module, std=0.01)
        nn.init.constant_(self.conv_cls.pointwise.conv.bias, bias_init_with_prob(self.prior_prob))

    def _run_subnet(self, x: torch.Tensor, level: int, convs: nn.ModuleList,
                    norms: nn.ModuleList, predict: nn.Module) -> torch.Tensor:
        for conv, norm in zip(convs, norms):
            x = self.act(norm[level](conv(x)))
        return predict(x)

    def forward(self, x: Tuple[torch.Tensor, ...]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        if len(x) != self.num_levels:
            raise ValueError(f'EfficientDetHead has num_levels={self.num_levels} '
                             f'(one BN per level) but got {len(x)} feature maps')
        cls_scores = [self._run_subnet(feat, level, self.cls_convs, self.cls_norms,
                                       self.conv_cls) for level, feat in enumerate(x)]
        bbox_preds = [self._run_subnet(feat, level, self.reg_convs, self.reg_norms,
                                       self.conv_reg) for level, feat in enumerate(x)]
        return cls_scores, bbox_preds
