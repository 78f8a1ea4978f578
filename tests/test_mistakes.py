"""Users' mistakes end in one clear line and lose nothing: checkpoints that do not fit or are
no checkpoints, resume, datasets with faults, registry typos, one-value-per-channel batches."""
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import load_checkpoint

from mmdet_efficientdet.converters import CheckpointFileError
from mmdet_efficientdet.models.detectors.efficientdet import CheckpointMismatchError
from mmdet_efficientdet.apis.synthetic import make_synthetic_coco
from mmdet_efficientdet.apis.tool_errors import one_line

from .conftest import build, call_tool, error_line, level_model, tiny_config


@pytest.fixture(scope='module')
def small_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'synthetic')
    make_synthetic_coco(root, seed=0, splits=dict(train=3, val=2))
    return root


def _digests(folder):
    return {name: hashlib.sha256(open(osp.join(folder, name), 'rb').read()).hexdigest()
            for name in sorted(os.listdir(folder)) if name.endswith('.pth')}


def _one_line_error(code, capsys, tool):
    """The tool failed (exit 1) with one line on stderr (no traceback) naming where the
    traceback went; returns that line."""
    stderr = capsys.readouterr().err
    assert code == 1, code
    assert 'Traceback' not in stderr, stderr[-3000:]
    line = stderr.strip().splitlines()[-1]
    assert line.startswith(f'{tool}: error: ') and '(traceback in ' in line, line
    log = line.rsplit('(traceback in ', 1)[1].rstrip(')')
    assert 'Traceback' in open(log).read()
    return line


# --- checkpoints ------------------------------------------------------------------------

def _save(model, path):
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


def test_a_checkpoint_of_another_level_is_refused_naming_the_first_key(tmp_path):
    d1 = _save(build(level_model('d1', num_classes=4)), tmp_path / 'd1.pth')
    model = build(level_model('d0', num_classes=4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError,
                       match=r'neck\.extra_levels\.0\.conv\.conv\.weight is \(88, 320, 1, 1\) in '
                       r'the checkpoint but \(64, 320, 1, 1\) in the model \(and \d+ more\)'
                       r'.*partial_load=True'):
        load_checkpoint(model, d1, map_location='cpu')
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_checkpoint_of_other_classes_loads_as_mmengine_loads_it(tmp_path, capsys):
    """mmdet's fine-tuning convention: the class layer of another shape is skipped with a
    warning naming it, everything else is loaded."""
    source = build(level_model('d0', num_classes=90))
    path = _save(source, tmp_path / 'c90.pth')
    model = build(level_model('d0', num_classes=4))
    own_cls = model.bbox_head.conv_cls.pointwise.conv.weight.clone()
    load_checkpoint(model, path, map_location='cpu')
    assert 'size mismatch for bbox_head.conv_cls.pointwise.conv.weight' in capsys.readouterr().out
    assert torch.equal(model.bbox_head.conv_cls.pointwise.conv.weight, own_cls)
    assert torch.equal(model.backbone.stem.conv.weight, source.backbone.stem.conv.weight)
    assert torch.equal(model.bbox_head.conv_reg.pointwise.conv.weight,
                       source.bbox_head.conv_reg.pointwise.conv.weight)


def test_partial_load_takes_what_fits_of_another_level(tmp_path):
    source = build(level_model('d1', num_classes=4))
    path = _save(source, tmp_path / 'd1.pth')
    model = build(dict(level_model('d0', num_classes=4), partial_load=True))
    own_neck = model.neck.extra_levels[0].conv.conv.weight.clone()
    load_checkpoint(model, path, map_location='cpu')
    assert torch.equal(model.neck.extra_levels[0].conv.conv.weight, own_neck)  # (88 vs 64)
    assert torch.equal(model.backbone.stem.conv.weight, source.backbone.stem.conv.weight)


def test_an_unconverted_checkpoint_is_refused():
    model = build(level_model('d0', num_classes=4))
    state = {'model.' + k: v for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match="no weight of the checkpoint belongs to "
                       r"this EfficientDetector \(its first is 'model\.backbone"):
        model.load_state_dict(state, strict=False)


@pytest.mark.parametrize('content', [b'hello world\n', b'', bytes(range(256)) * 4])
def test_a_file_that_is_no_checkpoint_is_named(content, tmp_path, tool_checkpoints):
    path = tmp_path / 'weights.pth'
    path.write_bytes(content)
    model = build(level_model('d0', num_classes=4))
    with pytest.raises(CheckpointFileError, match=f'{path} is not a PyTorch checkpoint'):
        load_checkpoint(model, str(path))


def test_tools_refuse_a_wrong_checkpoint_in_one_line(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data)
    lite1 = _save(build(level_model('lite1', num_classes=4)), tmp_path / 'lite1.pth')
    code = call_tool('test', cfg, lite1, '--work-dir', str(tmp_path / 't'))
    line = _one_line_error(code, capsys, 'test.py')
    assert 'CheckpointMismatchError: the checkpoint does not fit this model' in line
    assert 'a checkpoint of another level or architecture' in line

    text = tmp_path / 'notes.pth'
    text.write_text('not weights\n')
    code = call_tool('train', cfg, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                     f'load_from={text}')
    assert f'{text} is not a PyTorch checkpoint' in _one_line_error(code, capsys, 'train.py')
    assert _digests(tmp_path / 'w') == {} if osp.isdir(tmp_path / 'w') else True


# --- resume -----------------------------------------------------------------------------

def _fake_checkpoints(work_dir, names=('epoch_1.pth', 'epoch_2.pth')):
    os.makedirs(work_dir, exist_ok=True)
    for i, name in enumerate(names):
        with open(osp.join(work_dir, name), 'wb') as f:
            f.write(os.urandom(64) + bytes([i]))
    return _digests(work_dir)


def test_a_new_run_never_overwrites_checkpoints(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data)
    work_dir = str(tmp_path / 'wd')
    before = _fake_checkpoints(work_dir)
    line = _one_line_error(call_tool('train', cfg, '--work-dir', work_dir), capsys, 'train.py')
    assert 'already holds checkpoints (epoch_1.pth, epoch_2.pth)' in line and '--resume' in line
    assert _digests(work_dir) == before


def test_resume_refuses_a_last_checkpoint_that_is_gone(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data)
    work_dir = str(tmp_path / 'wd')
    before = _fake_checkpoints(work_dir)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'epoch_3.pth'))
    code = call_tool('train', cfg, '--work-dir', work_dir, '--resume')
    line = _one_line_error(code, capsys, 'train.py')
    assert 'epoch_3.pth, which is gone; checkpoints in' in line
    assert 'epoch_1.pth, epoch_2.pth' in line
    assert _digests(work_dir) == before


