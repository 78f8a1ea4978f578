"""Packaging: install_requires are compatible ranges (the exact pins stay in requirements.txt),
and the metafiles describe every config."""
import configparser
import glob
import os
import os.path as osp
from importlib.metadata import version

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from .conftest import ROOT, build


def _install_requires():
    parser = configparser.ConfigParser()
    parser.read(osp.join(ROOT, 'setup.cfg'))
    return [Requirement(line) for line in parser['options']['install_requires'].splitlines()
            if line.strip()]


def _next_patch(text):
    v = Version(text.split('+')[0])
    return f'{v.major}.{v.minor}.{v.micro + 1}'


@pytest.mark.parametrize('name', ['torch', 'mmengine', 'mmcv', 'mmdet'])
def test_install_requires_accept_other_patch_versions(name):
    """pip leaves a package alone when the installed version satisfies the specifier: the
    pinned one and its next patch release must both do (no reinstall over a compatible
    torch/mmdet), and no specifier may be an exact pin."""
    requirement = next(r for r in _install_requires() if r.name == name)
    assert not any(spec.operator in ('==', '===') for spec in requirement.specifier)
    installed = version(name).split('+')[0]
    assert requirement.specifier.contains(installed)
    assert requirement.specifier.contains(_next_patch(installed))
    pins = {Requirement(line.split('#')[0]).name: line for line in
            open(osp.join(ROOT, 'requirements.txt')).read().splitlines()
            if line.strip() and not line.startswith('#')}
    assert f'{name}==' in pins[name]  # the exact pins stay in requirements.txt


def _metafile_models():
    models = {}
    for path in glob.glob(osp.join(ROOT, 'configs', '*', 'metafile.yml')):
        with open(path) as f:
            meta = yaml.safe_load(f)
        collections = {c['Name'] for c in meta['Collections']}
        for model in meta['Models']:
            assert model['In Collection'] in collections
            models[model['Config']] = model
    return models


def test_every_level_config_has_a_metafile_entry():
    configs = {osp.relpath(p, ROOT) for p in
               glob.glob(osp.join(ROOT, 'configs/efficientdet*/efficientdet_*_coco.py'))}
    models = _metafile_models()
    assert configs == set(models)
    for config, model in models.items():
        assert model['Weights'].startswith('https://github.com/rwightman/efficientdet-pytorch/')
        assert model['Results'][0]['Dataset'] == 'COCO'
        assert 20 < model['Results'][0]['Metrics']['box AP'] < 60


@pytest.mark.parametrize('config', [
    'configs/efficientdet/efficientdet_d0_8xb8-300e_coco.py',
    'configs/efficientdet_lite/efficientdet_lite0_8xb8-300e_coco.py'])
def test_metafile_parameters_are_the_models(config):
    from mmengine.config import Config
    model = Config.fromfile(osp.join(ROOT, config)).model
    model.backbone.init_cfg = None
    params = sum(p.numel() for p in build(model).parameters())
    assert _metafile_models()[config]['Metadata']['Parameters'] == params


def test_pip_install_keeps_the_installed_stack(tmp_path):
    """`pip install -e .` resolved against this environment alone (no index): only our
    package would be installed, torch/mmcv/mmengine/mmdet are left as they are."""
    import shutil
    import subprocess
    import sys
    source = tmp_path / 'src'  # a copy: a dry run still writes egg-info next to setup.cfg
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        '.venv', '.git', 'work_dirs', 'data', '*.egg-info', '__pycache__', 'checkpoints'))
    proc = subprocess.run([sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index',
                           '--no-build-isolation', '--disable-pip-version-check', '-e',
                           str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    would = [line for line in proc.stdout.splitlines() if line.startswith('Would install')]
    from mmdet_efficientdet import __version__
    assert [w.split()[2:] for w in would] == [[f'mmdet_efficientdet-{__version__}']], would


def test_wheel_carries_configs_and_model_index(tmp_path):
    """The built wheel, installed outside the checkout (a target folder on top of this
    environment), finds its packaged configs, level configs and model index from any folder,
    and EfficientDetInferencer builds a model by its metafile name."""
    import shutil
    import subprocess
    import sys
    source = tmp_path / 'src'  # a copy: building writes build/ and egg-info beside setup.py
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        '.venv', '.git', 'work_dirs', 'data', 'build', '*.egg-info', '__pycache__'))
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check']
    proc = subprocess.run([*pip, 'wheel', '--no-deps', '--no-build-isolation', '-w',
                           str(tmp_path / 'dist'), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel, = glob.glob(str(tmp_path / 'dist' / '*.whl'))
    target = tmp_path / 'site'
    proc = subprocess.run([*pip, 'install', '--no-deps', '--target', str(target), wheel],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    probe = '''
import os.path as osp, sys
import mmdet_efficientdet
from mmengine.config import Config
from mmdet_efficientdet.apis import EfficientDetInferencer, config_path, model_index
from mmdet_efficientdet.apis.level_configs import level_config_path
assert mmdet_efficientdet.__file__.startswith(sys.argv[1]), mmdet_efficientdet.__file__
path = config_path('efficientdet_lite/efficientdet_lite0_8xb8-300e_coco.py')
assert path.startswith(osp.join(sys.argv[1], 'mmdet_efficientdet', '.mim')), path
assert level_config_path('d3').startswith(sys.argv[1])
assert len(model_index()) == 15
cfg = Config.fromfile(path)
inferencer = EfficientDetInferencer('efficientdet_lite0_8xb8-300e_coco', weights=sys.argv[2],
                                    device='cpu')
print('built', type(inferencer.model).__name__, cfg.model.backbone.arch)
'''
    # weights of the Lite0 model (random), so that nothing is downloaded
    weights = tmp_path / 'lite0.pth'
    import torch
    from .conftest import level_model
    torch.save({'state_dict': build(level_model('lite0')).state_dict()}, weights)
    env = dict(os.environ, PYTHONPATH=str(target))
    proc = subprocess.run([sys.executable, '-c', probe, str(target), str(weights)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'built EfficientDetector lite0' in proc.stdout
