"""What tools/train.py and tools/test.py do with their arguments and config."""
import os
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config

from ..engine.config_checks import check_image_size


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


def cfg_options_action():
    """mmengine's ``DictAction`` for ``--cfg-options``, whose parser recurses without end on
    a ``dict(...)`` value (e.g. a BiFPN topology list): that is one clear argparse error."""
    from mmengine.config import DictAction

    class CfgOptionsAction(DictAction):

        def __call__(self, parser, namespace, values, option_string=None):
            try:
                super().__call__(parser, namespace, values, option_string)
            except (RecursionError, AssertionError):
                bad = next((v for v in values if 'dict(' in v or '{' in v), ' '.join(values))
                parser.error(f'{option_string} {bad}: --cfg-options takes numbers, strings, '
                             'lists and tuples, not dict(...) values; set this one in a config '
                             'file that inherits yours (_base_) and overrides it')

    return CfgOptionsAction


def add_runner_args(parser) -> None:
    """The options tools/train.py and tools/test.py share (as MMDetection's tools)."""
    parser.add_argument('--work-dir', help='the dir to save logs, models and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=cfg_options_action(),
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


# config keys that are sizes: a zero or negative one fails late (a bare assertion in mmdet's
# RandomCrop when the first batch is made), so the tools refuse it at once
_SIZE_KEYS = ('scale', 'crop_size', 'size', 'img_scale', 'pad_size_divisor')


def check_sizes(cfg: Config) -> None:
    """Raise a ValueError naming the first image size of ``cfg`` (pipelines, TTA, the data
    preprocessor) that is not positive."""

    def walk(value, where):
        if isinstance(value, dict):
            for key, item in value.items():
                if key in _SIZE_KEYS:
                    numbers = item if isinstance(item, (list, tuple)) else [item]
                    if any(isinstance(n, (int, float)) and not isinstance(n, bool) and n <= 0
                           for n in numbers):
                        kind = f' ({value["type"]})' if 'type' in value else ''
                        raise ValueError(f'{where}{kind}: {key}={item!r}; sizes must be '
                                         'positive')
                walk(item, f'{where}.{key}')
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f'{where}[{i}]')

    for key in ('model', 'train_dataloader', 'val_dataloader', 'test_dataloader',
                'tta_pipeline', 'train_pipeline', 'test_pipeline'):
        if key in cfg:
            walk(cfg[key], key)


def check_option_keys(cfg: Config, options: dict) -> None:
    """Refuse a ``--cfg-options`` key whose top level the config lacks but nearly has
    (``trian_cfg.max_epochs``): mmengine would add it and train as if it were not there.
    A new key unlike any of the config's (a variable of the user's) stays allowed."""
    import difflib
    for key in options:
        top = key.split('.')[0]
        if top in cfg:
            continue
        close = difflib.get_close_matches(top, list(cfg.keys()), n=1, cutoff=0.8)
        if close:
            raise ValueError(f'--cfg-options {key}: unknown key {top} (did you mean '
                             f'{close[0]}?); the config has no {top}, so it would change '
                             'nothing')


def load_runner_config(args) -> Config:
    """Config of ``args.config`` with ``--cfg-options``, ``--launcher`` and ``--work-dir``
    (default ``work_dirs/<config name>``) applied; ready for CPU-only distributed runs."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        check_option_keys(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = os.path.join('./work_dirs',
                                    os.path.splitext(os.path.basename(args.config))[0])
    check_sizes(cfg)
    check_image_size(cfg)
    if args.launcher != 'none' and not torch.cuda.is_available():
        prepare_cpu_distributed(cfg)
    return cfg