def test_resume_from_scratch_then_from_the_newest_checkpoint(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data, max_epochs=1, batch_size=3)
    work_dir = str(tmp_path / 'wd')
    assert call_tool('train', cfg, '--work-dir', work_dir, '--resume') == 0
    out = capsys.readouterr()
    assert f'--resume: no checkpoint in {work_dir}: starting from scratch' in out.out
    assert 'Auto resumed from the latest checkpoint None' not in out.out + out.err
    before = _digests(work_dir)
    assert list(before) == ['epoch_1.pth']
    os.remove(osp.join(work_dir, 'last_checkpoint'))
    assert call_tool('train', cfg, '--work-dir', work_dir, '--resume',
                     '--cfg-options', 'train_cfg.max_epochs=2') == 0
    out = capsys.readouterr()
    assert ('has no last_checkpoint file; continuing from its newest checkpoint epoch_1.pth'
            in out.out)
    assert 'resumed epoch: 1' in out.out + out.err
    after = _digests(work_dir)
    assert after['epoch_1.pth'] == before['epoch_1.pth'] and 'epoch_2.pth' in after


# --- datasets ---------------------------------------------------------------------------

def _plant_faults(root):
    """A missing file, a corrupt image, an unknown category, an outside and a zero-size box."""
    ann_file = osp.join(root, 'annotations', 'instances_train.json')
    with open(ann_file) as f:
        coco = json.load(f)
    images = coco['images']
    os.remove(osp.join(root, 'train', images[0]['file_name']))
    with open(osp.join(root, 'train', images[1]['file_name']), 'r+b') as f:
        data = f.read()
        f.seek(0)
        f.truncate()
        f.write(data[:len(data) // 3])  # cut off: the header reads, decoding fails
    image = images[2]
    base = dict(image_id=image['id'], iscrowd=0, area=100.0)
    next_id = max(a['id'] for a in coco['annotations']) + 1
    coco['annotations'] += [
        dict(base, id=next_id, category_id=99, bbox=[1, 1, 10, 10]),
        dict(base, id=next_id + 1, category_id=1,
             bbox=[image['width'] - 5, 2, 20, 10]),
        dict(base, id=next_id + 2, category_id=1, bbox=[3, 3, 0, 8]),
    ]
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return images


def test_check_dataset_passes_a_clean_dataset_and_draws(tmp_path, capsys):
    root = str(tmp_path / 'clean')
    make_synthetic_coco(root, seed=1, splits=dict(train=3, val=2))
    cfg = tiny_config(tmp_path, root)
    show_dir = tmp_path / 'shown'
    assert call_tool('check_dataset', cfg, '--show', '2', '--show-dir', show_dir) == 0
    out = capsys.readouterr().out
    assert 'train: ' in out and 'val: ' in out and 'ERROR' not in out
    assert 'check_dataset: no problem found' in out
    assert sorted(os.listdir(show_dir)) == ['000001.png', '000002.png']


def test_check_dataset_finds_every_planted_fault(tmp_path, capsys):
    root = str(tmp_path / 'faulty')
    make_synthetic_coco(root, seed=1, splits=dict(train=3, val=2))
    images = _plant_faults(root)
    cfg = tiny_config(tmp_path, root)
    code = call_tool('check_dataset', cfg, '--cfg-options', 'model.bbox_head.num_classes=3')
    captured = capsys.readouterr()
    out = captured.out
    assert code == 1 and 'check_dataset: 7 problem(s) found' in captured.err
    assert f'ERROR missing image files: 1 (e.g. {root}/train/{images[0]["file_name"]})' in out
    assert f'ERROR unreadable images: 1 (e.g. {root}/train/{images[1]["file_name"]}: ' in out
    assert 'ERROR unknown category ids (mmdet drops their boxes): 1' in out
    assert 'category_id 99, the file has [1, 2, 3, 4]' in out
    assert 'ERROR boxes outside their image: 1' in out
    assert 'ERROR zero-size boxes (w or h < 1 px: mmdet drops them): 1' in out
    assert ('ERROR more classes than the model has outputs: 1 (e.g. 4 classes, '
            'model.bbox_head.num_classes=3)') in out
    assert 'val: ' in out and out.split('val: ')[1].count('ERROR') == 1  # only num_classes


# --- configs, registry, batch norm ------------------------------------------------------

def test_a_registry_typo_gets_did_you_mean(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data)
    code = call_tool('train', cfg, '--work-dir', tmp_path / 'wd', '--cfg-options',
                     'model.backbone.type=TFEfficentNet')
    line = _one_line_error(code, capsys, 'train.py')
    assert ("type 'TFEfficentNet' is not in the mmdet::model registry; did you mean "
            'TFEfficientNet') in line


def test_one_line_of_an_unknown_type_without_close_names():
    error = KeyError('Zzzqx is not in the mmdet::model registry. Please check whether ...')
    assert one_line(error) == (
        "KeyError: type 'Zzzqx' is not in the mmdet::model registry (types are "
        'case-sensitive; custom_imports must import the module that registers it)')


def test_one_image_batches_at_128px_get_a_clear_error():
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    model = build(level_model('d0', num_classes=4)).train()
    sample = DetDataSample(metainfo=dict(img_shape=(128, 128), pad_shape=(128, 128),
                                         batch_input_shape=(128, 128)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 10., 60., 70.]]),
                                       labels=torch.tensor([1]))
    with pytest.raises(ValueError, match=r'a training batch of 1 image\(s\) of 128x128 leaves '
                       'one value per channel .*drop_last=True'):
        model.loss(torch.randn(1, 3, 128, 128), [sample])


