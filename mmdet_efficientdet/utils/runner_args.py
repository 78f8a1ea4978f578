"""What tools/train.py and tools/test.py do with their arguments and config."""
import inspect
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
    DDP ``device_ids=None``. SyncBN (``cfg.sync_bn``) cannot run on CPU processes: BN is
    kept, with one line saying so.
    """
    if cfg.get('sync_bn'):
        if int(os.environ.get('RANK', 0)) == 0:
            print(f"sync_bn={cfg.sync_bn!r} asked for SyncBN, which needs GPUs; these processes "
                  'are CPU-only (gloo): training with BN, statistics per process', flush=True)
        cfg.sync_bn = None
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    default = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                   find_unused_parameters=False)
    wrapper = dict(cfg.get('model_wrapper_cfg') or default)
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))


def add_runner_args(parser) -> None:
    """The options tools/train.py and tools/test.py share (as MMDetection's tools)."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='the dir to save logs, models and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def apply_randomness_args(cfg: Config, seed: Optional[int], deterministic: bool) -> None:
    """``--seed`` / ``--deterministic``: set what was asked for, keep the config's other
    ``randomness`` settings (``--seed`` alone leaves ``randomness.deterministic`` as it is)."""
    if seed is None and not deterministic:
        return
    cfg.randomness = dict(cfg.get('randomness', {}))
    if seed is not None:
        cfg.randomness['seed'] = seed
    if deterministic:
        cfg.randomness['deterministic'] = True


# Top-level config keys something reads at run time: the Runner's arguments, and mmdet's.
_RUN_TIME_KEYS = ('tta_model', 'tta_pipeline', 'custom_imports', 'runner_type', 'sync_bn')


class ConfigOptionError(ValueError):
    """A ``--cfg-options`` entry that would silently change nothing."""


def refuse_parse_time_options(cfg: Config, options: dict, path: str) -> None:
    """Refuse ``--cfg-options`` of a top-level variable that only served to build other
    settings while the file was parsed (``image_size``, ``max_epochs``, ``data_root``, …):
    changing it afterwards has no effect."""
    from mmengine.runner import Runner
    run_time = set(inspect.signature(Runner.__init__).parameters) | set(_RUN_TIME_KEYS)
    for key, value in options.items():
        top = key.split('.')[0]
        if top in cfg and top not in run_time:
            raise ConfigOptionError(
                f'--cfg-options {key}={value}: {top!r} is a variable of {path} that was '
                'used while the file was parsed (to build the model, pipelines or schedule), '
                'so changing it now would change nothing. Set the settings built from it '
                f'(e.g. model..., train_dataloader.dataset.pipeline...), or change {top} in a '
                'copy of the config file')


def load_runner_config(args) -> Config:
    """Config of ``args.config`` with ``--cfg-options``, ``--launcher`` and ``--work-dir``
    (default ``work_dirs/<config name>``) applied; ready for CPU-only distributed runs."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        refuse_parse_time_options(cfg, args.cfg_options, args.config)
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = os.path.join('./work_dirs',
                                    os.path.splitext(os.path.basename(args.config))[0])
    if args.launcher != 'none' and not torch.cuda.is_available():
        prepare_cpu_distributed(cfg)
    return cfg
