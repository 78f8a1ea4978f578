"""ONNX export of an EfficientDetector: raw head outputs, or detections with the reference's
selection inside the graph (ONNX ``NonMaxSuppression``)."""
import warnings
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.ops import nms

from .graph_selection import graph_candidates
from .static_padding import fold_bn_and_fix_padding, make_padding_traceable

OUTPUT_NAMES_DETECTIONS = ('dets', 'labels')


class NonMaxSuppression(torch.autograd.Function):
    """Indices kept by NMS, best first: mmcv's op when run, ONNX's ``NonMaxSuppression`` when
    exported (mmcv 2.x exports no NMS of its own)."""

    @staticmethod
    def forward(ctx, boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                max_num: int) -> torch.Tensor:
        return nms(boxes, scores, iou_threshold)[1][:max_num]

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold: float, max_num: int):
        boxes = g.op('Unsqueeze', boxes, g.op('Constant', value_t=torch.tensor([0])))
        scores = g.op('Unsqueeze', scores, g.op('Constant', value_t=torch.tensor([0, 1])))
        selected = g.op('NonMaxSuppression', boxes, scores,
                        g.op('Constant', value_t=torch.tensor([max_num], dtype=torch.long)),
                        g.op('Constant', value_t=torch.tensor([iou_threshold])))
        return g.op('Gather', selected, g.op('Constant', value_t=torch.tensor(2)), axis_i=1)


class DetectorForExport(nn.Module):
    """A preprocessed batch (N, 3, H, W) → the head's raw outputs (class logits of each level,
    then box deltas of each level), or, with ``detections=True``, ``dets`` (N, K, 5: x1, y1,
    x2, y2, score) and ``labels`` (N, K; -1 where fewer than K = ``max_per_img`` were
    found), selected as ``model.predict`` does with ``test_cfg.topk='all_levels'`` and hard
    NMS, boxes clipped to the input.
    """

    def __init__(self, model: nn.Module, detections: bool = False) -> None:
        super().__init__()
        if not hasattr(model, 'bbox_head'):
            raise ValueError(f'ONNX export takes single-stage detectors (a bbox_head and its '
                             f'raw outputs); {type(model).__name__} has none')
        self.model = model
        self.detections = detections
        cfg = model.bbox_head.test_cfg
        if detections:
            if cfg.get('topk') != 'all_levels' or cfg['nms'].get('type', 'nms') != 'nms':
                raise ValueError('detections in the ONNX graph are the reference selection '
                                 "with hard NMS: test_cfg needs topk='all_levels' and "
                                 f"nms=dict(type='nms', ...), got {dict(cfg)}")
            self.nms_pre = cfg.get('nms_pre', 5000)
            self.iou_threshold = float(cfg['nms']['iou_threshold'])
            self.max_per_img = int(cfg.get('max_per_img', 100))

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        head = self.model.bbox_head
        cls_scores, bbox_preds = head(self.model.extract_feat(inputs))
        if not self.detections:
            return tuple(cls_scores) + tuple(bbox_preds)
        extent = tuple(inputs.shape[-2:])
        # a superset of the nms_pre best pairs, a few more than nms_pre (a top-k of 5000 took
        # more than the rest of the selection in the CPU runtimes): NMS over them, then what
        # ranks beyond the nms_pre best is dropped. NMS decides each box by the higher-scored
        # ones only, so the boxes kept among the nms_pre best are the reference's.
        candidates = graph_candidates(head, cls_scores, bbox_preds, self.nms_pre,
                                      [extent] * inputs.shape[0])
        dets, labels = [], []
        for boxes, scores, classes in candidates:
            # one NMS over all classes: boxes of different classes moved apart (mmcv's way)
            offsets = classes.to(boxes) * (boxes.max() + 1)
            keep = NonMaxSuppression.apply(boxes + offsets[:, None], scores, self.iou_threshold,
                                           self.max_per_img)
            keep = keep[scores[keep] >= _kth_best(scores, self.nms_pre)]
            found = torch.cat([boxes[keep], scores[keep, None]], 1)
            dets.append(torch.cat([found, found.new_zeros(self.max_per_img, 5)])
                        [:self.max_per_img])
            labels.append(torch.cat([classes[keep], classes.new_full((self.max_per_img, ), -1)])
                          [:self.max_per_img])
        return torch.stack(dets), torch.stack(labels)

    def output_names(self) -> Sequence[str]:
        if self.detections:
            return OUTPUT_NAMES_DETECTIONS
        levels = range(self.model.bbox_head.prior_generator.num_levels)
        return [f'cls_score_{i}' for i in levels] + [f'bbox_pred_{i}' for i in levels]