def test_a_last_batch_of_one_image_is_dropped_when_asked(small_data, tmp_path):
    # 3 images, batches of 2 at 128 px: the last batch holds one image (P7 is 1x1); the
    # COCO configs (and so the demo) drop it
    cfg = tiny_config(tmp_path, small_data, max_epochs=1)
    assert call_tool('train', cfg, '--work-dir', tmp_path / 'wd') == 0
    assert osp.exists(tmp_path / 'wd' / 'epoch_1.pth')


# --- users' data and runs that go wrong (issue: users' own datasets) --------------------

def _write_json(path, data):
    with open(path, 'w') as f:
        json.dump(data, f)


def _coco(root):
    with open(osp.join(root, 'annotations', 'instances_train.json')) as f:
        return json.load(f)


@pytest.fixture
def own_data(tmp_path):
    root = str(tmp_path / 'own')
    make_synthetic_coco(root, seed=2, splits=dict(train=4, val=2))
    return root


def test_training_counts_the_boxes_mmdet_drops(own_data, tmp_path, capsys):
    coco = _coco(own_data)
    image = coco['images'][0]
    base = dict(image_id=image['id'], iscrowd=0, area=100.0, category_id=1)
    next_id = max(a['id'] for a in coco['annotations']) + 1
    coco['annotations'] += [
        dict(base, id=next_id, bbox=[image['width'] + 5, 3, 10, 10]),  # wholly outside
        dict(base, id=next_id + 1, bbox=[3, 3, 0, 0], area=0.0),  # zero size (no area at all)
        dict(base, id=next_id + 2, bbox=[3, 3, 10, 10], category_id=77)]  # unknown category
    _write_json(osp.join(own_data, 'annotations', 'instances_train.json'), coco)
    cfg = tiny_config(tmp_path, own_data, max_epochs=1)
    assert call_tool('train', cfg, '--work-dir', tmp_path / 'wd') == 0
    out = capsys.readouterr().out
    total = len(coco['annotations'])
    assert (f'the training set loses 3 of its {total} boxes, as mmdet drops them: 1 wholly '
            'outside their image, 1 of zero size, 1 of categories not among the classes') in out
    assert out.count('the training set loses') == 1


