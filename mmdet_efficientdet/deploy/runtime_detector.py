from typing import List, Optional

import numpy as np
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.models.detectors import BaseDetector
from mmdet.models.utils import samplelist_boxtype2tensor
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
    mapped back to the image and the config's ``score_thr`` applied. Its test step computes
    what the config's ``DetDataPreprocessor`` would in numpy (:meth:`numpy_batch`).

    Args:
        model_file (str): The ``.onnx`` or OpenVINO ``.xml`` file (inputs: a preprocessed
            batch at the exported size; outputs: ``dets`` (N, K, 5), ``labels`` (N, K)).
        backend (str): A registered runtime (``deploy.runtime_names()``: onnxruntime,
            openvino).
        data_preprocessor (dict): The config's (normalisation, padding).
        precision (str): The runtime's precision hint (OpenVINO: ``'fp32'`` or ``'bf16'``).
        score_thr (float): Detections below it are dropped. Default: 0.
        num_threads (int, optional): CPU threads of the runtime.
    """

    def __init__(self, model_file: str, backend: str, data_preprocessor: dict,
                 precision: str = 'fp32', score_thr: float = 0.0,
                 num_threads: Optional[int] = None, init_cfg=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.run = runtime_session(model_file, backend, num_threads, precision)
        self.score_thr = score_thr

    def test_step(self, data: dict) -> list:
        """mmdet's test step, the batch preprocessed by :meth:`numpy_batch` where it can be.

        mmdet's data preprocessor runs in torch, whose OpenMP workers keep spinning for a
        while after each parallel operation: they take the cores from the runtime that runs
        next. numpy's preprocessing leaves none behind (figures: docs/en/results.md)."""
        batch = self.numpy_batch(data)
        if batch is None:
            return super().test_step(data)
        return self.predict(*batch)

    val_step = test_step

    def numpy_batch(self, data: dict) -> Optional[tuple]:
        """What the config's ``DetDataPreprocessor`` makes of ``data`` at test time (channel
        order, ``(x - mean) / std`` in float32, padding to ``pad_size_divisor`` with
        ``pad_value``, the samples' ``batch_input_shape`` and ``pad_shape``), computed in
        numpy: ``(batch_inputs, data_samples)``, or None for what it does not cover (another
        preprocessor, inputs that are not a list of uint8 ``(3, H, W)`` images)."""
        pre, images = self.data_preprocessor, data['inputs']
        if type(pre) is not DetDataPreprocessor or not isinstance(images, (list, tuple)) or \
                not all(isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and
                        image.dim() == 3 and image.shape[0] == 3 for image in images):
            return None
        padded = pre._get_pad_shape(data)
        height, width = (max(sizes) for sizes in zip(*padded))
        batch = np.full((len(images), 3, height, width), pre.pad_value, np.float32)
        for out, image in zip(batch, images):
            pixels = image.numpy()
            if pre._channel_conversion:
                pixels = pixels[::-1]
            out = out[:, :pixels.shape[1], :pixels.shape[2]]
            if pre._enable_normalize:
                np.subtract(pixels, pre.mean.numpy(), out=out)
                np.divide(out, pre.std.numpy(), out=out)
            else:
                out[...] = pixels
        samples = data.get('data_samples')
        if samples is not None:
            for sample, pad_shape in zip(samples, padded):
                sample.set_metainfo(dict(batch_input_shape=(height, width), pad_shape=pad_shape))
            if pre.boxtype2tensor:
                samplelist_boxtype2tensor(samples)
        return torch.from_numpy(batch), samples

    def predict(self, batch_inputs: torch.Tensor, batch_data_samples: list,
                rescale: bool = True) -> list:
        outputs = self.run_in_graph_batches(batch_inputs.numpy())
        for sample, (dets, labels) in zip(batch_data_samples, outputs):
            dets, labels = torch.from_numpy(dets), torch.from_numpy(labels).long()
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

    def run_in_graph_batches(self, batch: np.ndarray) -> list:
        """The graph's outputs for each image of ``batch``, run in batches of the size the
        graph was exported with (the last one padded with blank images)."""
        size = self.run.batch_size or len(batch)
        outputs = []
        for start in range(0, len(batch), size):
            chunk = batch[start:start + size]
            if len(chunk) < size:
                blanks = np.zeros((size - len(chunk), ) + chunk.shape[1:], chunk.dtype)
                chunk = np.concatenate([chunk, blanks])
            outputs += list(zip(*self.run(chunk)))[:len(batch) - start]
        return outputs

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
