import os
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.registry import Registry

from ...utils.misc import check_choice

# The CPU runtimes for exported models: one class each, in a file of its own in this folder,
# registered by name; the tools take their choices from here (--backend, --precision).
RUNTIMES = Registry('runtime')


class Runtime:
    """A runtime for exported models: how to open a session on a file and how to quantize an
    fp32 ONNX export to int8 for it. One calling convention: a float32 array (N, 3, H, W) in,
    the graph's outputs as arrays out.

    A new runtime is a subclass in a file of its own, registered:

    >>> @RUNTIMES.register_module(name='myruntime')
    ... class MyRuntime(Runtime):
    ...     suffix = '.onnx'
    ...     def open(self, path, num_threads, precision):
    ...         return run_function, batch_size_or_None
    """

    # what an int8 model of this runtime is written as (tools/quantize.py --out)
    suffix: str = '.onnx'
    # inference precision hints it takes (the first: its default)
    precisions: Tuple[str, ...] = ('fp32', )

    def open(self, path: str, num_threads: Optional[int],
             precision: str) -> Tuple[Callable[[np.ndarray], List[np.ndarray]], Optional[int]]:
        """``(run, batch_size)``: ``run(inputs) -> outputs`` of the model file at ``path``,
        and the batch size its graph takes (None: any)."""
        raise NotImplementedError

    def quantize(self, onnx_path: str, out_path: str, calibration: Iterable[np.ndarray],
                 fp32_layers: Sequence[str] = ()) -> None:
        """int8 post-training quantization of an fp32 ONNX export, calibrated on
        ``calibration`` (preprocessed input batches), the layers named by the patterns of
        ``fp32_layers`` kept in float; writes ``out_path``."""
        raise NotImplementedError(f'{type(self).__name__} does not quantize')


def runtime_names() -> Tuple[str, ...]:
    """The registered runtimes (``--backend`` choices)."""
    return tuple(sorted(RUNTIMES.module_dict))


def precision_names() -> Tuple[str, ...]:
    """Every precision hint a registered runtime takes (``--precision`` choices)."""
    names = []
    for runtime in RUNTIMES.module_dict.values():
        names += [p for p in runtime.precisions if p not in names]
    return tuple(names)


def get_runtime(backend: str) -> Runtime:
    check_choice('backend', backend, runtime_names())
    return RUNTIMES.get(backend)()


def runtime_session(path: str, backend: str, num_threads: Optional[int] = None,
                    precision: str = 'fp32') -> Callable[[np.ndarray], List[np.ndarray]]:
    """``run(inputs) -> outputs`` of the exported model at ``path`` in ``backend``;
    ``run.batch_size``: the batch size the graph takes (None: any)."""
    runtime = get_runtime(backend)
    if precision not in runtime.precisions:
        raise ValueError(f'precision {precision!r}: {backend} takes '
                         f'{", ".join(runtime.precisions)}')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such model file (tools/export_onnx.py or '
                                'tools/quantize.py writes one)')
    run, batch = runtime.open(path, num_threads, precision)
    run.batch_size = batch if isinstance(batch, int) else None
    return run
