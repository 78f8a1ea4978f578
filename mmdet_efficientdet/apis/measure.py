"""What the benchmark and the ablation tool measure of a detector, measured one way."""
import statistics
import time
from typing import Callable

import torch
from mmengine.analysis import FlopAnalyzer


def complexity(model: torch.nn.Module, inputs: torch.Tensor) -> dict:
    """``params``, ``flops`` (multiply-adds, mmengine's ``FlopAnalyzer`` on the detector's
    tensor mode) of the whole detector and of its neck alone (``neck_params``,
    ``neck_flops``), for ``inputs``."""
    model.eval()
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, inputs)
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        flops, neck_flops = analyzer.total(), analyzer.by_module()['neck']
    return dict(params=sum(p.numel() for p in model.parameters()), flops=flops,
                neck_params=sum(p.numel() for p in model.neck.parameters()),
                neck_flops=neck_flops)


def median_ms(call: Callable[[], object], repeats: int) -> float:
    """The median milliseconds of ``repeats`` calls of ``call``, after one warm-up call, with
    autograd off."""
    with torch.no_grad():
        call()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
