"""Deploy mode (BN folded, static padding) and ONNX export checked with onnxruntime."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmdet.structures import DetDataSample
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet_efficientdet.deploy import (DetectorForExport, export_onnx, onnx_session,
                                       same_detections, switch_to_deploy)
from mmdet_efficientdet.models.layers import MaxPool2dSame

from .conftest import HARD_NMS, ROOT, build, level_model, load_predict_fixture, load_tool

DEMO_D0 = osp.join(ROOT, 'configs/efficientdet/efficientdet_d0_demo_synthetic.py')


def _model(level, num_classes=80, seed=0):
    """A model whose BNs hold non-trivial statistics (folding them must matter)."""
    torch.manual_seed(seed)
    model = build(level_model(level, num_classes=num_classes))
    model.init_weights()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                # mild: B7's 55 blocks would amplify stronger ones into outputs of ~1e3
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.8, 1.25)
                module.weight.uniform_(0.8, 1.2)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def _raw(model, inputs):
    with torch.no_grad():
        cls_scores, bbox_preds = model.bbox_head(model.extract_feat(inputs))
    return list(cls_scores) + list(bbox_preds)


@pytest.mark.parametrize('level,size', [('d0', (256, 384)), ('d7x', (128, 192)),
                                        ('lite0', (160, 224))])
def test_deploy_mode_folds_and_keeps_outputs(level, size):
    model = _model(level)
    inputs = torch.randn(1, 3, *size)
    expected = _raw(model, inputs)
    switch_to_deploy(model, size)
    assert not [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert not [m for m in model.modules()
                if isinstance(m, (Conv2dAdaptivePadding, MaxPool2dSame))]
    outputs = _raw(model, inputs)
    assert max((o - e).abs().max().item() for o, e in zip(outputs, expected)) <= 1e-4


def test_deploy_mode_keeps_the_models_dtype():
    model = _model('d0').double()
    inputs = torch.randn(1, 3, 128, 128, dtype=torch.float64)
    expected = _raw(model, inputs)
    switch_to_deploy(model, (128, 128))
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    outputs = _raw(model, inputs)
    assert max((o - e).abs().max().item() for o, e in zip(outputs, expected)) <= 1e-10


def test_deploy_mode_without_a_size_keeps_any_size():
    model = _model('d0')
    inputs = [torch.randn(1, 3, 128, 160), torch.randn(1, 3, 200, 96)]
    expected = [_raw(model, x) for x in inputs]
    switch_to_deploy(model)
    for x, e in zip(inputs, expected):
        assert max((o - r).abs().max().item() for o, r in zip(_raw(model, x), e)) <= 1e-4


def test_static_max_pool_is_the_same_pooling_without_a_pad():
    """Deploy mode's max-pool for a fixed size equals TF "same" pooling at every size, and
    BiFPN's 3x3 stride-2 pool needs no separate pad (ceil mode takes the pad after) where
    its window fits the input and the pad before (what OpenVINO accepts)."""
    from mmdet_efficientdet.deploy.static_padding import _static_pool
    for kernel, stride in ((3, 2), (2, 2), (3, 1), (5, 2)):
        pool = MaxPool2dSame(kernel, stride)
        for height in range(1, 12):
            for width in (1, 3, 7, 10):
                x = torch.randn(1, 2, height, width)
                static = _static_pool(pool, (height, width))
                assert torch.equal(static(x), pool(x)), (kernel, stride, height, width)
                if type(static) is torch.nn.MaxPool2d:
                    assert min(side + 2 * pad for side, pad in
                               zip((height, width), static.padding)) >= kernel
                elif (kernel, stride) == (3, 2):
                    assert height == 2, (height, width)  # 2 + 0 before < 3


@pytest.mark.parametrize('size', [(128, 128), (160, 224)])
def test_onnx_raw_outputs_equal_pytorch(size, tmp_path):
    model = _model('d0', seed=1)
    inputs = torch.randn(1, 3, *size)
    expected = _raw(model, inputs)
    path = str(tmp_path / 'd0.onnx')
    export_onnx(model, path, size)
    outputs = onnx_session(path).run(None, {'inputs': inputs.numpy()})
    assert len(outputs) == 10
    assert max(np.abs(o - e.numpy()).max() for o, e in zip(outputs, expected)) <= 1e-4


def test_onnx_dynamic_size_raw_outputs_equal_pytorch(tmp_path):
    """Traced at one size, run at others (odd ones, another batch size): padding and
    upsampling follow the input."""
    model = _model('d0', seed=3)
    reference = copy.deepcopy(model)
    path = str(tmp_path / 'd0_dynamic.onnx')
    export_onnx(model, path, (128, 128), dynamic=True)
    session = onnx_session(path)
    for shape in [(1, 3, 224, 320), (2, 3, 136, 200)]:
        inputs = torch.randn(*shape)
        expected = _raw(reference, inputs)
        outputs = session.run(None, {'inputs': inputs.numpy()})
        assert [o.shape for o in outputs] == [tuple(e.shape) for e in expected]
        assert max(np.abs(o - e.numpy()).max() for o, e in zip(outputs, expected)) <= 1e-4


@pytest.mark.parametrize('dynamic', [False, True])
def test_onnx_detections_equal_predict(dynamic, tmp_path):
    from mmdet_efficientdet.converters import convert_effdet_state_dict
    fixture = load_predict_fixture('d0')
    model = build(level_model('d0', num_classes=90, nms=HARD_NMS)).eval()
    model.load_state_dict(convert_effdet_state_dict(fixture['state_dict'], 90))
    inputs = torch.cat([fixture['input'], fixture['input'].flip(-1)])
    shape = tuple(inputs.shape[-2:])
    samples = [DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, scale_factor=(1, 1),
                                           batch_input_shape=shape)) for _ in range(2)]
    with torch.no_grad():
        expected = model.predict(inputs, samples, rescale=False)
    path = str(tmp_path / 'd0_det.onnx')
    # a dynamic graph is traced at another size than it runs at
    export_onnx(copy.deepcopy(model), path, (256, 384) if dynamic else shape, batch_size=2,
                detections=True, dynamic=dynamic)
    dets, labels = onnx_session(path).run(None, {'inputs': inputs.numpy()})
    assert dets.shape == (2, 100, 5) and labels.shape == (2, 100)
    for image, sample in enumerate(expected):
        ref = sample.pred_instances
        ref_dets = torch.cat([ref.bboxes, ref.scores[:, None]], 1)
        assert len(ref) == (labels[image] >= 0).sum() > 50
        assert same_detections(ref_dets, ref.labels, torch.from_numpy(dets[image]),
                               torch.from_numpy(labels[image])) == (len(ref), len(ref))


def test_graph_selection_drops_what_ranks_beyond_nms_pre(monkeypatch):
    """The graph's NMS runs over a superset of the nms_pre best pairs; with nms_pre=60 the
    reference keeps fewer than max_per_img boxes, and so must the graph (it would keep more
    of the superset were the boxes ranked beyond nms_pre not dropped). The superset is made
    loose here (its first bound only) so that it holds many more than 60."""
    from mmdet_efficientdet.deploy import graph_selection
    loose = graph_selection.pairs_above_bound
    monkeypatch.setattr(graph_selection, 'pairs_above_bound',
                        lambda *args: loose(*args, bins=()))
    model = _model('d0', num_classes=20)
    model.bbox_head.test_cfg.nms = dict(HARD_NMS)
    model.bbox_head.test_cfg.nms_pre = 60
    inputs = torch.randn(2, 3, 128, 128)
    shape = tuple(inputs.shape[-2:])
    samples = [DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, scale_factor=(1, 1),
                                           batch_input_shape=shape)) for _ in range(2)]
    with torch.no_grad():
        expected = model.predict(inputs, samples, rescale=False)
        head = model.bbox_head
        superset = graph_selection.graph_candidates(head, *head(model.extract_feat(inputs)),
                                                    60, [shape] * 2)
        dets, labels = DetectorForExport(model, detections=True)(inputs)
    for image, sample in enumerate(expected):
        ref = sample.pred_instances
        assert len(superset[image][0]) > 100 > len(ref)
        ref_dets = torch.cat([ref.bboxes, ref.scores[:, None]], 1)
        assert (labels[image] >= 0).sum() == len(ref)
        assert same_detections(ref_dets, ref.labels, dets[image],
                               labels[image]) == (len(ref), len(ref))


def test_onnx_detections_need_the_reference_selection():
    model = build(level_model('d0'))  # the COCO configs' soft-NMS
    with pytest.raises(ValueError, match="nms=dict\\(type='nms'"):
        DetectorForExport(model, detections=True)


def _demo_checkpoint(tmp_path, seed):
    model = _model('d0', num_classes=4, seed=seed)
    checkpoint = str(tmp_path / 'd0.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    return checkpoint


def test_export_tool_checks_and_never_overwrites(tmp_path, capsys):
    checkpoint = _demo_checkpoint(tmp_path, 2)
    out = tmp_path / 'demo.onnx'
    export = load_tool('export_onnx')
    export.main([DEMO_D0, checkpoint, '--out', str(out)])
    stdout = capsys.readouterr().out
    assert 'inputs (N=1, 3, 192, 192)' in stdout
    assert float(stdout.split('max |Δ| = ')[1].split()[0]) <= 1e-4
    before = out.read_bytes()
    with pytest.raises(SystemExit, match='exists; pass --force'):
        export.main([DEMO_D0, checkpoint, '--out', str(out), '--detections'])
    assert out.read_bytes() == before


def test_export_tool_dynamic_size_is_checked_at_a_second_size(tmp_path, capsys):
    checkpoint = _demo_checkpoint(tmp_path, 4)
    load_tool('export_onnx').main([DEMO_D0, checkpoint, '--dynamic', '--out',
                                   str(tmp_path / 'dynamic.onnx')])
    stdout = capsys.readouterr().out
    assert 'inputs (N, 3, H, W)' in stdout
    errors = {line.split(' at ')[1].split(':')[0]: float(line.split('max |Δ| = ')[1])
              for line in stdout.splitlines() if 'max |Δ|' in line}
    assert list(errors) == ['192x192', '152x232'] and max(errors.values()) <= 1e-4


def test_bifpn_in_retinanet_exports_in_deploy_form(tmp_path):
    """Any single-stage config of ours exports: here mmdet's RetinaNet with our BiFPN (BN
    folded and max-pool padding made static without an EfficientDetector)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs/bifpn_in/retinanet_r50_bifpn_1x_coco.py'))
    cfg.model.backbone.init_cfg = None  # no download: random weights are enough here
    torch.manual_seed(5)
    model = build(cfg.model).eval()
    inputs = torch.randn(1, 3, 160, 192)
    expected = _raw(model, inputs)
    path = str(tmp_path / 'retinanet_bifpn.onnx')
    export_onnx(model, path, (160, 192))
    assert not [m for m in model.modules() if isinstance(m, (_BatchNorm, MaxPool2dSame))]
    outputs = onnx_session(path).run(None, {'inputs': inputs.numpy()})
    assert len(outputs) == 10
    assert max(np.abs(o - e.numpy()).max() for o, e in zip(outputs, expected)) <= 1e-4


