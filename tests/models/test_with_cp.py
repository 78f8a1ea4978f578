"""Activation checkpointing (backbone blocks, BiFPN cells, head subnets) changes memory, not
results: identical outputs and gradients."""
import torch

from ..conftest import build, level_model


def _outputs_and_grads(with_cp, state=None):
    torch.manual_seed(0)
    model = build(level_model('d0', num_classes=3, with_cp=with_cp, drop_path_rate=0.2))
    if state is not None:
        model.load_state_dict(state)
    model.train()
    inputs = torch.randn(2, 3, 128, 160, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)  # the same drop-path draws (checkpointing replays the RNG)
    cls_scores, bbox_preds = model.bbox_head(model.extract_feat(inputs))
    loss = sum((o.float() ** 2).mean() for o in cls_scores + bbox_preds)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()
             if p.grad is not None}
    return model, [o.detach() for o in cls_scores + bbox_preds], grads


def test_with_cp_gives_identical_outputs_and_gradients():
    plain, outputs, grads = _outputs_and_grads(False)
    checkpointed, cp_outputs, cp_grads = _outputs_and_grads(True, plain.state_dict())
    assert (checkpointed.backbone.with_cp and checkpointed.neck.with_cp
            and checkpointed.bbox_head.with_cp)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(outputs, cp_outputs))
    assert grads.keys() == cp_grads.keys() and len(grads) > 300
    worst = max(((grads[k] - cp_grads[k]).abs().max() / (grads[k].abs().max() + 1e-12)).item()
                for k in grads)
    assert worst < 1e-4, worst
