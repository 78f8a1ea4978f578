"""CPU runtimes for exported models: onnxruntime and OpenVINO (fp32, bf16, int8), one calling
convention (a float32 array (N, 3, H, W) in, the graph's outputs as arrays out), and int8
post-training quantization with NNCF."""
import os
from typing import Callable, Iterable, List, Optional, Sequence

import numpy as np

from ..utils.misc import check_choice

BACKENDS = ('onnxruntime', 'openvino')
# OpenVINO's inference precision hint: what the CPU plugin computes f32 layers in
PRECISIONS = ('fp32', 'bf16')


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


def openvino_compiled(path: str, num_threads: Optional[int] = None,
                      precision: str = 'fp32'):
    """An OpenVINO CPU model compiled for latency (one stream) from an ``.onnx`` file or an
    OpenVINO IR ``.xml`` (e.g. an int8 model of :func:`quantize_openvino`)."""
    import openvino as ov
    check_choice('OpenVINO precision', precision, PRECISIONS)
    config = {'PERFORMANCE_HINT': 'LATENCY', 'NUM_STREAMS': '1',
              'INFERENCE_PRECISION_HINT': 'bf16' if precision == 'bf16' else 'f32'}
    if num_threads:
        config['INFERENCE_NUM_THREADS'] = str(num_threads)
    return ov.Core().compile_model(path, 'CPU', config)


def runtime_session(path: str, backend: str, num_threads: Optional[int] = None,
                    precision: str = 'fp32') -> Callable[[np.ndarray], List[np.ndarray]]:
    """``run(inputs) -> outputs`` of the exported model at ``path`` in ``backend``;
    ``run.batch_size``: the batch size the graph takes (None: any)."""
    check_choice('backend', backend, BACKENDS)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such model file (tools/export_onnx.py or '
                                'tools/quantize.py writes one)')
    if backend == 'onnxruntime':
        if precision != 'fp32':
            raise ValueError(f'precision {precision!r} is an OpenVINO hint; onnxruntime runs '
                             'the file as it is')
        session = onnx_session(path, num_threads)
        name = session.get_inputs()[0].name
        batch = session.get_inputs()[0].shape[0]

        def run(inputs: np.ndarray) -> List[np.ndarray]:
            return session.run(None, {name: np.ascontiguousarray(inputs)})
    else:
        compiled = openvino_compiled(path, num_threads, precision)
        request = compiled.create_infer_request()
        batch = compiled.inputs[0].get_partial_shape()[0]
        batch = batch.get_length() if batch.is_static else None

        def run(inputs: np.ndarray) -> List[np.ndarray]:
            # the batch is read in place (no copy into the request's own tensor)
            request.infer({0: np.ascontiguousarray(inputs, dtype=np.float32)},
                          share_inputs=True)
            return [request.get_output_tensor(i).data.copy()
                    for i in range(len(compiled.outputs))]

    run.batch_size = batch if isinstance(batch, int) else None
    return run


def quantize_openvino(onnx_path: str, out_path: str, calibration: Iterable[np.ndarray],
                      fp32_layers: Sequence[str] = ()) -> None:
    """int8 post-training quantization of an exported ONNX model with NNCF for OpenVINO:
    per-channel symmetric weights, per-tensor activations calibrated on ``calibration``
    (preprocessed input batches), the layers named by the patterns of ``fp32_layers`` kept
    in float. Writes an OpenVINO IR (``out_path`` ``.xml`` and its ``.bin``).

    The ONNX file is converted with ``ov.convert_model`` (not read as it is): its fusions
    turn ``x * sigmoid(x)`` into one Swish, which the CPU plugin fuses into the int8
    convolutions; read as it is, NNCF quantizes the multiply and int8 runs slower than
    fp32."""
    import nncf
    import openvino as ov
    batches = list(calibration)
    if not batches:
        raise ValueError('int8 calibration needs at least one image (none given)')
    model = ov.convert_model(onnx_path)
    ignored = nncf.IgnoredScope(patterns=list(fp32_layers), validate=False) \
        if fp32_layers else None
    quantized = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches),
                              preset=nncf.QuantizationPreset.PERFORMANCE,
                              ignored_scope=ignored)
    ov.save_model(quantized, out_path)


def quantize_onnxruntime(onnx_path: str, out_path: str, calibration: Iterable[np.ndarray],
                         fp32_layers: Sequence[str] = ()) -> None:
    """The same with onnxruntime's tools: static QDQ int8, per-channel weights, activations
    calibrated (min-max) on ``calibration``; nodes whose names contain one of ``fp32_layers``
    kept in float. Writes an ONNX file."""
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