@pytest.mark.parametrize('fault', ['missing', 'cut off', 'no image'])
def test_an_unreadable_training_image_stops_the_run_before_it_starts(own_data, tmp_path, fault,
                                                                     capsys):
    name = _coco(own_data)['images'][2]['file_name']
    path = osp.join(own_data, 'train', name)
    if fault == 'missing':
        os.remove(path)
    elif fault == 'cut off':
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 2])
    else:
        open(path, 'w').write('a text file saved under an image name\n')
    cfg = tiny_config(tmp_path, own_data, max_epochs=1)
    line = _one_line_error(call_tool('train', cfg, '--work-dir', tmp_path / 'wd'), capsys,
                           'train.py')
    kind = 'missing image files' if fault == 'missing' else 'unreadable images'
    assert f'TrainingDataError: the training set has images that cannot be read: {kind}: 1' \
        in line and name in line
    cause = dict(missing='', cut_off='the file is cut off', no_image="not a PNG image (it begins "
                 "with b'a text f')")[fault.replace(' ', '_')]
    assert cause in line
    assert not [f for f in os.listdir(tmp_path / 'wd') if f.endswith('.pth')]


def test_a_diverging_run_stops_at_once_and_saves_no_nan_weights(own_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, own_data, max_epochs=3,
                      optim_wrapper=dict(optimizer=dict(lr=1e6), clip_grad=None))
    line = _one_line_error(call_tool('train', cfg, '--work-dir', tmp_path / 'wd',
                                     '--auto-scale-lr'), capsys, 'train.py')
    # the loss, or (first) a BN statistic on its way into a checkpoint
    assert 'InvalidLossError: iteration ' in line
    assert 'the loss is not finite (loss ' in line or 'is not finite, so no checkpoint' in line
    assert 'at lr 2.5e+05' in line and 'Try a lower lr' in line  # 1e6 scaled to batch 2 of 8
    iteration = int(line.split('InvalidLossError: iteration ')[1].split(':')[0])
    assert iteration <= 4  # within the first epochs' few iterations
    for name in os.listdir(tmp_path / 'wd'):
        if name.endswith('.pth'):
            state = torch.load(tmp_path / 'wd' / name, map_location='cpu',
                               weights_only=True)['state_dict']
            assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_a_full_disk_names_the_file_and_leaves_no_partial_checkpoint(own_data, tmp_path,
                                                                     capsys):
    cfg = tiny_config(tmp_path, own_data, max_epochs=1)
    work_dir = tmp_path / 'wd'
    work_dir.mkdir()
    os.symlink('/dev/full', work_dir / 'epoch_1.pth.part')  # writing it: ENOSPC
    line = _one_line_error(call_tool('train', cfg, '--work-dir', work_dir), capsys, 'train.py')
    assert f'could not write {work_dir}/epoch_1.pth (No space left on device)' in line
    assert not osp.lexists(work_dir / 'epoch_1.pth')
    assert not osp.lexists(work_dir / 'epoch_1.pth.part')


