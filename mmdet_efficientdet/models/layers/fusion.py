from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...utils.misc import check_choice

FUSION_MODES = ('fast', 'softmax', 'sum')


class WeightedFusion(nn.Module):
    """Fuses same-shaped feature maps of one BiFPN node.

    Args:
        num_inputs (int): Number of inputs fused.
        mode (str): ``'fast'``: O = Σ w_i·I_i / (ε + Σ w_j) with w = ReLU(weights) (fast
            normalised fusion); ``'softmax'``: O = Σ softmax(weights)_i·I_i; ``'sum'``: plain
            sum, no weights (EfficientDet D6/D7/D7x). Default: ``'fast'``.
        eps (float): ε of the fast fusion. Default: 1e-4.
    """

    def __init__(self, num_inputs: int, mode: str = 'fast', eps: float = 1e-4) -> None:
        super().__init__()
        check_choice('fusion mode', mode, FUSION_MODES)
        self.mode = mode
        self.eps = eps
        if mode == 'sum':
            self.register_parameter('weights', None)
        else:
            self.weights = nn.Parameter(torch.ones(num_inputs))

    def normalized_weights(self) -> torch.Tensor:
        """The factors the inputs are multiplied with (non-negative, summing to ≤ 1)."""
        if self.mode == 'sum':
            raise ValueError("fusion mode 'sum' has no weights")
        if self.mode == 'softmax':
            return torch.softmax(self.weights, dim=0)
        weights = F.relu(self.weights)
        return weights / (weights.sum() + self.eps)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        if self.mode == 'sum':
            out = inputs[0]
            for x in inputs[1:]:
                out = out + x
            return out
        weights = self.normalized_weights().to(inputs[0].dtype)
        out = inputs[0] * weights[0]
        for weight, x in zip(weights[1:], inputs[1:]):
            out = out + x * weight
        return out

    def extra_repr(self) -> str:
        return f'mode={self.mode}, eps={self.eps}'
