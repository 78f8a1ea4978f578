from typing import Iterable, Optional, Sequence

import numpy as np

from ...utils.misc import check_choice
from .base import RUNTIMES, Runtime

# OpenVINO's inference precision hint: what the CPU plugin computes f32 layers in
PRECISIONS = ('fp32', 'bf16')


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


@RUNTIMES.register_module(name='openvino')
class OpenVINORuntime(Runtime):
    """OpenVINO on the CPU (fp32, or the bf16 precision hint); int8 as an OpenVINO IR
    quantized by NNCF."""

    suffix = '.xml'
    precisions = PRECISIONS

    def open(self, path: str, num_threads: Optional[int], precision: str):
        compiled = openvino_compiled(path, num_threads, precision)
        request = compiled.create_infer_request()
        batch = compiled.inputs[0].get_partial_shape()[0]

        def run(inputs: np.ndarray):
            # the batch is read in place (no copy into the request's own tensor)
            request.infer({0: np.ascontiguousarray(inputs, dtype=np.float32)},
                          share_inputs=True)
            return [request.get_output_tensor(i).data.copy()
                    for i in range(len(compiled.outputs))]

        return run, batch.get_length() if batch.is_static else None

    def quantize(self, onnx_path: str, out_path: str, calibration: Iterable[np.ndarray],
                 fp32_layers: Sequence[str] = ()) -> None:
        quantize_openvino(onnx_path, out_path, calibration, fp32_layers)


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
