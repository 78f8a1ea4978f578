"""Run-time helpers for tools/train.py and tools/test.py."""
import os
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config


def amp_unavailable_reason() -> Optional[str]:
    """Why mixed precision cannot run here (mmengine's AmpOptimWrapper needs CUDA/NPU/MLU),
    or None when it can."""
    if torch.cuda.is_available():
        return None
    from mmengine.device import is_mlu_available, is_npu_available
    if is_npu_available() or is_mlu_available():
        return None
    return ('automatic mixed precision needs a CUDA (or NPU/MLU) device and this machine has '
            'none (torch ' + torch.__version__ + ', CPU only)')


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let a torchrun-launched run work without CUDA: gloo process group and CPU DDP.

    mmengine's pytorch launcher calls ``torch.cuda.set_device`` and wraps the model with
    ``device_ids=[LOCAL_RANK]``; both need CUDA. Initialise the group here with gloo and give
    DDP ``device_ids=None``. (SyncBN falls back to BN in ``EfficientDetector``.)
    """
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel',
                                                         broadcast_buffers=False,
                                                         find_unused_parameters=False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))
