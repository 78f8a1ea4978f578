"""Our hooks as a Runner calls them, on every rank of a distributed run."""
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from mmdet_efficientdet.engine.hooks import check_dataset_hook
from mmdet_efficientdet.engine.hooks.check_dataset_hook import (CheckDatasetHook,
                                                                TrainingDataError)


def _runner(cfg, warnings):
    logger = SimpleNamespace(warning=warnings.append)
    return SimpleNamespace(cfg=cfg, logger=logger)


@pytest.mark.parametrize('rank', [0, 1])
def test_one_rank_checks_the_others_take_its_verdict(rank, tmp_path, monkeypatch):
    """Rank 0 reads the data; another rank reads nothing and stops with rank 0's error."""
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        data_root=str(tmp_path), ann_file='missing.json', data_prefix=dict(img='')))))
    reads, sent = [], []
    real_check = check_dataset_hook.check_coco_dataset

    def counted_check(*args, **kwargs):
        reads.append(args[0])
        return real_check(*args, **kwargs)

    def broadcast(objects, src):
        assert src == 0
        if rank == 0:
            sent.append(objects[0])
        else:  # what rank 0 sends
            objects[0] = ('the training set has images that cannot be read: x', None)

    monkeypatch.setattr(check_dataset_hook, 'check_coco_dataset', counted_check)
    monkeypatch.setattr(check_dataset_hook, 'get_rank', lambda: rank)
    monkeypatch.setattr(check_dataset_hook, 'get_world_size', lambda: 2)
    monkeypatch.setattr(check_dataset_hook, 'broadcast_object_list', broadcast)
    warnings = []
    if rank == 0:
        CheckDatasetHook().before_train(_runner(cfg, warnings))  # no ann file: nothing to say
        assert reads == ['train'] and sent == [(None, None)]
    else:
        with pytest.raises(TrainingDataError, match='cannot be read: x'):
            CheckDatasetHook().before_train(_runner(cfg, warnings))
        assert reads == []
