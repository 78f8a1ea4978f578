import pytest
import torch

from mmdet_efficientdet.models import BiFPNNeck
from mmdet_efficientdet.models.layers import MaxPool2dSame, WeightedFusion
from mmdet_efficientdet.models.necks import bifpn_topology, fpn_topology, pan_topology

from ..conftest import LEVELS, build, level_model, load_schema, num_params, schema_params


def _features(in_channels, height, width, batch=2):  # BN in train mode needs batch > 1
    return [torch.randn(batch, c, -(-height // s), -(-width // s))
            for c, s in zip(in_channels, (8, 16, 32))]


@pytest.mark.parametrize('level', LEVELS)
def test_param_count_equals_effdet_fpn(level):
    neck = build(level_model(level)['neck'])
    assert num_params(neck) == schema_params(load_schema(level), 'fpn.')


def test_fusion_modes():
    a, b = torch.full((1, 2, 3, 3), 2.0), torch.full((1, 2, 3, 3), 4.0)
    fast = WeightedFusion(2, 'fast')
    with torch.no_grad():
        fast.weights.copy_(torch.tensor([1.0, 3.0]))
    assert torch.allclose(fast([a, b]), (2.0 * 1 + 4.0 * 3) / (4 + 1e-4) * torch.ones_like(a))
    soft = WeightedFusion(2, 'softmax')
    with torch.no_grad():
        soft.weights.copy_(torch.tensor([0.0, 1.0]))
    w = torch.softmax(torch.tensor([0.0, 1.0]), 0)
    assert torch.allclose(soft([a, b]), (2 * w[0] + 4 * w[1]) * torch.ones_like(a))
    summed = WeightedFusion(2, 'sum')
    assert summed.weights is None and torch.equal(summed([a, b]), a + b)
    with pytest.raises(ValueError, match="unknown fusion mode 'mean'; valid choices: fast, "
                                         'softmax, sum'):
        WeightedFusion(2, 'mean')


def test_fast_weights_stay_non_negative_and_get_gradients():
    fusion = WeightedFusion(3, 'fast')
    with torch.no_grad():
        fusion.weights.copy_(torch.tensor([-2.0, 0.5, 1.5]))
    weights = fusion.normalized_weights()
    assert (weights >= 0).all() and weights[0] == 0 and weights.sum() <= 1
    torch.manual_seed(0)
    neck = BiFPNNeck([8, 16, 32], 16, num_repeats=2)
    # a random projection of the outputs, not their sum: each output leaves a train-mode BN,
    # whose sum is constant, so the last node's weights got only rounding noise (at times 0)
    outputs = neck(_features([8, 16, 32], 64, 64))
    sum((o * torch.randn_like(o)).sum() for o in outputs).backward()
    for name, param in neck.named_parameters():
        if name.endswith('fusion.weights'):
            assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize('topology,nodes_per_cell',
                         [('bifpn', 8), ('pan', 10), ('fpn', 5)])
def test_topologies(topology, nodes_per_cell):
    neck = BiFPNNeck([8, 16, 32], 16, num_repeats=2, topology=topology)
    assert len(neck.cells[0].nodes) == nodes_per_cell
    outs = neck(_features([8, 16, 32], 64, 96))
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 8, 12), (16, 4, 6), (16, 2, 3),
                                                  (16, 1, 2), (16, 1, 1)]


@pytest.mark.parametrize('topology,message', [
    ([], r'topology \[\]: expected a non-empty list of nodes'),
    ([dict(level=0, inputs=[0, 5]), dict(level=1, inputs=[1, 2])],
     r"node 0 \{'level': 0, 'inputs': \[0, 5\]\}: inputs must be a non-empty list of ids in "
     r'\[0, 1\] .*got \[0, 5\]'),
    ([dict(level=0, inputs=1)], r'node 0 .*: inputs must be a non-empty list .*got 1'),
    ([dict(level='P3', inputs=[0])], r"node 0 .*: level must be an int in \[0, 1\].*got 'P3'"),
    ([dict(level=0, inputs=[0, 1]), 'P4'], r"node 1 'P4': expected dict\(level=l"),
    ([dict(level=0, inputs=[0, 1])], r'no node computes level\(s\) \[1\]'),
])
def test_topology_mistakes_are_named(topology, message):
    with pytest.raises(ValueError, match=message):
        BiFPNNeck([8, 16], 8, num_outs=2, topology=topology)


def test_topology_lists_are_data():
    assert bifpn_topology(5)[4] == dict(level=1, inputs=[1, 7, 8])  # P4 out: in, td, P3 out
    assert fpn_topology(3) == [dict(level=2, inputs=[2]), dict(level=1, inputs=[1, 3]),
                               dict(level=0, inputs=[0, 4])]
    assert pan_topology(3)[3:] == [dict(level=0, inputs=[5]), dict(level=1, inputs=[4, 6]),
                                   dict(level=2, inputs=[3, 7])]
    custom = [dict(level=0, inputs=[0, 1]), dict(level=1, inputs=[1, 2])]  # a tiny 2-node cell
    neck = BiFPNNeck([8, 16], 8, num_outs=2, topology=custom)
    assert len(neck(_features([8, 16], 32, 32))) == 2
    with pytest.raises(ValueError, match="unknown topology 'nas'; valid choices: bifpn, pan, "
                                         'fpn'):
        BiFPNNeck([8, 16], 8, topology='nas')


@pytest.mark.parametrize('height,width', [(375, 500), (427, 640)])
def test_any_input_size(height, width):
    neck = BiFPNNeck([40, 112, 320], 64, num_repeats=3).eval()
    with torch.no_grad():
        outs = neck(_features([40, 112, 320], height, width))
    h, w = -(-height // 8), -(-width // 8)
    for out in outs:
        assert tuple(out.shape[-2:]) == (h, w)
        h, w = -(-h // 2), -(-w // 2)


def test_max_pool_same_pads_with_minus_inf():
    x = -torch.ones(1, 1, 3, 3)
    assert MaxPool2dSame(3, 2)(x).max() == -1  # zero padding would give 0


def test_d7x_has_six_levels_and_checks_inputs():
    neck = build(dict(level_model('d7x')['neck'], num_repeats=1, out_channels=16))
    outs = neck(_features([80, 224, 640], 128, 128))
    assert len(outs) == 6 and outs[-1].shape[-1] == 1
    with pytest.raises(ValueError, match='expects 3 inputs'):
        neck(_features([80, 224], 128, 128))


@pytest.mark.parametrize('topology', ['bifpn', 'pan', 'fpn'])
@pytest.mark.parametrize('fusion', ['sum', 'fast'])
def test_feature_maps_are_never_modified_in_place(topology, fusion):
    # inputs of the cell's width: no resampling conv in front of the nodes, so a one-input
    # node (PAN, FPN tops) hands its input map itself to the activation
    neck = BiFPNNeck([16, 16, 16], 16, num_outs=3, num_repeats=2, topology=topology,
                     fusion=fusion)
    inputs = [x.requires_grad_() for x in _features([16, 16, 16], 64, 96)]
    before = [x.detach().clone() for x in inputs]
    outputs = neck(inputs)
    assert all(torch.equal(x, y) for x, y in zip(inputs, before))
    sum(o.sum() for o in outputs).backward()  # autograd sees no in-place change either
    assert all(x.grad is not None for x in inputs)
