"""The ``>>>`` examples of the components' docstrings run as written."""
import doctest
import importlib

import pytest

MODULES = ('mmdet_efficientdet.models.backbones.tf_efficientnet',
           'mmdet_efficientdet.models.necks.bifpn',
           'mmdet_efficientdet.models.dense_heads.efficientdet_head',
           'mmdet_efficientdet.converters.checkpoint_io',
           'mmdet_efficientdet.apis.model_index')


@pytest.mark.parametrize('name', MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