def test_runtime_detector_preprocesses_as_the_config_does(tmp_path):
    """RuntimeDetector preprocesses a batch in numpy (torch's OpenMP workers would spin on
    the cores the runtime needs next): the same batch, bit for bit, and the same sample
    metadata as the config's DetDataPreprocessor, hence the same detections; what it does
    not cover goes through the preprocessor itself."""
    from mmdet_efficientdet.deploy import RuntimeDetector
    model = _model('d0', num_classes=4)
    model.bbox_head.test_cfg.nms = dict(HARD_NMS)
    path = str(tmp_path / 'd0_det.onnx')
    export_onnx(copy.deepcopy(model), path, (128, 128), batch_size=1, detections=True)
    preprocessor = dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=128,
                        pad_value=3)  # not 0: padding must come after normalising
    detector = RuntimeDetector(path, 'onnxruntime', preprocessor)
    generator = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=generator)
              for h, w in ((96, 128), (128, 80))]

    def data():
        return dict(inputs=list(images), data_samples=[
            DetDataSample(metainfo=dict(img_shape=tuple(i.shape[1:]), ori_shape=(256, 256),
                                        scale_factor=(0.5, 0.5))) for i in images])

    expected = detector.data_preprocessor(data())
    inputs, samples = detector.numpy_batch(data())
    assert inputs.dtype == torch.float32 and torch.equal(inputs, expected['inputs'])
    for sample, reference in zip(samples, expected['data_samples']):
        assert sample.batch_input_shape == reference.batch_input_shape == (128, 128)
        assert sample.pad_shape == reference.pad_shape == (128, 128)
    fast = detector.test_step(data())
    torch_path = super(RuntimeDetector, detector).test_step(data())
    stacked = data()
    stacked['inputs'] = torch.stack(images[:1] + [torch.zeros_like(images[0])])  # not covered
    assert detector.numpy_batch(stacked) is None
    covered = detector.test_step(stacked)[0].pred_instances
    assert len(covered) and torch.equal(covered.bboxes, fast[0].pred_instances.bboxes)
    # a graph of batch 2 runs a batch of 3 as 2 + (1 and a blank image)
    path = str(tmp_path / 'd0_det_batch2.onnx')
    export_onnx(copy.deepcopy(model), path, (128, 128), batch_size=2, detections=True)
    images.append(images[0].flip(-1))
    batched = RuntimeDetector(path, 'onnxruntime', preprocessor).test_step(data())
    assert len(batched) == 3
    for a, b in zip(fast + detector.test_step(data())[2:], batched):
        a, b = a.pred_instances, b.pred_instances
        assert torch.allclose(a.bboxes, b.bboxes, atol=1e-3) and torch.equal(a.labels, b.labels)
    for a, b in zip(fast, torch_path):
        a, b = a.pred_instances, b.pred_instances
        assert len(a) > 0 and torch.equal(a.bboxes, b.bboxes) and torch.equal(a.labels, b.labels)


