"""tools/ablate.py: controlled studies that write one table, one plot and their records, and
continue where they stopped."""
import json
import os
import os.path as osp

import pytest

from .conftest import ROOT, call_tool, error_line, load_tool, tiny_config

SMALL_BASE = osp.join(ROOT, 'configs/ablations/small/efficientdet_lite0_synthetic_192.py')


def _study(folder, base, variants):
    os.makedirs(str(folder), exist_ok=True)
    path = osp.join(str(folder), 'study.py')
    with open(path, 'w') as f:
        f.write(f'base = {base!r}\nmatched = "only the neck"\nvariants = {variants!r}\n')
    return path


def _mtimes(folder):
    return {osp.join(r, n): os.stat(osp.join(r, n)).st_mtime_ns
            for r, _, names in os.walk(folder) for n in names}


def test_a_two_variant_study_writes_its_results_and_continues(tiny_data, tmp_path, capsys):
    base = tiny_config(tmp_path, tiny_data, max_epochs=1, base=SMALL_BASE)
    study = _study(tmp_path, base, [
        dict(name='bifpn', label='BiFPN', cfg_options={}),
        dict(name='fpn', label='FPN', paper_ap=42.29,
             cfg_options={'model.neck.topology': 'fpn', 'model.neck.num_repeats': 4})])
    work_dir = tmp_path / 'study'
    args = (study, '--iters', '4', '--seeds', '1', '--work-dir', work_dir,
            '--latency-repeats', '2', '--cfg-options', 'model.test_cfg.score_thr=0.0')
    assert call_tool('ablate', *args) == 0
    out = capsys.readouterr().out
    assert '[ablate] 1/2 study bifpn seed 0: training into' in out
    assert '[ablate] study: 2 runs done, 0 failed' in out
    results = json.loads((work_dir / 'results.json').read_text())
    assert [r['variant'] for r in results['records']] == ['bifpn', 'fpn']
    for row in results['summary']:
        assert 0 <= row['bbox_mAP_mean'] <= 1 and row['params'] > 1e6 and row['flops'] > 1e8
        assert row['neck_flops'] > 0 and row['latency_ms'] > 0 and row['runs'] == 1
    table = (work_dir / 'results.md').read_text()
    assert '| FPN | ' in table and '| 42.29 |' in table and 'Matched: only the neck' in table
    assert (work_dir / 'results.png').read_bytes()[:4] == b'\x89PNG'
    # the same command again reads the finished runs and trains nothing
    before = _mtimes(work_dir / 'fpn')
    assert call_tool('ablate', *args) == 0
    out = capsys.readouterr().out
    assert out.count('done before') == 2 and 'training into' not in out
    assert _mtimes(work_dir / 'fpn') == before
    # bad input: one line each; the finished runs stay as they were
    broken = tmp_path / 'broken.py'
    broken.write_text('variants = [dict(name=\n')
    no_neck = _study(tmp_path / 'n', base, [dict(name='x', cfg_options={'model.neck': None})])
    misfit = _study(tmp_path / 'm', base, [dict(
        name='misfit', cfg_options={'model.neck.in_channels': [8, 16, 32]})])
    for argv, expected in (
            (['table9'], "ablate: unknown study 'table9': valid choices are the presets "
                         'table4, table5, table6, or a study file (.py or .yaml)'),
            ([str(broken)], f'ablate: the study file {broken} does not parse'),
            ([no_neck], 'ablate: variant x: its config has no model.neck'),
            ([misfit], 'ablate: variant misfit does not build'),
            ([study, '--seeds', '0'], 'ablate: --seeds 0: a study needs 1 seed or more')):
        assert call_tool('ablate', *argv, '--work-dir', work_dir) == 1
        assert error_line(capsys).startswith(expected), argv
    assert _mtimes(work_dir / 'fpn') == before


def test_the_table5_preset_matches_the_bifpns_compute():
    ablate = load_tool('ablate')
    name, path, study = ablate.load_study('table5')
    flops = {}
    for variant in study.variants:
        cfg = ablate.variant_config(path, study, variant, 'small', None, 0, '/tmp/unused', None)
        flops[variant['name']] = ablate.measure(cfg, variant['name'], 1)['neck_flops']
    for name in ('fpn', 'pan', 'bifpn_sum'):
        assert abs(flops[name] / flops['bifpn_fast'] - 1) <= 0.10, flops
    assert set(flops) == {'fpn', 'pan', 'bifpn_sum', 'bifpn_fast'}


@pytest.mark.parametrize('preset', ['table4', 'table6'])
def test_the_other_presets_build(preset):
    from mmdet.registry import MODELS
    ablate = load_tool('ablate')
    name, path, study = ablate.load_study(preset)
    for variant in study.variants:
        cfg = ablate.variant_config(path, study, variant, 'small', 20, 0, '/tmp/unused', None)
        cfg.model.backbone.init_cfg = None
        assert sum(p.numel() for p in MODELS.build(cfg.model).parameters()) > 1e6
        assert cfg.train_cfg.max_iters == 20 and cfg.param_scheduler[-1].end == 20