def test_the_error_line_survives_a_full_disk(capsys):
    from mmengine.logging import MMLogger

    from mmdet_efficientdet.apis.tool_errors import run_tool
    MMLogger.get_instance('full_disk_test', log_file='/dev/full')

    def fails():
        raise RuntimeError('something broke')

    with pytest.raises(SystemExit):
        run_tool(fails, 'train.py')
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == ('train.py: error: RuntimeError: something broke (traceback in nowhere: it '
                    'could not be written (No space left on device))')


def test_resume_names_the_checkpoints_left_when_the_newest_cannot_be_read(small_data, tmp_path,
                                                                          capsys):
    cfg = tiny_config(tmp_path, small_data)
    work_dir = str(tmp_path / 'wd')
    _fake_checkpoints(work_dir)  # bytes that are no checkpoint, epoch_2.pth the newest
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'epoch_2.pth'))
    line = _one_line_error(call_tool('train', cfg, '--work-dir', work_dir, '--resume'), capsys,
                           'train.py')
    assert 'epoch_2.pth is not a PyTorch checkpoint' in line
    assert f'Pass --resume {work_dir}/epoch_1.pth to continue from the newest of them' in line
    line = _one_line_error(call_tool('train', cfg, '--work-dir', work_dir, '--resume',
                                     work_dir), capsys, 'train.py')
    assert f'--resume {work_dir} is a folder; give one of its checkpoints (epoch_1.pth, ' \
        'epoch_2.pth)' in line


def test_annotation_files_that_are_empty_or_no_json_are_named(own_data, tmp_path, capsys):
    ann = osp.join(own_data, 'annotations', 'instances_train.json')
    coco = _coco(own_data)
    _write_json(ann, dict(coco, images=[], annotations=[]))
    cfg = tiny_config(tmp_path, own_data, max_epochs=1)
    assert call_tool('check_dataset', cfg, '--splits', 'train') == 1
    out = capsys.readouterr()
    assert f'ERROR annotation file lists no image: an empty dataset: 1 (e.g. {ann})' in out.out
    assert 'check_dataset: 1 problem(s) found' in out.err
    line = _one_line_error(call_tool('train', cfg, '--work-dir', tmp_path / 'wd'), capsys,
                           'train.py')
    assert f'EmptyDatasetError: the dataset of {ann} holds no image' in line
    with open(ann, 'w') as f:
        f.write('{"images": [')  # cut off
    line = _one_line_error(call_tool('train', cfg, '--work-dir', tmp_path / 'wd2'), capsys,
                           'train.py')
    assert f'JSONDecodeError: {ann} is not valid JSON: ' in line


def test_sizes_and_options_that_cannot_work_are_refused_at_once(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data)
    line = _one_line_error(call_tool('train', cfg, '--work-dir', tmp_path / 'wd', '--cfg-options',
                                     'train_dataloader.dataset.pipeline.3.crop_size=(0,0)'),
                           capsys, 'train.py')
    assert ('ValueError: train_dataloader.dataset.pipeline[3] (RandomCrop): crop_size=(0, 0); '
            'sizes must be positive') in line
    assert not osp.exists(tmp_path / 'wd')
    # a dict value in --cfg-options (mmengine's parser would recurse until it fails)
    with pytest.raises(SystemExit) as exit:
        call_tool('train', cfg, '--cfg-options', 'model.neck.topology=[dict(level=3,inputs=[0])]')
    assert exit.value.code == 2
    assert 'takes numbers, strings, lists and tuples, not dict(...) values' in \
        capsys.readouterr().err


def _infer_inputs(tmp_path):
    """(the D0 demo config, a checkpoint of its model, an image) for tools/infer.py."""
    from PIL import Image
    checkpoint = _save(build(level_model('d0', num_classes=4)), tmp_path / 'd0.pth')
    demo = osp.join(osp.dirname(osp.dirname(__file__)),
                    'configs/efficientdet/efficientdet_d0_demo_synthetic.py')
    image = tmp_path / 'a.png'
    Image.new('RGB', (64, 48)).save(image)
    return demo, checkpoint, image


