"""Controlled ablations: the same data, schedule and seeds; only what a study varies differs.

    python tools/ablate.py STUDY [--iters N] [--seeds K] [--work-dir DIR] [--scale paper]
        [--cfg-options KEY=VALUE ...] [--launcher pytorch]

STUDY is a preset (table4, table5, table6: configs/ablations/studies/) or a study file (.py
or .yaml) naming a ``base`` config and its ``variants`` (each a ``name``, a ``label``, and
``cfg_options`` to apply to the base or a ``config`` of its own; optionally ``paper_ap``,
``paper_config`` / ``paper_cfg_options`` for --scale paper). For every variant and seed the
tool trains with mmengine's Runner, evaluates with the config's metric (the EMA weights,
when the config keeps an EMA) and measures parameters, FLOPs (multiply-adds at the config's
input size, as the paper counts them) and CPU latency (batch 1, network only). It writes
DIR/results.json (a record per run and a summary per variant), DIR/results.md (one table)
and DIR/results.png (mAP against GFLOPs, the seeds' range as error bars).

A study that was stopped continues where it stopped: finished runs are read from their work
dirs (DIR/<variant>/seed_<k>/result.json), a half-finished one resumes from its last
checkpoint. A run that fails is recorded as failed with its reason; the others still run.
"""
import argparse
import copy
import glob
import json
import math
import os
import os.path as osp
import statistics
import sys
import time

import torch
from mmengine.config import Config

import mmdet_efficientdet  # noqa: F401  (registers our components)
from mmdet_efficientdet.apis.checkpoints import enable_tool_checkpoints
from mmdet_efficientdet.apis.measure import complexity, median_ms
from mmdet_efficientdet.apis.runner_args import cfg_options_action
from mmdet_efficientdet.apis.tool_errors import one_line, run_tool
from mmdet_efficientdet.engine.config_checks import fixed_input_size

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STUDIES = osp.join(ROOT, 'configs', 'ablations', 'studies')
PRESETS = sorted(osp.splitext(osp.basename(p))[0] for p in glob.glob(osp.join(STUDIES, '*.py')))
SCALES = ('small', 'paper')


