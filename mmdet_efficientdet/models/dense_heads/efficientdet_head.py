import copy
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_norm_layer, fuse_conv_bn
from mmcv.ops import batched_nms
from mmdet.models.dense_heads import AnchorHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import scale_boxes
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from ...utils.misc import check_choice
from ..layers import SeparableConvModule

# The reference decodes without clamping the size deltas; clamping them at log(1 / tiny) ≈ 87
# changes no box whose size float32 can hold.
NO_WH_CLAMP = float(torch.finfo(torch.float32).tiny)
TOPK_MODES = ('all_levels', 'each_level')
# The selections of the reference (effdet's DetBenchPredict): NMS at IoU 0.5, or, for the
# published AP, Gaussian soft-NMS with sigma 0.5 keeping scores >= 0.001 (what the COCO
# configs test with; tests/test_configs.py holds them to it)
HARD_NMS = dict(type='nms', iou_threshold=0.5)
SOFT_NMS = dict(type='soft_nms', iou_threshold=0.3, sigma=0.5, min_score=0.001,
                method='gaussian')


@MODELS.register_module()
class EfficientDetHead(AnchorHead):
    """EfficientDet's class and box subnets, built on mmdet's ``AnchorHead``.

    Each subnet is shared across levels: ``stacked_convs`` separable 3×3 convs (pointwise with
    bias), each followed by a BN of its own **per level** and swish, then a separable 3×3
    prediction conv (A×K class logits / A×4 box deltas). Everything else (anchors, assigner,
    sampler, FocalLoss, box loss, NMS) is mmdet's.

    Detections (``test_cfg``): with ``topk='all_levels'`` (our EfficientDet configs) they are
    selected as the reference (effdet ``DetBenchPredict``) does: the ``nms_pre`` best
    (anchor, class) pairs by logit over all levels together, decoded without a size clamp,
    clipped to the image, batched NMS (``nms``: ``'nms'`` IoU 0.5, or ``'soft_nms'``), the
    best ``max_per_img``. ``topk='each_level'`` (or no ``topk`` key) is mmdet's ``AnchorHead``
    selection (top ``nms_pre`` per level, ``score_thr``, ``min_bbox_size``).

    Initialisation (``init_cfg``, default): the reference's variance scaling with fan-in
    (``VarianceScaling``) for every conv, the class prediction's bias at the prior
    ``prior_prob``; a loaded checkpoint is never overwritten by it.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the neck outputs (W_bifpn).
        stacked_convs (int): Separable convs of each subnet before its prediction conv
            (D_class; mmdet's name, as in ``RetinaHead``). Default: 3.
        num_levels (int, optional): Not needed: the head has one BN per level and repeat for
            the levels of its anchor generator (``len(anchor_generator.strides)``, as mmdet's
            RTMDet head counts them); if given, it must agree.
        pad_type (str): ``'same'`` or ``'symmetric'``. Default: ``'same'``.
        norm_cfg (dict): Norm config. Default: BN eps 1e-3, momentum 0.01.
        act_cfg (dict): Activation. Default: Swish (``SiLU``).
        prior_prob (float): Initial foreground probability of the class bias. Default: 0.01.
        with_cp (bool): Activation checkpointing of each subnet at each level while training.
            Default: False.
        init_cfg (dict, optional): Initialisation. Default: the reference's (see above).
        **kwargs: ``AnchorHead`` arguments (anchor_generator, bbox_coder, losses, cfgs).

    Example:
        >>> import torch
        >>> self = EfficientDetHead(num_classes=80, in_channels=64, anchor_generator=dict(
        ...     type='EfficientDetAnchorGenerator', strides=[8, 16, 32, 64, 128]))
        >>> feats = [torch.rand(1, 64, 64 // 2**i, 64 // 2**i) for i in range(5)]
        >>> cls_scores, bbox_preds = self.eval()(feats)
        >>> tuple(cls_scores[0].shape), tuple(bbox_preds[0].shape)
        ((1, 720, 64, 64), (1, 36, 64, 64))
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 stacked_convs: int = 3,
                 num_levels: Optional[int] = None,
                 pad_type: str = 'same',
                 norm_cfg: dict = dict(type='BN', eps=1e-3, momentum=0.01, requires_grad=True),
                 act_cfg: dict = dict(type='SiLU'),
                 prior_prob: float = 0.01,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        self.with_cp = with_cp
        self.stacked_convs = stacked_convs
        self._num_levels_given = num_levels
        self.pad_type = pad_type
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        if init_cfg is None:
            head_init = dict(type='VarianceScaling', scale=1.0, mode='fan_in',
                             distribution='normal')
            init_cfg = dict(layer='Conv2d', **head_init,
                            override=dict(name='conv_cls', bias_prob=prior_prob, **head_init))
        super().__init__(num_classes, in_channels, feat_channels=in_channels,
                         init_cfg=init_cfg, **kwargs)

    @property
    def num_levels(self) -> int:
        """The pyramid levels: those of the anchor generator."""
        return len(self.prior_generator.strides)

    def _subnet(self) -> Tuple[nn.ModuleList, nn.ModuleList]:
        convs = nn.ModuleList([
            SeparableConvModule(self.in_channels, self.in_channels, 3, self.pad_type)
            for _ in range(self.stacked_convs)
        ])
        norms = nn.ModuleList([
            nn.ModuleList([
                build_norm_layer(self.norm_cfg, self.in_channels)[1]
                for _ in range(self.num_levels)
            ]) for _ in range(self.stacked_convs)
        ])
        return convs, norms

    def _init_layers(self) -> None:
        given = self._num_levels_given
        if given is not None and given != self.num_levels:
            raise ValueError(f'EfficientDetHead: num_levels={given}, but the anchor generator '
                             f'has {self.num_levels} strides {list(self.prior_generator.strides)}'
                             ': leave num_levels out (the head takes the strides\' count)')
        self.cls_convs, self.cls_norms = self._subnet()
        self.reg_convs, self.reg_norms = self._subnet()
        self.act = build_activation_layer(self.act_cfg)
        self.conv_cls = SeparableConvModule(
            self.in_channels, self.num_base_priors * self.cls_out_channels, 3, self.pad_type)
        self.conv_reg = SeparableConvModule(
            self.in_channels, self.num_base_priors * self.bbox_coder.encode_size,
            3, self.pad_type)

    def _run_subnet(self, x: torch.Tensor, level: int, convs: nn.ModuleList,
                    norms: Optional[nn.ModuleList], predict: nn.Module) -> torch.Tensor:
        for index, conv in enumerate(convs):
            if norms is None:  # deploy mode: one conv per level, its BN folded in
                x = self.act(conv[level](x))
            else:
                x = self.act(norms[index][level](conv(x)))
        return predict(x)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold each level's BN into its own copy of the shared pointwise conv before it (the
        depthwise conv stays shared); inference only."""
        if self.cls_norms is None:
            return
        for name in ('cls', 'reg'):
            convs, norms = getattr(self, f'{name}_convs'), getattr(self, f'{name}_norms')
            setattr(self, f'{name}_convs', nn.ModuleList([
                nn.ModuleList([
                    nn.Sequential(conv.depthwise,
                                  fuse_conv_bn(nn.Sequential(copy.deepcopy(conv.pointwise.conv),
                                                             norm))[0])
                    for norm in level_norms
                ]) for conv, level_norms in zip(convs, norms)
            ]))
            setattr(self, f'{name}_norms', None)

    def forward(self, x: Tuple[torch.Tensor, ...]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        if len(x) != self.num_levels:
            raise ValueError(f'EfficientDetHead has num_levels={self.num_levels} '
                             f'(one BN per level) but got {len(x)} feature maps')
        checkpointed = self.with_cp and any(feat.requires_grad for feat in x)

        def run(*args):
            if checkpointed:
                return cp.checkpoint(self._run_subnet, *args, use_reentrant=False)
            return self._run_subnet(*args)
        cls_scores = [run(feat, level, self.cls_convs, self.cls_norms, self.conv_cls)
                      for level, feat in enumerate(x)]
        bbox_preds = [run(feat, level, self.reg_convs, self.reg_norms, self.conv_reg)
                      for level, feat in enumerate(x)]
        return cls_scores, bbox_preds

    def predict_by_feat(self,
                        cls_scores: List[torch.Tensor],
                        bbox_preds: List[torch.Tensor],
                        score_factors: Optional[List[torch.Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> List[InstanceData]:
        cfg = ConfigDict(self.test_cfg if cfg is None else cfg)
        topk = cfg.get('topk', 'each_level')
        check_choice('test_cfg.topk', topk, TOPK_MODES)
        if topk == 'each_level':
            return super().predict_by_feat(cls_scores, bbox_preds, score_factors,
                                           batch_img_metas, cfg, rescale, with_nms)
        candidates = self.decode_topk_all_levels(
            cls_scores, bbox_preds, cfg.get('nms_pre', 5000),
            [image_extent(img_meta, rescale) for img_meta in batch_img_metas])
        results = []
        for img_meta, (boxes, scores, labels) in zip(batch_img_metas, candidates):
            result = InstanceData(bboxes=boxes, scores=scores, labels=labels)
            if cfg.get('score_thr', 0.0) > 0:  # the reference keeps every score
                result = result[result.scores > cfg.score_thr]
            if cfg.nms.get('type') == 'soft_nms':
                # mmcv's soft-NMS scores two empty (fully clipped) boxes' IoU as 0/0 = NaN;
                # they overlap nothing and are no detections
                width, height = (result.bboxes[:, 2:] - result.bboxes[:, :2]).unbind(1)
                result = result[(width > 0) & (height > 0)]
            if with_nms and len(result):
                dets, keep = best_after_nms(result.bboxes, result.scores, result.labels,
                                            cfg.nms, cfg.max_per_img)
                result = result[keep]
                result.scores = dets[:, -1]  # soft-NMS rescales scores
            if rescale:
                result.bboxes = scale_boxes(result.bboxes,
                                            [1 / s for s in img_meta['scale_factor']])
            results.append(result)
        return results

    def decode_topk_all_levels(self, cls_scores: List[torch.Tensor],
                               bbox_preds: List[torch.Tensor], nms_pre: int,
                               extents: List[Tuple[float, float]]) -> List[tuple]:
        """The reference's candidates of each image before NMS: ``(boxes, scores, labels)`` of
        its ``nms_pre`` best (anchor, class) pairs over all levels (effdet's
        ``DetBenchPredict``), decoded without a size clamp and clipped to its ``extents``
        entry (H, W)."""
        logits, deltas, anchor_ids, labels = select_topk_all_levels(
            cls_scores, bbox_preds, self.cls_out_channels, nms_pre)
        return self.decode_candidates(cls_scores, logits, deltas, anchor_ids, labels, extents)

    def decode_candidates(self, cls_scores: List[torch.Tensor], logits, deltas, anchor_ids,
                          labels, extents: List[Tuple[float, float]]) -> List[tuple]:
        """``(boxes, scores, labels)`` of each image's chosen pairs: ``anchor_ids`` (counted as
        ``grid_priors`` counts them over the levels of ``cls_scores``), their ``deltas``
        decoded without a size clamp and clipped to the image's ``extents`` entry (H, W),
        their ``logits`` as scores. The ONNX graph's selection decodes through it too."""
        priors = torch.cat(self.prior_generator.grid_priors(
            [c.shape[-2:] for c in cls_scores], dtype=cls_scores[0].dtype,
            device=cls_scores[0].device))
        results = []
        for i, (height, width) in enumerate(extents):
            boxes = self.bbox_coder.decode(priors[anchor_ids[i]], deltas[i],
                                           wh_ratio_clip=NO_WH_CLAMP)
            # clipped here, not by the coder (whose ONNX path is broken in mmdet 3.3)
            boxes = torch.min(boxes.clamp(min=0), _limits(boxes, height, width))
            results.append((boxes, logits[i].sigmoid(), labels[i]))
        return results


def _limits(boxes: torch.Tensor, height, width) -> torch.Tensor:
    """(W, H, W, H) as a tensor like ``boxes``, from numbers or traced sizes."""
    if isinstance(height, torch.Tensor):
        return torch.stack([width, height, width, height]).to(boxes)
    return boxes.new_tensor([width, height] * 2)


def image_extent(img_meta: dict, rescale: bool) -> Tuple[float, float]:
    """(H, W) that boxes are clipped to, in input pixels. When they are mapped back to the
    original image, its own extent there, ``ori_shape · scale_factor`` (as the reference
    clips): ``img_shape`` up to the resize's rounding; else ``img_shape``."""
    if not rescale:
        return tuple(img_meta['img_shape'][:2])
    height, width = img_meta['ori_shape'][:2]
    scale_w, scale_h = img_meta['scale_factor'][:2]
    return height * scale_h, width * scale_w


def class_tables(cls_scores: List[torch.Tensor],
                 num_classes: int) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """Each level's class logits as a (B, H·W·A, C) table and each anchor's best logit
    (B, H·W·A): views of channels-last maps (and a transpose that onnxruntime folds into its
    own layout change); the levels are never concatenated."""
    batch = cls_scores[0].shape[0]
    tables = [c.permute(0, 2, 3, 1).reshape(batch, -1, num_classes) for c in cls_scores]
    return tables, [t.amax(2) for t in tables]


def delta_table(bbox_preds: List[torch.Tensor]) -> torch.Tensor:
    """The box deltas of all levels, (B, anchors, 4), anchors counted as ``grid_priors``."""
    batch = bbox_preds[0].shape[0]
    return torch.cat([b.permute(0, 2, 3, 1).reshape(batch, -1, 4) for b in bbox_preds], 1)


def select_topk_all_levels(cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor],
                           num_classes: int, k: int) -> Tuple[torch.Tensor, ...]:
    """The ``k`` best (anchor, class) pairs of each image by logit, over all levels together.

    Anchors are counted level by level, then y, x, anchor (the order of ``grid_priors``).
    Returns ``(logits, deltas, anchor_ids, labels)``, each of batch-first shape (B, k[, 4]).
    """
    tables, best = class_tables(cls_scores, num_classes)
    deltas = delta_table(bbox_preds)
    top_logits, anchor_ids, labels = (torch.stack(t) for t in zip(*[
        topk_pairs(tables, best, i, k) for i in range(cls_scores[0].shape[0])]))
    top_deltas = deltas.gather(1, anchor_ids.unsqueeze(2).expand(-1, -1, 4))
    return top_logits, top_deltas, anchor_ids, labels


def at_most(num, k: int):
    """``min(num, k)``, also for a size traced as a tensor (a dynamic-size export)."""
    return num.clamp(max=k) if isinstance(num, torch.Tensor) else min(num, k)


def pairs_at_least(tables: List[torch.Tensor], best: List[torch.Tensor], image: int,
                   bound) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits, anchor_ids, labels)`` of every pair of one ``image`` whose logit is at least
    ``bound``, in table order. Only the rows of the anchors whose ``best`` logit reaches it
    are read again (no copy of an image's whole table)."""
    num_classes = tables[0].shape[2]
    rows, anchors, offset = [], [], 0
    for table, level_best in zip(tables, best):
        size = table.shape[1]
        ids = (level_best[image] >= bound).nonzero().squeeze(1)
        rows.append(table.reshape(-1, num_classes)[ids + image * size])
        anchors.append(ids + offset)
        offset = offset + size
    flat, anchors = torch.cat(rows).reshape(-1), torch.cat(anchors)
    chosen = (flat >= bound).nonzero().squeeze(1)
    return (flat[chosen], anchors[torch.div(chosen, num_classes, rounding_mode='floor')],
            chosen % num_classes)


def topk_pairs(tables: List[torch.Tensor], best: List[torch.Tensor], image: int,
               k: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``k`` best (anchor, class) pairs of one ``image`` of (B, anchors, classes) tables
    taken as one (the levels), given each anchor's ``best`` logit (B, anchors):
    ``(logits, anchor_ids, labels)`` of a top-k over all its pairs, up to the order of equal
    logits, several times faster (also in onnxruntime).

    The k-th best anchor's best class is a lower bound of the k-th best pair (the k best
    anchors hold k pairs at least as high), so only the pairs above it, of the anchors
    whose best class is above it (about k of those anchors' k·C in a trained detector),
    are sorted.
    """
    every_best = torch.cat([b[image] for b in best])
    num_anchors = every_best.shape[0]
    kth = every_best.topk(at_most(num_anchors, k)).values[-1]
    logits, anchors, labels = pairs_at_least(tables, best, image,
                                             bound_or_everything(kth, num_anchors, k))
    values, order = logits.topk(at_most(logits.shape[0], k))
    return values, anchors[order], labels[order]


def bound_or_everything(kth: torch.Tensor, num, k: int, otherwise=float('-inf')):
    """``kth`` when ``num`` values held k or more, else ``otherwise`` (-inf: every pair); also
    for a size traced as a tensor (a dynamic-size export)."""
    if isinstance(num, torch.Tensor):
        return torch.where(num >= k, kth, torch.as_tensor(otherwise).to(kth))
    return kth if num >= k else otherwise


def best_after_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                   nms_cfg: dict, max_num: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The first ``max_num`` of mmcv's ``batched_nms``: ``(dets, keep)``.

    Hard NMS decides each box by the higher-scored ones alone, so it is run on the best
    candidates first (8·max_num, widened fourfold until max_num are kept or all were
    seen; never cutting through equal scores): the same result as NMS over all of them,
    several times faster for the reference's 5000 candidates."""
    if nms_cfg.get('type', 'nms') != 'nms':  # soft-NMS rescales later boxes by earlier ones
        dets, keep = batched_nms(boxes, scores, labels, nms_cfg)
        return dets[:max_num], keep[:max_num]
    order = scores.argsort(descending=True)
    boxes, scores, labels = boxes[order], scores[order], labels[order]
    seen = min(8 * max_num, len(scores))
    while True:
        seen = int((scores >= scores[seen - 1]).sum())  # ties stay together
        dets, keep = batched_nms(boxes[:seen], scores[:seen], labels[:seen], nms_cfg)
        if len(keep) >= max_num or seen == len(scores):
            return dets[:max_num], order[keep[:max_num]]
        seen = min(4 * seen, len(scores))
