"""CPU runtimes for exported models, one file each, registered in ``RUNTIMES``: a new one is a
new file here (and its line below)."""
from .base import (RUNTIMES, Runtime, get_runtime, precision_names, runtime_names,
                   runtime_session)
from .onnxruntime import OnnxRuntime, onnx_session, quantize_onnxruntime
from .openvino import OpenVINORuntime, openvino_compiled, quantize_openvino

__all__ = [
    'RUNTIMES', 'Runtime', 'get_runtime', 'precision_names', 'runtime_names', 'runtime_session',
    'OnnxRuntime', 'onnx_session', 'quantize_onnxruntime', 'OpenVINORuntime',
    'openvino_compiled', 'quantize_openvino'
]
