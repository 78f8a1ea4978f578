"""Helpers for the end-to-end tests: a tiny dataset and a tiny D0 config over it."""
import json
import os
import os.path as osp
import subprocess
import sys

from .conftest import ROOT

PYTHON = sys.executable


def write_tiny_config(path, data_root, *, max_epochs=2, sync_bn=False, image_size=128,
                      batch_size=2):
    """A config inheriting the demo one, shrunk to a few iterations on ``data_root``."""
    with open(path, 'w') as f:
        f.write(f'''
_base_ = [{osp.join(ROOT, 'configs/efficientdet/efficientdet_d0_demo_synthetic.py')!r}]
from mmdet_efficientdet.model_cfg import efficientdet_model, efficientdet_pipelines  # noqa
model = efficientdet_model('d0', num_classes=4, drop_path_rate=0.0,
                           input_size={image_size})
model['bbox_head']['anchor_generator']['anchor_scale'] = 2.0
train_pipeline, test_pipeline = efficientdet_pipelines({image_size}, scale_range=(0.8, 1.2))
data_root = {data_root + '/'!r}
train_dataloader = dict(batch_size={batch_size}, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={max_epochs}, val_interval=100)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=10, save_best=None))
log_processor = dict(window_size=1)
''' + ("sync_bn = 'torch'\n" if sync_bn else ''))
    return str(path)


def run_tool(args, timeout=300, env=None, check=True):
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
