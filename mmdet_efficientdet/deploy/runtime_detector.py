from typing import List, Optional

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures.bbox import scale_boxes
from mmengine.structures import InstanceData

from .runtimes import runtime_session


@MODELS.register_module()
class RuntimeDetector(BaseDetector):
    """An exported detector (``tools/export_onnx.py --detections``, ``tools/quantize.py``)
    run by onnxruntime or OpenVINO, as an mmdet detector: mmdet's data preprocessor, test
    loop, metrics, visualizer and inferencer work with it unchanged (test and inference
    only). The graph holds the selection (top-k, decode, clip, NMS); here the boxes are
    mapped back to the image and the config's ``score_thr`` applied.

    Args:
        model_file (str): The ``.onnx`` or OpenVINO ``.xml`` file (inputs: a preprocessed
            batch at the exported size; outputs: ``dets`` (N, K, 5), ``labels`` (N, K)).
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        data_preprocessor (dict): The config's (normalisation, padding).
        precision (str): OpenVINO's inference precision hint, ``'fp32'`` or ``'bf16'``.
        score_thr (float): Detections below it are dropped. Default: 0.
        num_threads (int, optional): CPU threads of the runtime.
    """

    def __init__(self, model_file: str, backend: str, data_preprocessor: dict,
                 precision: str = 'fp32', score_thr: float = 0.0,
                 num_threads: Optional[int] = None, init_cfg=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.run = runtime_session(model_file, backend, num_threads, precision)
        self.score_thr = score_thr

    def predict(self, batch_inputs: torch.Tensor, batch_data_samples: list,
                rescale: bool = True) -> list:
        for index, sample in enumerate(batch_data_samples):
            dets, labels = self.run(batch_inputs[index:index + 1].numpy())
            dets, labels = torch.from_numpy(dets[0]), torch.from_numpy(labels[0]).long()
            keep = (labels >= 0) & (dets[:, 4] > self.score_thr)
            result = InstanceData(bboxes=dets[keep, :4], scores=dets[keep, 4],
                                  labels=labels[keep])
            height, width = sample.img_shape[:2]
            if rescale:
                result.bboxes = scale_boxes(result.bboxes,
                                            [1 / s for s in sample.scale_factor])
                height, width = sample.ori_shape[:2]
            result.bboxes[:, 0::2] = result.bboxes[:, 0::2].clamp(0, width)
            result.bboxes[:, 1::2] = result.bboxes[:, 1::2].clamp(0, height)
            sample.pred_instances = result
        return batch_data_samples

    def _forward(self, batch_inputs: torch.Tensor, batch_data_samples=None) -> List:
        return [torch.from_numpy(o) for o in self.run(batch_inputs.numpy())]

    def loss(self, batch_inputs, batch_data_samples):
        raise NotImplementedError('a RuntimeDetector runs an exported model: it is not trained')

    def extract_feat(self, batch_inputs):
        raise NotImplementedError('a RuntimeDetector runs an exported model whole')


def runtime_model_cfg(model_cfg: dict, model_file: str, backend: str,
                      precision: str = 'fp32') -> dict:
    """The ``model`` of a config, replaced by its exported ``model_file`` run in
    ``backend``: the same data preprocessor and score threshold."""
    return dict(type='RuntimeDetector', model_file=model_file, backend=backend,
                precision=precision, data_preprocessor=model_cfg['data_preprocessor'],
                score_thr=(model_cfg.get('test_cfg') or {}).get('score_thr', 0.0))
