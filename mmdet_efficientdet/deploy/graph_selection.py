"""The reference's selection as the ONNX graph runs it: the same detections as
``EfficientDetHead.predict`` (effdet's ``DetBenchPredict``), found without a top-k of
``nms_pre`` (5000) values, which the CPU runtimes take longer for than for the rest of the
selection: NMS runs over a superset of the ``nms_pre`` best pairs, and what ranks beyond them
is dropped afterwards (``onnx_export.DetectorForExport``)."""
from typing import List, Tuple

import torch

from ..models.dense_heads.efficientdet_head import (at_most, bound_or_everything, class_tables,
                                                    delta_table, pairs_at_least)


def graph_candidates(head, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor],
                     nms_pre: int, extents: List[Tuple]) -> List[tuple]:
    """``(boxes, scores, labels)`` of each image: every pair whose logit reaches a lower
    bound of the ``nms_pre``-th best (:func:`pairs_above_bound`), in no order, decoded and
    clipped as ``head.decode_candidates`` does. NMS over them that keeps only what ranks
    among the ``nms_pre`` best is the reference's."""
    tables, best = class_tables(cls_scores, head.cls_out_channels)
    all_deltas = delta_table(bbox_preds)
    logits, anchor_ids, labels = zip(*[
        pairs_above_bound(tables, best, i, nms_pre, head.num_base_priors)
        for i in range(len(extents))])
    deltas = [all_deltas[i, ids] for i, ids in enumerate(anchor_ids)]
    return head.decode_candidates(cls_scores, logits, deltas, anchor_ids, labels, extents)


def pairs_above_bound(tables: List[torch.Tensor], best: List[torch.Tensor], image: int, k: int,
                      group: int, bins: Tuple[int, ...] = (32, 32)
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A superset of the ``k`` best pairs of one ``image`` (as :func:`topk_pairs` takes them),
    in no order and without a top-k of k values: ``(logits, anchor_ids, labels)`` of every
    pair at or above a lower bound of the k-th best logit, a little more than k of them.

    A first bound: each level's anchors in runs of ``group`` (a level holds H·W·A anchors:
    with ``group`` = A, the anchors of one position) and each run's lowest ``best`` logit;
    the ⌈k / group⌉-th highest of these has ⌈k / group⌉ whole runs, so at least k anchors
    and k pairs, at or above it (a top-k of ⌈k / group⌉ values, far cheaper in the CPU
    runtimes than one of k). :func:`_raise_bound` raises it by counting anchors, the
    pairs of the anchors that reach it are read, and it is raised again by counting them.
    """
    every_best = torch.cat([b[image] for b in best])
    minima = torch.cat([b[image].reshape(-1, group).amin(1) for b in best])
    need = -(-k // group)
    num_runs = minima.shape[0]
    low = _raise_bound(every_best, minima.topk(at_most(num_runs, need)).values[-1], k, bins)
    logits, anchors, labels = pairs_at_least(tables, best, image,
                                             bound_or_everything(low, num_runs, need))
    # fewer anchors than k (a small input): every pair was read, and the lowest of them is
    # the bound to raise (NMS over all of a small input's pairs is slow)
    low = bound_or_everything(low, num_runs, need, otherwise=logits.min())
    bound = bound_or_everything(_raise_bound(logits, low, k, bins), logits.shape[0], k)
    keep = (logits >= bound).nonzero().squeeze(1)
    return logits[keep], anchors[keep], labels[keep]


def _raise_bound(values: torch.Tensor, low: torch.Tensor, k: int,
                 bins: Tuple[int, ...]) -> torch.Tensor:
    """A tighter lower bound of the k-th best of ``values`` than ``low`` (which k of them
    reach): of ``bins[0]`` thresholds evenly from ``low`` to their maximum, the highest
    that k values still reach; then the same within the bin above it, and so on."""
    width = values.max() - low
    for num in bins:
        width = width / num
        thresholds = low + width * torch.arange(num, dtype=low.dtype, device=low.device)
        # how many reach each threshold, counted as floats: onnxruntime's bool → int64 cast
        # and a Where of ones and zeros are several times slower than a bool → float cast
        reached = (values[None] >= thresholds[:, None]).float().sum(1)
        low = thresholds[(reached >= k).sum() - 1]  # the first, ``low``, always counts k
    return low
