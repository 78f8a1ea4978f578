"""Deployment: ONNX export (see also ``EfficientDetector.switch_to_deploy``)."""
from .onnx_export import (DetectorForExport, NonMaxSuppression, export_onnx, onnx_session,
                          same_detections)

__all__ = [
    'DetectorForExport', 'NonMaxSuppression', 'export_onnx', 'onnx_session', 'same_detections'
]