def _kth_best(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th best of ``scores`` (their lowest when there are k or fewer), as the
    (n - k + 1)-th lowest: a top-k of the few values of a superset beyond k."""
    num = scores.shape[0]
    fewest = (num - k + 1).clamp(min=1) if isinstance(num, torch.Tensor) else max(num - k + 1, 1)
    return scores.topk(fewest, largest=False).values.max()


@torch.no_grad()
def switch_to_deploy(model: nn.Module, input_size: Optional[Tuple[int, int]] = None) -> None:
    """The inference-only form of the same network (outputs equal up to float rounding), in
    place and irreversibly: every BN folded into the conv before it (an ``EfficientDetHead``'s
    per-level BNs first into one pointwise conv per level), and, for a fixed ``input_size``
    (H, W) of the batch, TF "same" padding made static (the model then takes only that size).
    Any mmdet detector (e.g. RetinaNet with our BiFPN) gets the general part.

    >>> switch_to_deploy(model, (512, 512))
    """
    model.eval()
    head = getattr(model, 'bbox_head', None)
    if hasattr(head, 'switch_to_deploy'):
        head.switch_to_deploy()  # its per-level BNs follow no conv of their own
    fold_bn_and_fix_padding(model, input_size)


@torch.no_grad()
def export_onnx(model: nn.Module, path: str, input_shape: Tuple[int, int], batch_size: int = 1,
                detections: bool = False, deploy: bool = True, dynamic: bool = False,
                opset_version: int = 17) -> DetectorForExport:
    """Write ``model`` (an ``EfficientDetector``) as ONNX for inputs of ``input_shape`` (H, W).

    ``deploy`` first switches the model to its deploy form (BN folded, and static padding for
    that size unless ``dynamic``). ``dynamic`` makes height and width free (and the batch
    size, for raw outputs; a graph with detections keeps ``batch_size``): "same" padding
    and anchors are then computed in the graph from the input's size. Returns the exported
    module (to compare with onnxruntime).
    """
    model.eval()
    if deploy:
        switch_to_deploy(model, None if dynamic else tuple(input_shape))
    if dynamic:
        make_padding_traceable(model)
    wrapper = DetectorForExport(model, detections).eval()
    # not zeros: every anchor of a blank input ties, and the traced run's NMS (mmcv's) would
    # take a superset of the candidates that holds all of them
    dummy = torch.randn(batch_size, 3, *input_shape, generator=torch.Generator().manual_seed(0))
    axes = {2: 'height', 3: 'width'} if detections else {0: 'batch', 2: 'height', 3: 'width'}
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=DeprecationWarning)  # legacy exporter
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        # a strided slice is left to the runtime (the graph is the same either way)
        warnings.filterwarnings('ignore', message='Constant folding - Only steps=1')
        torch.onnx.export(wrapper, (dummy, ), path, dynamo=False, opset_version=opset_version,
                          input_names=['inputs'], output_names=list(wrapper.output_names()),
                          dynamic_axes={'inputs': axes} if dynamic else None)
    return wrapper


def same_detections(dets_a: torch.Tensor, labels_a: torch.Tensor, dets_b: torch.Tensor,
                    labels_b: torch.Tensor, iou: float = 0.999,
                    score_tol: float = 1e-5) -> Tuple[int, int]:
    """How many detections of one image (``dets`` (K, 5), ``labels`` (K, ), label -1 = none)
    have a twin in the other set (same label, IoU > ``iou``, score within ``score_tol``):
    ``(matched in a, matched in b)``; two equal sets give ``(len(a), len(b))``. Order-free:
    near-equal scores may be ranked differently by different runtimes."""
    from mmdet.structures.bbox import bbox_overlaps
    dets_a, dets_b = dets_a[labels_a >= 0], dets_b[labels_b >= 0]
    labels_a, labels_b = labels_a[labels_a >= 0], labels_b[labels_b >= 0]
    same = ((bbox_overlaps(dets_a[:, :4], dets_b[:, :4]) > iou)
            & (labels_a[:, None] == labels_b[None])
            & ((dets_a[:, None, 4] - dets_b[None, :, 4]).abs() < score_tol))
    return int(same.any(1).sum()), int(same.any(0).sum())
