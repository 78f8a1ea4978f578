"""Deployment: the deploy form (BN folded, static padding), ONNX export, CPU runtimes
(onnxruntime, OpenVINO fp32/bf16/int8) and the exported model as an mmdet detector."""
from .onnx_export import (DetectorForExport, NonMaxSuppression, export_onnx, same_detections,
                          switch_to_deploy)
from .runtime_detector import RuntimeDetector, runtime_model_cfg
from .runtimes import (RUNTIMES, Runtime, get_runtime, onnx_session, openvino_compiled,
                       precision_names, quantize_onnxruntime, quantize_openvino, runtime_names,
                       runtime_session)
from .static_padding import (Conv2dSameTraced, fold_bn_and_fix_padding, make_padding_static,
                             make_padding_traceable)

__all__ = [
    'DetectorForExport', 'NonMaxSuppression', 'export_onnx', 'same_detections', 'switch_to_deploy',
    'RuntimeDetector', 'runtime_model_cfg', 'RUNTIMES', 'Runtime', 'get_runtime',
    'onnx_session', 'openvino_compiled', 'precision_names', 'quantize_onnxruntime',
    'quantize_openvino', 'runtime_names', 'runtime_session', 'Conv2dSameTraced',
    'fold_bn_and_fix_padding',
    'make_padding_static', 'make_padding_traceable'
]
