import pytest

from mmdet_efficientdet.scaling import (efficientdet_dims, efficientnet_blocks,
                                        efficientnet_out_channels)


def test_known_timm_channels_and_depths():
    assert efficientnet_out_channels('b0') == [16, 24, 40, 112, 320]
    assert efficientnet_out_channels('b3') == [24, 32, 48, 136, 384]
    assert efficientnet_out_channels('b7') == [32, 48, 80, 224, 640]
    assert [len(s) for s in efficientnet_blocks('b0')] == [1, 2, 2, 3, 3, 4, 1]
    assert [len(s) for s in efficientnet_blocks('b7')] == [4, 7, 7, 10, 10, 13, 4]


def test_unknown_level_and_arch_name_the_choices():
    with pytest.raises(ValueError, match="unknown EfficientDet level 'd8'.*d0.*d7x.*lite4"):
        efficientdet_dims('d8')
    with pytest.raises(ValueError, match="unknown EfficientNet arch 'b9'.*b0.*b7.*lite4"):
        efficientnet_blocks('b9')
