import gzip
import json
import math
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

import mmdet_efficientdet  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(osp.dirname(ROOT), 'shared', 'fixtures', 'effdet')
LEVELS = ('d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd7x')
LITE_LEVELS = ('lite0', 'lite1', 'lite2', 'lite3', 'lite3x', 'lite4')

register_all_modules(init_default_scope=True)


def needs_fixtures(*names):
    """Skip, saying why, when ../shared/fixtures/effdet (or a file in it) is absent."""
    if not osp.isdir(FIXTURES):
        pytest.skip(f'effdet reference data not found: no folder {FIXTURES} (it comes with '
                    '../shared beside the checkout)')
    missing = [n for n in names if not osp.exists(osp.join(FIXTURES, n))]
    if missing:
        pytest.skip(f'effdet reference data incomplete: {FIXTURES} lacks {", ".join(missing)}')


def load_schema(level):
    name = f'tf_efficientdet_{level}.schema.json.gz'
    needs_fixtures(name)
    with gzip.open(osp.join(FIXTURES, name)) as f:
        return json.load(f)


def load_fixture(level):
    name = f'tf_efficientdet_{level}.pth'
    needs_fixtures(name)
    return torch.load(osp.join(FIXTURES, name), weights_only=True)


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
