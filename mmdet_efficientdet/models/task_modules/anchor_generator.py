from typing import List, Sequence, Tuple

import torch
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import TASK_UTILS


@TASK_UTILS.register_module()
class EfficientDetAnchorGenerator(AnchorGenerator):
    """Anchors exactly as TF EfficientDet / effdet make them.

    Per location, ``num_scales`` octave scales × the ``aspect_ratios``, in that order (octave
    major). Each aspect is an (x, y) multiplier of the base size
    ``anchor_scale · stride · 2^(octave / num_scales)``, so (1.4, 0.7) is really 1.4 × 0.7 — not
    the √2 that mmdet's ratio-based generator would give. Centres sit at half-stride offsets.
    As google/automl ``efficientdet/anchors.py`` (``_generate_anchor_configs``,
    ``_generate_anchor_boxes``) and effdet ``effdet/anchors.py`` (``Anchors``) make them
    (Apache-2.0).

    Args:
        strides (Sequence[int]): Stride of each level.
        anchor_scale (float): Base anchor size in strides. Default: 4.0 (D7: 5.0).
        num_scales (int): Octave scales per location. Default: 3.
        aspect_ratios (Sequence[tuple]): (x, y) multipliers.
            Default: ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4)).
        center_offset (float): Centre offset in strides. Default: 0.5.
    """

    def __init__(self,
                 strides: Sequence[int],
                 anchor_scale: float = 4.0,
                 num_scales: int = 3,
                 aspect_ratios: Sequence[Tuple[float, float]] = ((1.0, 1.0), (1.4, 0.7),
                                                                 (0.7, 1.4)),
                 center_offset: float = 0.5) -> None:
        self.anchor_scale = anchor_scale
        self.num_scales = num_scales
        self.aspect_ratios = [tuple(map(float, a)) for a in aspect_ratios]
        if any(len(a) != 2 for a in self.aspect_ratios):
            raise ValueError(f'aspect_ratios must be (x, y) pairs, got {aspect_ratios}')
        super().__init__(strides=strides, ratios=[1.0], scales=[1.0],
                         center_offset=center_offset)

    def gen_base_anchors(self) -> List[torch.Tensor]:
        anchors = []
        for stride_w, stride_h in self.strides:
            cx, cy = stride_w * self.center_offset, stride_h * self.center_offset
            rows = []
            for octave in range(self.num_scales):
                factor = self.anchor_scale * 2**(octave / self.num_scales)
                for ax, ay in self.aspect_ratios:
                    half_w, half_h = factor * stride_w * ax / 2, factor * stride_h * ay / 2
                    rows.append([cx - half_w, cy - half_h, cx + half_w, cy + half_h])
            anchors.append(torch.tensor(rows, dtype=torch.float64).float())
        return anchors

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strides={self.strides}, anchor_scale='
                f'{self.anchor_scale}, num_scales={self.num_scales}, aspect_ratios='
                f'{self.aspect_ratios}, center_offset={self.center_offset})')