def test_tools_check_their_arguments_before_they_work(tmp_path, capsys):
    demo, checkpoint, image = _infer_inputs(tmp_path)
    assert call_tool('infer', demo, checkpoint, image, '--out-dir', tmp_path / 'o',
                     '--batch-size', '0') == 1
    assert error_line(capsys) == 'infer: --batch-size 0 must be 1 or more'
    assert call_tool('infer', demo, checkpoint, image, '--out-dir', tmp_path / 'o',
                     '--score-thr', '5') == 1
    assert error_line(capsys) == 'infer: --score-thr 5.0 must be a score, 0 to 1'
    assert not osp.exists(tmp_path / 'o')
    assert call_tool('export_onnx', demo, checkpoint, '--out', tmp_path / 'no' / 'm.onnx') == 1
    assert error_line(capsys) == (f'export_onnx: the folder of --out {tmp_path}/no/m.onnx does '
                                  f'not exist ({tmp_path}/no)')
    with pytest.raises(SystemExit) as exit:
        call_tool('benchmark', 'latency', '--level', 'd9')
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'd9'" in err and 'Traceback' not in err


def test_the_converter_never_overwrites_and_names_bad_files(tmp_path, capsys):
    source = tmp_path / 'src.pth'
    source.write_bytes(b'not a checkpoint\n')
    assert call_tool('convert_weights', source, source, '--level', 'd0') == 1
    assert error_line(capsys) == (f'convert_weights: DST {source} is the source file; write '
                                  'elsewhere')
    existing = tmp_path / 'dst.pth'
    existing.write_bytes(b'keep me')
    assert call_tool('convert_weights', source, existing, '--level', 'd0') == 1
    assert error_line(capsys) == (f'convert_weights: {existing} exists; pass --force to '
                                  'overwrite it')
    assert existing.read_bytes() == b'keep me' and source.read_bytes() == b'not a checkpoint\n'

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    evil = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, evil)
    for path, expected in ((source, 'is not a PyTorch checkpoint'),
                           (evil, 'holds Python objects that weights-only loading refuses')):
        line = _one_line_error(call_tool('convert_weights', path, tmp_path / 'out.pth',
                                         '--level', 'd0'), capsys, 'convert_weights.py')
        assert f'{path} {expected}' in line
    assert not osp.exists(tmp_path / 'out.pth')


