import contextlib
import gzip
import importlib.util
import json
import math
import os
import os.path as osp
import subprocess
import sys
import uuid

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmdet_efficientdet  # noqa: F401
from mmdet_efficientdet.apis.level_configs import level_model_cfg
from mmdet_efficientdet.apis.synthetic import make_synthetic_coco
from mmdet_efficientdet.models.dense_heads.efficientdet_head import HARD_NMS  # noqa: F401

from .fixtures.seeded import seeded_input, seeded_state_dict, spread_scores

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# effdet's outputs, made by tests/fixtures/make_effdet_fixtures.py
FIXTURES = osp.join(ROOT, 'tests', 'fixtures', 'effdet')
LEVELS = ('d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd7x')
LITE_LEVELS = ('lite0', 'lite1', 'lite2', 'lite3', 'lite3x', 'lite4')
DEMO_CONFIG = osp.join(ROOT, 'configs/efficientdet_lite/efficientdet_lite0_demo_synthetic.py')
PYTHON = sys.executable

register_all_modules(init_default_scope=True)

if os.environ.get('PYTEST_XDIST_WORKER'):
    # `make test` runs two worker processes on the 2 cores: a thread each, and for the tools
    # that tests start in processes of their own
    torch.set_num_threads(1)
    os.environ['OMP_NUM_THREADS'] = '1'


_FORMATTED = {}


@pytest.fixture(autouse=True)
def remembered_format_code(monkeypatch):
    """mmengine formats a config's text with yapf each time it logs, dumps or saves it into a
    checkpoint: seconds a time on these CPUs, most of a tiny training run. The same text gives
    the same result, so each test (in this process; tools run as processes of their own are
    left alone) remembers what earlier ones formatted; undone after each test."""
    import mmengine.config.config as mmengine_config
    format_code = mmengine_config.FormatCode

    def remembered(text, style_config=None, **kwargs):
        key = (text, repr(style_config), repr(sorted(kwargs.items())))
        if key not in _FORMATTED:
            _FORMATTED[key] = format_code(text, style_config=style_config, **kwargs)
        return _FORMATTED[key]

    monkeypatch.setattr(mmengine_config, 'FormatCode', remembered)


@contextlib.contextmanager
def checkpoint_io_restored():
    """mmengine's checkpoint loaders and file backends as they were before, afterwards: what
    a tool run in this process (``enable_tool_checkpoints``) turned on is undone."""
    from mmengine.fileio.backends import registry_utils
    from mmengine.runner.checkpoint import CheckpointLoader
    saved = (dict(CheckpointLoader._schemes), dict(registry_utils.backends),
             dict(registry_utils.prefix_to_backends))
    try:
        yield
    finally:
        CheckpointLoader._schemes = saved[0]
        for live, before in zip((registry_utils.backends, registry_utils.prefix_to_backends),
                                saved[1:]):
            live.clear()
            live.update(before)


@pytest.fixture
def tool_checkpoints():
    """What our tools turn on for their process (``enable_tool_checkpoints``), undone after
    the test."""
    from mmdet_efficientdet.apis.checkpoints import enable_tool_checkpoints
    with checkpoint_io_restored():
        enable_tool_checkpoints()
        yield


def needs_fixtures(*names):
    """Fail, saying what to run, when a committed fixture is missing."""
    missing = [n for n in names if not osp.exists(osp.join(FIXTURES, n))]
    if missing:
        raise FileNotFoundError(f'{FIXTURES} lacks {", ".join(missing)}: regenerate them with '
                                'tests/fixtures/make_effdet_fixtures.py (see its docstring)')


def load_schema(level):
    name = f'tf_efficientdet_{level}.schema.json.gz'
    needs_fixtures(name)
    with gzip.open(osp.join(FIXTURES, name)) as f:
        return json.load(f)


def _levels_out(flat, shapes, width):
    """effdet's per-level NCHW outputs from their flat (location, anchor) form."""
    outs, start = [], 0
    for h, w in shapes:
        count = h * w * 9
        outs.append(flat[start:start + count].reshape(1, h, w, 9 * width).permute(0, 3, 1, 2))
        start += count
    return outs


def load_fixture(level):
    """effdet's outputs for its network with seeded weights (tests/fixtures/seeded.py):
    ``config``, ``state_dict`` (effdet's naming, 90 classes), ``input``, ``cls_out`` and
    ``box_out`` (per level, NCHW), ``cls_logits_flat``, ``box_deltas_flat_tytxthtw``,
    ``anchors_yxyx``, ``decoded_boxes_xyxy``."""
    name = f'tf_efficientdet_{level}.outputs.pth'
    needs_fixtures(name)
    fixture = torch.load(osp.join(FIXTURES, name), weights_only=True)
    fixture['state_dict'] = seeded_state_dict(load_schema(level)['state_dict'])
    fixture['input'] = seeded_input((1, 3, *fixture['input_hw']), fixture['input_seed'])
    fixture['cls_out'] = _levels_out(fixture['cls_logits_flat'], fixture['level_shapes'], 90)
    fixture['box_out'] = _levels_out(fixture['box_deltas_flat_tytxthtw'],
                                     fixture['level_shapes'], 4)
    return fixture


def load_predict_fixture(level):
    """effdet's ``DetBenchPredict`` detections (``predict_detections``: x1, y1, x2, y2, score,
    COCO id) for its network with seeded weights whose scores are spread, with ``state_dict``,
    ``input``, ``config``, ``predict_orig_size_wh`` and ``predict_scale``."""
    name = f'tf_efficientdet_{level}.predict.pth'
    needs_fixtures(name)
    fixture = load_fixture(level)
    fixture.update(torch.load(osp.join(FIXTURES, name), weights_only=True))
    fixture['state_dict'] = spread_scores(fixture['state_dict'])
    return fixture