def test_a_new_runtime_is_one_registered_class(tmp_path, capsys):
    """A third runtime, registered here as a file of its own would register it: the tools
    take it by name (export_onnx's check, test.py's and infer.py's --backend, RuntimeDetector)
    with no edit of theirs."""
    from mmdet_efficientdet.deploy import RUNTIMES, Runtime, runtime_names
    from mmdet_efficientdet.deploy.runtimes import OnnxRuntime
    calls = []

    class CountingRuntime(Runtime):
        """onnxruntime, counting the batches it runs."""

        def open(self, path, num_threads, precision):
            run, batch = OnnxRuntime().open(path, num_threads, precision)

            def counted(inputs):
                calls.append(inputs.shape)
                return run(inputs)

            return counted, batch

    RUNTIMES.register_module(name='counting', module=CountingRuntime)
    try:
        assert 'counting' in runtime_names()
        checkpoint = _demo_checkpoint(tmp_path, 3)
        out = tmp_path / 'det.onnx'
        load_tool('export_onnx').main([DEMO_D0, checkpoint, '--out', str(out), '--detections',
                                       '--backend', 'counting'])
        assert calls and 'max |Δ|' not in capsys.readouterr().err
        from mmdet.registry import MODELS
        detector = MODELS.build(dict(type='RuntimeDetector', model_file=str(out),
                                     backend='counting',
                                     data_preprocessor=dict(type='DetDataPreprocessor')))
        before = len(calls)
        detector.run(np.zeros((1, 3, 192, 192), np.float32))
        assert len(calls) == before + 1
        args = load_tool('test').parse_args([DEMO_D0, '--backend', 'counting', '--model',
                                             str(out)])
        assert args.backend == 'counting'
    finally:
        RUNTIMES.module_dict.pop('counting')
    assert 'counting' not in runtime_names()
