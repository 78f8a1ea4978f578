import io

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer

from mmdet_efficientdet.safe_globals import mmengine_checkpoint_globals


def _checkpoint():
    hub = MessageHub.get_instance('safe_globals_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(1.25))
    hub.update_info('epoch', np.int64(3))
    return dict(meta=dict(epoch=3, seed=np.int64(7)), message_hub=hub.state_dict(),
                state_dict={'w': torch.ones(2)})


def test_mmengine_checkpoint_loads_weights_only():
    buffer = io.BytesIO()
    torch.save(_checkpoint(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer)  # weights_only=True is torch's default
    history = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer) and history.current() == 1.25
    assert history.mean() == pytest.approx(1.375) and history.max() == 1.5  # defaults restored


def test_only_the_needed_classes_are_allowed():
    assert getattr not in torch.serialization.get_safe_globals()
    names = {getattr(g, '__name__', str(g)) for g in mmengine_checkpoint_globals()}
    assert names == {'HistoryBuffer', 'ndarray', '_reconstruct', 'dtype', 'scalar',
                     'Float64DType', 'Float32DType', 'Float16DType', 'Int64DType', 'Int32DType',
                     'BoolDType'}


def test_weights_only_still_refuses_other_globals():
    class Evil:
        def __reduce__(self):
            return (print, ('unpickled code ran',))

    buffer = io.BytesIO()
    torch.save({'x': Evil()}, buffer)
    buffer.seek(0)
    with pytest.raises(Exception, match='Unsupported global|not an allowed global'):
        torch.load(buffer)