def _small_and_thin(root, images=40, seed=0):
    """320x240 images with small (8-16 px) and thin (1:8) boxes."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'train'))
    os.makedirs(osp.join(root, 'annotations'))
    coco = dict(images=[], annotations=[], categories=[dict(id=1, name='thing')])
    for i in range(images):
        name = f'{i:04d}.png'
        Image.new('RGB', (320, 240), (100, 120, 140)).save(osp.join(root, 'train', name))
        coco['images'].append(dict(id=i + 1, file_name=name, width=320, height=240))
        for k in range(6):
            if k % 2 == 0:
                w = h = float(rng.uniform(8, 16))
            else:
                short = float(rng.uniform(6, 12))
                w, h = (short, 8 * short) if rng.random() < 0.5 else (8 * short, short)
            x, y = float(rng.uniform(0, 320 - w)), float(rng.uniform(0, 240 - h))
            coco['annotations'].append(dict(id=len(coco['annotations']) + 1, image_id=i + 1,
                                            category_id=1, bbox=[x, y, w, h], area=w * h,
                                            iscrowd=0))
    _write_json(osp.join(root, 'annotations', 'instances_train.json'), coco)
    return root


def test_check_dataset_reports_anchors_that_do_not_fit_and_a_fix(tmp_path, capsys):
    from mmengine.config import Config
    root = _small_and_thin(str(tmp_path / 'small_thin'))
    cfg = Config.fromfile(osp.join(osp.dirname(osp.dirname(__file__)),
                                   'configs/efficientdet/efficientdet_d0_8xb8-300e_coco.py'))
    cfg.train_dataloader.dataset.update(data_root=root + '/',
                                        ann_file='annotations/instances_train.json',
                                        data_prefix=dict(img='train/'),
                                        metainfo=dict(classes=('thing', )))
    cfg.model.bbox_head.num_classes = 1
    path = str(tmp_path / 'small_thin_d0.py')
    cfg.dump(path)
    # under half the boxes covered: an error by default, a note when the user says so
    assert call_tool('check_dataset', path, '--splits', 'train', '--anchor-images', '3') == 1
    out = capsys.readouterr().out
    assert 'is below --min-anchor-coverage 50 %' in out and 'no problem found' not in out
    assert call_tool('check_dataset', path, '--splits', 'train',
                     '--min-anchor-coverage', '0') == 0
    out = capsys.readouterr().out
    covered = float(out.split('    covered ')[1].split(' %')[0])
    assert covered < 50, out
    assert 'anchor_scale 4, ratios (1, 1) (1.4, 0.7) (0.7, 1.4); positive at IoU >= 0.5' in out
    assert 'covered by aspect: tall (w/h < 1/3) 0.0 %' in out
    suggestion = out.split('suggestion: ')[1].splitlines()[0]
    assert float(suggestion.split(' covers ')[1].split(' %')[0]) >= 90, suggestion
    # an error below a coverage the user asks for
    assert call_tool('check_dataset', path, '--splits', 'train', '--anchor-images', '3',
                     '--min-anchor-coverage', '60') == 1
    assert 'ERROR anchor coverage' in capsys.readouterr().out


def test_a_checkpoint_of_another_architecture_whose_shapes_fit_is_refused(tmp_path, capsys):
    """D0 into Lite0: every weight they share has the same shape, but D0 has squeeze-excite
    and fusion weights Lite0 lacks; refused through load_checkpoint and tools/test.py.
    Another class count (fine-tuning) still loads."""
    d0 = _save(build(level_model('d0', num_classes=4)), tmp_path / 'd0.pth')
    model = build(level_model('lite0', num_classes=4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=r'it holds \d+ weights this model does '
                       r'not have \(first: backbone\.blocks\.0\.0\.se\.conv1\.conv\.weight\)'):
        load_checkpoint(model, d0, map_location='cpu')
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    lite0_90 = _save(build(level_model('lite0', num_classes=90)), tmp_path / 'lite0_90.pth')
    load_checkpoint(model, lite0_90, map_location='cpu')  # fine-tuning: class layer skipped
    partial = build(dict(level_model('lite0', num_classes=4), partial_load=True))
    load_checkpoint(partial, d0, map_location='cpu')
    assert torch.equal(partial.backbone.stem.conv.weight,
                       torch.load(d0, weights_only=True)['state_dict']['backbone.stem.conv.weight'])


def test_fewer_model_classes_than_the_data_has_stop_the_run(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data, max_epochs=1,
                      **{'model.bbox_head.num_classes': 3})
    line = _one_line_error(call_tool('train', cfg, '--work-dir', tmp_path / 'wd'), capsys,
                           'train.py')
    assert ('the training set has 4 classes but model.bbox_head.num_classes=3: the boxes of the '
            'other 1 would train as background. Set model.bbox_head.num_classes=4') in line
    assert not [f for f in os.listdir(tmp_path / 'wd') if f.endswith('.pth')]


@pytest.mark.parametrize('how', ['child config', 'cfg-options'])
def test_an_image_size_the_pipelines_do_not_use_is_refused(how, small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data, max_epochs=1)
    args = []
    if how == 'child config':
        child = tmp_path / 'child.py'
        child.write_text(f"_base_ = '{cfg}'\nimage_size = 96\n")
        cfg = child
    else:
        args = ['--cfg-options', 'image_size=96']
    line = _one_line_error(call_tool('train', cfg, '--work-dir', tmp_path / 'wd', *args),
                           capsys, 'train.py')
    assert ('image_size=96, but the config uses 128 at model.data_preprocessor.pad_size_divisor '
            '(and 5 more): image_size only sets the sizes of the file that defines it') in line
    assert not osp.exists(tmp_path / 'wd')


def test_a_misspelt_cfg_options_key_is_refused_a_new_one_is_not(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data, max_epochs=1)
    line = _one_line_error(call_tool('train', cfg, '--work-dir', tmp_path / 'wd',
                                     '--cfg-options', 'trian_cfg.max_epochs=1'),
                           capsys, 'train.py')
    assert ('--cfg-options trian_cfg.max_epochs: unknown key trian_cfg (did you mean '
            'train_cfg?)') in line
    assert not osp.exists(tmp_path / 'wd')
    from mmengine.config import Config
    from mmdet_efficientdet.apis.runner_args import check_option_keys
    check_option_keys(Config.fromfile(cfg), {'my_note': 'kept', 'train_cfg.max_epochs': 2})


def test_resuming_a_complete_run_says_so(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data, max_epochs=1)
    work_dir = tmp_path / 'wd'
    assert call_tool('train', cfg, '--work-dir', work_dir) == 0
    before = _digests(work_dir)
    capsys.readouterr()
    assert call_tool('train', cfg, '--work-dir', work_dir, '--resume') == 1
    line = error_line(capsys)
    assert line.startswith('--resume: the checkpoint (') and line.endswith(
        'is at epoch 1 of max_epochs=1: the run is already complete. To train on, raise it '
        "(--cfg-options train_cfg.max_epochs=11; the param_scheduler's end follows the config "
        'that sets it)')
    assert _digests(work_dir) == before


def test_test_out_never_overwrites_without_force(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data)
    out = tmp_path / 'results.json'
    out.write_text('keep me')
    checkpoint = _save(build(level_model('lite0', num_classes=4)), tmp_path / 'c.pth')
    assert call_tool('test', cfg, checkpoint, '--out', out) == 1
    assert error_line(capsys) == f'test.py: --out {out} exists; pass --force to overwrite it'
    assert out.read_text() == 'keep me'


def test_quantize_never_overwrites_its_fp32_export_without_force(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data)
    fp32 = tmp_path / 'm_int8.fp32.onnx'
    fp32.write_bytes(b'an earlier export')
    assert call_tool('quantize', cfg, tmp_path / 'none.pth', '--out', tmp_path / 'm_int8.xml') == 1
    assert error_line(capsys) == f'quantize: {fp32} exists; pass --force to overwrite it'
    assert fp32.read_bytes() == b'an earlier export'


def test_infer_checks_its_out_dir_first_and_leaves_no_empty_one(tmp_path, capsys):
    demo, checkpoint, image = _infer_inputs(tmp_path)
    a_file = tmp_path / 'taken'
    a_file.write_text('keep')
    assert call_tool('infer', demo, checkpoint, image, '--out-dir', a_file) == 1
    assert error_line(capsys) == (f'infer: --out-dir {a_file} is a file; name a folder (new or '
                                  'existing)')
    assert a_file.read_text() == 'keep'
    text = tmp_path / 'in'
    text.mkdir()
    (text / 'notes.txt').write_text('no image')
    assert call_tool('infer', demo, checkpoint, text, '--out-dir', tmp_path / 'new') == 1
    assert error_line(capsys) == 'infer: no readable image to run on'
    assert not osp.exists(tmp_path / 'new')


@pytest.mark.parametrize('option,line', [
    (['--shape', '-256', '256'], 'export_onnx: --shape -256 256: height and width must be 1 or '
     'more'),
    (['--batch-size', '0'], 'export_onnx: --batch-size 0 must be 1 or more')])
def test_export_refuses_sizes_that_cannot_be_and_writes_nothing(option, line, tmp_path, capsys):
    demo = osp.join(osp.dirname(osp.dirname(__file__)),
                    'configs/efficientdet/efficientdet_d0_demo_synthetic.py')
    out = tmp_path / 'm.onnx'
    assert call_tool('export_onnx', demo, tmp_path / 'none.pth', '--out', out, *option) == 1
    assert error_line(capsys) == line
    assert os.listdir(tmp_path) == []


def test_evaluating_a_checkpoint_of_other_classes_is_refused(small_data, tmp_path, capsys):
    cfg = tiny_config(tmp_path, small_data)
    c90 = _save(build(level_model('lite0', num_classes=90)), tmp_path / 'c90.pth')
    line = _one_line_error(call_tool('test', cfg, c90, '--work-dir', tmp_path / 't'), capsys,
                           'test.py')
    assert ('the checkpoint is of 90 classes and the model of 4: evaluated, its class layer '
            'would be random. Evaluate with model.bbox_head.num_classes=90') in line
