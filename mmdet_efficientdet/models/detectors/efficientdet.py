from typing import Optional, Tuple

import torch
import torch.distributed as dist
from mmcv.cnn import fuse_conv_bn
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm

from ..layers.static_padding import make_padding_static


def sync_bn_possible() -> bool:
    """SyncBN needs a distributed run of several processes on GPUs."""
    return (torch.cuda.is_available() and dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)


def has_sync_bn(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.SyncBatchNorm) or type(m).__name__ == 'SyncBatchNorm'
               for m in module.modules())


@MODELS.register_module()
class EfficientDetector(SingleStageDetector):
    """EfficientDet: ``TFEfficientNet`` + ``BiFPNNeck`` + ``EfficientDetHead``.

    A plain mmdet single-stage detector, except that SyncBN layers (the paper's recipe) are
    turned into BN, with a log line saying so, when the run cannot synchronise them (CPU,
    a single process, or a gloo run on CPUs), instead of crashing.

    Args:
        channels_last (bool): Keep weights and activations in channels-last memory format,
            which makes the depthwise convs much faster on CPUs (1.3x per training step for
            the demo) and suits tensor cores. Same results up to float rounding.
            Default: False.
        *args, **kwargs: ``SingleStageDetector`` arguments (backbone, neck, bbox_head, ...).
    """

    def __init__(self, *args, channels_last: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        if has_sync_bn(self) and not sync_bn_possible():
            revert_sync_batchnorm(self)  # replaces the SyncBN children in place
            MMLogger.get_current_instance().info(
                'EfficientDetector: SyncBN needs a distributed run on GPUs; this run has '
                f'cuda={torch.cuda.is_available()}, distributed='
                f'{dist.is_available() and dist.is_initialized()}: using BN instead.')

    def extract_feat(self, batch_inputs: torch.Tensor):
        if self.channels_last:
            batch_inputs = batch_inputs.contiguous(memory_format=torch.channels_last)
        return super().extract_feat(batch_inputs)

    @torch.no_grad()
    def switch_to_deploy(self, input_size: Optional[Tuple[int, int]] = None) -> None:
        """Inference-only form of the same network (outputs equal up to float rounding):
        every BN folded into the conv before it (the head's per-level BNs into one pointwise
        conv per level), and, for a fixed ``input_size`` (H, W) of the batch, TF "same"
        padding made static. Then the model takes only that input size. Irreversible.
        """
        self.eval()
        revert_sync_batchnorm(self)
        fuse_conv_bn(self.backbone)
        fuse_conv_bn(self.neck)
        self.bbox_head.switch_to_deploy()
        if input_size is not None:
            param = next(self.parameters())
            dummy = param.new_zeros((1, 3, *input_size))
            make_padding_static(self, lambda: self.bbox_head(self.extract_feat(dummy)))
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        self.deploy = True
