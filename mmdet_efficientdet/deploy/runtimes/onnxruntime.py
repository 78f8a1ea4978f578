from typing import Iterable, Optional, Sequence

import numpy as np

from .base import RUNTIMES, Runtime


def onnx_session(path: str, num_threads: Optional[int] = None):
    """An onnxruntime CPU session for ``path``.

    Its threads busy-wait for work during a run (onnxruntime's default) and stop at its end
    (``session.force_spinning_stop``): left spinning, they take the CPU from whatever runs
    next (preprocessing, another session); not spinning at all makes onnxruntime's own runs
    slower (figures: docs/en/results.md).
    """
    import onnxruntime
    options = onnxruntime.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
    options.add_session_config_entry('session.intra_op.allow_spinning', '1')
    options.add_session_config_entry('session.force_spinning_stop', '1')
    return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])


@RUNTIMES.register_module(name='onnxruntime')
class OnnxRuntime(Runtime):
    """onnxruntime on the CPU; int8 as static QDQ ONNX (onnxruntime's quantization tools)."""

    suffix = '.onnx'

    def open(self, path: str, num_threads: Optional[int], precision: str):
        session = onnx_session(path, num_threads)
        name = session.get_inputs()[0].name

        def run(inputs: np.ndarray):
            return session.run(None, {name: np.ascontiguousarray(inputs)})

        return run, session.get_inputs()[0].shape[0]

    def quantize(self, onnx_path: str, out_path: str, calibration: Iterable[np.ndarray],
                 fp32_layers: Sequence[str] = ()) -> None:
        quantize_onnxruntime(onnx_path, out_path, calibration, fp32_layers)


def quantize_onnxruntime(onnx_path: str, out_path: str, calibration: Iterable[np.ndarray],
                         fp32_layers: Sequence[str] = ()) -> None:
    """int8 post-training quantization with onnxruntime's tools: static QDQ int8,
    per-channel weights, activations calibrated (min-max) on ``calibration``; nodes whose
    names contain one of ``fp32_layers`` kept in float. Writes an ONNX file."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    batches = list(calibration)
    if not batches:
        raise ValueError('int8 calibration needs at least one image (none given)')
    graph = onnx.load(onnx_path).graph
    name = graph.input[0].name
    excluded = [node.name for node in graph.node
                if any(pattern in node.name for pattern in fp32_layers)]

    class Reader(CalibrationDataReader):

        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    quantize_static(onnx_path, out_path, Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8, op_types_to_quantize=['Conv'],
                    nodes_to_exclude=excluded)