def effdet_checkpoint(folder, level, predict=False):
    """A file as effdet's train.py writes it (``state_dict`` in effdet's naming) with the
    fixture's weights."""
    state_dict = (load_predict_fixture if predict else load_fixture)(level)['state_dict']
    path = osp.join(str(folder), f'effdet_{level}{"_predict" if predict else ""}.pth')
    torch.save({'state_dict': state_dict}, path)
    return path


def schema_params(schema, prefix=''):
    """Parameter count of the keys under ``prefix`` (buffers excluded)."""
    return sum(
        math.prod(shape) for key, shape in schema['state_dict'].items()
        if key.startswith(prefix)
        and not key.endswith(('running_mean', 'running_var', 'num_batches_tracked')))


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def build(cfg):
    return MODELS.build(cfg)


def level_model(level, num_classes=80, nms=None, channels_last=None, with_cp=None,
                drop_path_rate=None):
    """The model dict of ``level``'s config (no ImageNet download), with what a test changes:
    the class count, ``nms`` (e.g. ``HARD_NMS`` for the reference port's selection), memory
    format, activation checkpointing, drop path."""
    cfg = level_model_cfg(level, num_classes)
    if nms is not None:
        cfg.test_cfg.nms = dict(nms)
    if channels_last is not None:
        cfg.channels_last = channels_last
    if with_cp is not None:
        for part in ('backbone', 'neck', 'bbox_head'):
            cfg[part].with_cp = with_cp
    if drop_path_rate is not None:
        cfg.backbone.drop_path_rate = drop_path_rate
    return cfg


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A tiny synthetic COCO set: 8 train, 4 val images."""
    root = str(tmp_path_factory.mktemp('data') / 'synthetic')
    make_synthetic_coco(root, seed=0, splits=dict(train=8, val=4))
    return root


def tiny_config(folder, data_root, *, max_epochs=2, image_size=128, batch_size=2,
                base=DEMO_CONFIG, **options):
    """The demo config (or ``base``) shrunk to a few iterations on ``data_root`` (of 8
    training images: an iteration-based base gets as many iterations), written to a file of
    its own (a unique name: mmengine names loggers and visualizers after the config and the
    second) in ``folder``; ``options`` are further ``merge_from_dict`` settings."""
    cfg = Config.fromfile(base)
    size = (image_size, image_size)
    for step in cfg.train_dataloader.dataset.pipeline:
        if step['type'] == 'RandomResize':
            step.update(scale=size, ratio_range=(0.8, 1.2))
        if step['type'] == 'RandomCrop':
            step.update(crop_size=size)
    for step in cfg.test_dataloader.dataset.pipeline + cfg.val_dataloader.dataset.pipeline:
        if step['type'] == 'EfficientDetResize':
            step.update(scale=size)
    for transform in cfg.tta_pipeline[1]['transforms'][0]:
        transform['scale'] = size
    cfg.image_size = image_size
    cfg.model.data_preprocessor.pad_size_divisor = image_size
    cfg.model.data_preprocessor.batch_augments = [dict(type='BatchFixedSizePad', size=size)]
    root = data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(num_workers=0, persistent_workers=False,
                           batch_size=batch_size if loader == 'train_dataloader' else 2)
        cfg[loader].dataset.data_root = root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = root + 'annotations/instances_val.json'
    # no evaluation while training (the loops evaluate at their end otherwise): the tests
    # that evaluate call tools/test.py
    if cfg.train_cfg.get('type') == 'IterBasedTrainLoop':
        cfg.train_cfg.update(max_iters=max_epochs * 8 // batch_size, val_begin=10**6)
    else:
        cfg.train_cfg.update(max_epochs=max_epochs, val_begin=10**6)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=10, save_best=None)
    cfg.log_processor.window_size = 1
    cfg.visualizer.name = f'visualizer_{uuid.uuid4().hex[:8]}'
    cfg.merge_from_dict(options)
    path = osp.join(str(folder), f'tiny_{uuid.uuid4().hex[:8]}.py')
    cfg.dump(path)
    return path


def load_tool(name):
    """``tools/<name>.py`` as a module, to call its ``main(argv)`` in this process."""
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call_tool(name, *argv):
    """``tools/<name>.py ARGV`` in this process, as its ``__main__`` runs it: the exit status
    (errors end as one line on stderr and status 1; ``sys.exit(message)`` prints the message
    to stderr, as Python does at exit). argparse's usage errors raise ``SystemExit(2)``."""
    from mmdet_efficientdet.apis.tool_errors import run_tool as run_main
    module = load_tool(name)
    try:
        with checkpoint_io_restored():
            run_main(lambda: module.main([str(a) for a in argv]), f'{name}.py')
    except SystemExit as exit:
        if exit.code == 2:
            raise
        if isinstance(exit.code, str):
            print(exit.code, file=sys.stderr)
            return 1
        return exit.code or 0
    return 0


def error_line(capsys):
    """The last line the tool wrote to stderr."""
    return capsys.readouterr().err.strip().splitlines()[-1]


def run_tool(args, timeout=300, env=None, check=True):
    """A tool in a process of its own (for what needs one: several processes, a kill)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    return proc


def train_losses(work_dir):
    """(iter, loss) of every logged training iteration, from mmengine's scalars.json."""
    out = []
    for root, _, files in os.walk(work_dir):
        for name in files:
            if name == 'scalars.json':
                with open(osp.join(root, name)) as f:
                    for line in f:
                        record = json.loads(line)
                        if 'loss' in record:
                            out.append((record['iter'], record['loss']))
    return sorted(out)