class StudyError(ValueError):
    """A study that cannot run as given."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('study', help=f'a preset ({", ".join(PRESETS)}) or a study file')
    parser.add_argument('--iters', type=int, help='training iterations of every run (default: '
                        "the base config's)")
    parser.add_argument('--seeds', type=int, default=3, help='seeds per variant (0, 1, ...)')
    parser.add_argument('--work-dir', help='where runs and results go (default: '
                        'work_dirs/ablate/<study>)')
    parser.add_argument('--scale', default='small', choices=SCALES,
                        help="small: the study's base on the embedded set; paper: each "
                        "variant's paper-scale config (for a GPU cluster)")
    parser.add_argument('--latency-repeats', type=int, default=10)
    parser.add_argument('--cfg-options', nargs='+', action=cfg_options_action(),
                        help='settings for every run, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher of each run')
    parser.add_argument('--verbose', action='store_true', help="the Runner's log on the console")
    return parser.parse_args(argv)


def load_study(name: str) -> tuple:
    """(study name, path, parsed study) of a preset or a study file."""
    path = osp.join(STUDIES, f'{name}.py') if name in PRESETS else name
    if not osp.isfile(path):
        raise StudyError(f'unknown study {name!r}: valid choices are the presets '
                         f'{", ".join(PRESETS)}, or a study file (.py or .yaml)')
    try:
        study = Config.fromfile(path)
    except Exception as error:  # mmengine reports parse errors of many kinds
        raise StudyError(f'the study file {path} does not parse: {one_line(error)}') from error
    variants = study.get('variants')
    if not study.get('base') and not all(v.get('config') for v in variants or []):
        raise StudyError(f'{path}: a study needs a base config (base = ...) or a config per '
                         'variant')
    if not variants or not isinstance(variants, (list, tuple)):
        raise StudyError(f'{path}: a study needs a list of variants (variants = [dict(name=..., '
                         'cfg_options=...), ...])')
    names = [v.get('name') for v in variants]
    if None in names or len(set(names)) != len(names):
        raise StudyError(f'{path}: every variant needs a name of its own; got {names}')
    return osp.splitext(osp.basename(path))[0], path, study


def _relative(study_path: str, path: str) -> str:
    return path if osp.isabs(path) else osp.normpath(osp.join(osp.dirname(study_path), path))


def variant_config(study_path: str, study, variant: dict, scale: str, iters, seed: int,
                   work_dir: str, options) -> Config:
    """The config of one run: the base (or the variant's config) with its settings."""
    if scale == 'paper':
        source = variant.get('paper_config')
        if not source:
            raise StudyError(f'variant {variant["name"]} has no paper_config for --scale paper')
        cfg = Config.fromfile(_relative(study_path, source))
        cfg.merge_from_dict(dict(variant.get('paper_cfg_options') or {}))
    else:
        cfg = Config.fromfile(_relative(study_path, variant.get('config') or study.base))
        cfg.merge_from_dict(dict(variant.get('cfg_options') or {}))
    if options:
        cfg.merge_from_dict(options)
    if not cfg.model.get('neck'):
        raise StudyError(f'variant {variant["name"]}: its config has no model.neck; a study '
                         'compares detectors with a feature network')
    if iters:
        if cfg.train_cfg.get('type') != 'IterBasedTrainLoop':
            raise StudyError(f'--iters needs an iteration-based schedule; variant '
                             f'{variant["name"]} trains by epoch (set train_cfg.max_epochs)')
        set_iterations(cfg, iters)
    # evaluated once, at the end of training (the loop validates at its last iteration)
    cfg.train_cfg.val_interval = cfg.train_cfg.get('max_iters', cfg.train_cfg.get('max_epochs'))
    cfg.train_cfg.val_begin = 1
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.visualizer.name = f'visualizer_{variant["name"]}_{seed}'
    return cfg


def set_iterations(cfg: Config, iters: int) -> None:
    """A schedule of ``iters`` iterations: the loop, the iteration-based schedulers' ends, a
    checkpoint a quarter of the way (to resume from)."""
    old = cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = iters
    for scheduler in cfg.get('param_scheduler') or []:
        if scheduler.get('by_epoch', True):
            continue
        for key in ('end', 'T_max'):
            if key in scheduler and scheduler[key] is not None:
                scheduler[key] = max(1, round(scheduler[key] * iters / old))
        if 'begin' in scheduler:
            scheduler['begin'] = min(round(scheduler['begin'] * iters / old), iters - 1)
    cfg.default_hooks.checkpoint.update(by_epoch=False, interval=max(1, iters // 4))


def input_shape(cfg: Config):
    return fixed_input_size(cfg.model) or (512, 512)


def measure(cfg: Config, name: str, repeats: int) -> dict:
    """params, FLOPs (multiply-adds) of the detector and of its neck, and the median CPU
    latency of the network at batch 1, of a model built from ``cfg`` (without weights: a
    variant that does not build, e.g. a neck that does not fit its backbone, is found here,
    before anything trains)."""
    from mmdet.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop('init_cfg', None)  # shapes and timings: no weights needed
    size = input_shape(cfg)
    inputs = torch.randn(1, 3, *size)
    try:
        model = MODELS.build(model_cfg).eval()
        with torch.no_grad():
            model._forward(inputs)
    except Exception as error:
        raise StudyError(f'variant {name} does not build: {one_line(error)}') from error
    return dict(complexity(model, inputs),
                latency_ms=median_ms(lambda: model._forward(inputs), repeats),
                input_size=list(size))


def train_and_evaluate(cfg: Config, launcher: str, verbose: bool) -> dict:
    """Train one run (resuming it if it was stopped) and evaluate it at its end: the
    metrics of that evaluation."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    class KeepMetrics(Hook):
        metrics: dict = {}

        def after_val_epoch(self, runner, metrics=None) -> None:
            KeepMetrics.metrics = dict(metrics or {})

    cfg.launcher = launcher
    cfg.resume = osp.isfile(osp.join(cfg.work_dir, 'last_checkpoint'))
    cfg.log_level = 'INFO' if verbose else 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.register_hook(KeepMetrics(), priority='LOWEST')
    runner.train()
    return {key: float(value) for key, value in KeepMetrics.metrics.items()
            if isinstance(value, (int, float))}


def metric_names(metrics: dict) -> tuple:
    """(mAP key, AP50 key) of a metrics dict (``coco/bbox_mAP`` …, or VOC's ``pascal_voc/mAP``)."""
    main = next((k for k in metrics if k.endswith('bbox_mAP')), None) or next(
        (k for k in metrics if k.endswith('mAP')), None)
    ap50 = next((k for k in metrics if k.endswith('bbox_mAP_50')), None)
    return main, ap50


def summarise(records: list, variants: list) -> list:
    rows = []
    for variant in variants:
        done = [r for r in records if r['variant'] == variant['name'] and r['status'] == 'done']
        row = dict(variant=variant['name'], label=variant.get('label', variant['name']),
                   paper_ap=variant.get('paper_ap'), runs=len(done),
                   failed=sum(r['variant'] == variant['name'] and r['status'] == 'failed'
                              for r in records))
        if done:
            maps = [r['bbox_mAP'] for r in done]
            row.update(bbox_mAP_mean=statistics.mean(maps), bbox_mAP_min=min(maps),
                       bbox_mAP_max=max(maps),
                       bbox_mAP_50_mean=statistics.mean(r['bbox_mAP_50'] for r in done),
                       train_seconds_mean=statistics.mean(r['train_seconds'] for r in done),
                       **{k: done[0][k] for k in ('params', 'flops', 'neck_params',
                                                  'neck_flops', 'input_size')},
                       latency_ms=statistics.median(r['latency_ms'] for r in done))
        rows.append(row)
    return rows


def _minutes(seconds: float) -> str:
    return f'{int(seconds // 60)} min {int(seconds % 60)} s'


def write_markdown(path: str, name: str, study, scale: str, seeds: int, iters, rows: list):
    lines = [f'# Study {name} ({scale} scale, {seeds} seed(s) per variant'
             + (f', {iters} iterations' if iters else '') + ')', '',
             f'Matched: {study.get("matched", "-")}', '',
             f'Paper: {study.get("paper", "-")}', '',
             '| variant | bbox mAP mean (min-max) | AP50 | params | GFLOPs (neck) | '
             'latency ms | train time | paper AP |',
             '|---|---|---|---|---|---|---|---|']
    for row in rows:
        paper = f'{row["paper_ap"]:g}' if row.get('paper_ap') is not None else '-'
        if not row['runs']:
            lines.append(f'| {row["label"]} | failed ({row["failed"]} runs) | - | - | - | - | - '
                         f'| {paper} |')
            continue
        lines.append(
            f'| {row["label"]} | {row["bbox_mAP_mean"]:.3f} ({row["bbox_mAP_min"]:.3f}-'
            f'{row["bbox_mAP_max"]:.3f}) | {row["bbox_mAP_50_mean"]:.3f} | '
            f'{row["params"] / 1e6:.2f}M | {row["flops"] / 1e9:.2f} '
            f'({row["neck_flops"] / 1e9:.3f}) | {row["latency_ms"]:.1f} | '
            f'{_minutes(row["train_seconds_mean"])} | {paper} |')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def write_plot(path: str, name: str, rows: list) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(6, 4.2))
    for row in rows:
        if not row['runs']:
            continue
        x, y = row['flops'] / 1e9, row['bbox_mAP_mean']
        axes.errorbar([x], [y], yerr=[[y - row['bbox_mAP_min']], [row['bbox_mAP_max'] - y]],
                      fmt='o', capsize=4, label=row['label'])
    axes.set_xlabel('GFLOPs (multiply-adds)')
    axes.set_ylabel('bbox mAP (mean, seed range)')
    axes.set_title(f'{name}: accuracy against compute')
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run_one(args, path, study, variant, seed, run_dir, measured) -> dict:
    """Train and evaluate one variant at one seed; its record (``status`` done or failed:
    a failure is recorded, the other runs go on), also written to ``run_dir/result.json``."""
    record = dict(variant=variant['name'], seed=seed, work_dir=run_dir, **measured)
    start = time.time()
    try:
        cfg = variant_config(path, study, variant, args.scale, args.iters, seed, run_dir,
                             args.cfg_options)
        metrics = train_and_evaluate(cfg, args.launcher, args.verbose)
        main_key, ap50_key = metric_names(metrics)
        if main_key is None and metrics:
            raise ValueError(f'the evaluator reported no mAP ({sorted(metrics)})')
        # CocoMetric reports nothing when no detection passed the score threshold
        record.update(status='done', bbox_mAP=metrics.get(main_key, 0.0),
                      bbox_mAP_50=metrics.get(ap50_key, 0.0 if not metrics else math.nan),
                      train_seconds=time.time() - start, metrics=metrics)
        os.makedirs(run_dir, exist_ok=True)
        with open(osp.join(run_dir, 'result.json'), 'w') as f:
            json.dump(record, f, indent=1)
    except Exception as error:  # recorded; the other runs go on
        record.update(status='failed', reason=one_line(error))
    return record


def write_results(args, name, path, study, work_dir, records) -> None:
    rows = summarise(records, study.variants)
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(dict(study=name, study_file=path, scale=args.scale, seeds=args.seeds,
                       iters=args.iters, matched=study.get('matched'), paper=study.get('paper'),
                       records=records, summary=rows), f, indent=1)
    write_markdown(osp.join(work_dir, 'results.md'), name, study, args.scale, args.seeds,
                   args.iters, rows)
    write_plot(osp.join(work_dir, 'results.png'), name, rows)


def main(argv=None):
    args = parse_args(argv)
    if args.seeds < 1:
        raise SystemExit(f'ablate: --seeds {args.seeds}: a study needs 1 seed or more')
    if args.iters is not None and args.iters < 1:
        raise SystemExit(f'ablate: --iters {args.iters} must be 1 or more')
    try:
        name, path, study = load_study(args.study)
    except StudyError as error:
        raise SystemExit(f'ablate: {error}') from None
    enable_tool_checkpoints()
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    work_dir = args.work_dir or osp.join('work_dirs', 'ablate', name)
    runs = [(variant, seed) for variant in study.variants for seed in range(args.seeds)]
    measured = {}
    try:
        for variant in study.variants:  # every variant builds before anything trains
            cfg = variant_config(path, study, variant, args.scale, args.iters, 0,
                                 osp.join(work_dir, variant['name'], 'seed_0'),
                                 args.cfg_options)
            measured[variant['name']] = measure(cfg, variant['name'], args.latency_repeats)
    except StudyError as error:
        raise SystemExit(f'ablate: {error}') from None
    records, trained, started = [], [], time.time()
    for index, (variant, seed) in enumerate(runs, 1):
        run_dir = osp.join(work_dir, variant['name'], f'seed_{seed}')
        result_file = osp.join(run_dir, 'result.json')
        what = f'[ablate] {index}/{len(runs)} {name} {variant["name"]} seed {seed}'
        if osp.isfile(result_file):
            with open(result_file) as f:
                records.append(json.load(f))
            print(f'{what}: done before (bbox mAP {records[-1]["bbox_mAP"]:.3f}), read from '
                  f'{result_file}', flush=True)
            continue
        remaining = sum(1 for v, s in runs[index - 1:] if not osp.isfile(
            osp.join(work_dir, v['name'], f'seed_{s}', 'result.json')))
        left = (f'; about {_minutes(statistics.mean(trained) * remaining)} left'
                if trained else '')
        print(f'{what}: training into {run_dir}{left}', flush=True)
        record = run_one(args, path, study, variant, seed, run_dir, measured[variant['name']])
        if record['status'] == 'done':
            trained.append(record['train_seconds'])
            print(f'{what}: bbox mAP {record["bbox_mAP"]:.3f} in '
                  f'{_minutes(record["train_seconds"])}', flush=True)
        else:
            print(f'{what}: failed: {record["reason"]}', flush=True)
        records.append(record)
    from mmengine.dist import is_main_process
    if not is_main_process():
        return
    write_results(args, name, path, study, work_dir, records)
    failed = sum(r['status'] == 'failed' for r in records)
    print(f'[ablate] {name}: {len(records) - failed} runs done, {failed} failed, in '
          f'{_minutes(time.time() - started)}; results: {work_dir}/results.md, results.json, '
          'results.png', flush=True)
    if failed:
        sys.exit(1)


if __name__ == '__main__':
    run_tool(main, 'ablate.py')
