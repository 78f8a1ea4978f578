import pytest

from mmdet_efficientdet.scaling import (D_LEVELS, EFFICIENTNET_SCALING, efficientdet_dims,
                                        efficientnet_blocks, efficientnet_out_channels,
                                        make_divisible)


def test_make_divisible_never_below_90_percent():
    assert make_divisible(32 * 1.1) == 32      # 35.2 → 32 (32 ≥ 0.9 · 35.2)
    assert make_divisible(16 * 1.1) == 16      # 17.6 → 16 (≥ 90 %)
    assert make_divisible(320 * 1.4) == 448
    assert make_divisible(11) == 16            # 8 < 0.9 * 11 → bumped
    for value in range(8, 2000):
        assert make_divisible(value) % 8 == 0 and make_divisible(value) >= 0.9 * value


def test_known_timm_channels_and_depths():
    assert efficientnet_out_channels('b0') == [16, 24, 40, 112, 320]
    assert efficientnet_out_channels('b3') == [24, 32, 48, 136, 384]
    assert efficientnet_out_channels('b7') == [32, 48, 80, 224, 640]
    assert [len(s) for s in efficientnet_blocks('b0')] == [1, 2, 2, 3, 3, 4, 1]
    assert [len(s) for s in efficientnet_blocks('b7')] == [4, 7, 7, 10, 10, 13, 4]


def test_d_table_is_the_papers():
    rows = {k: (v.backbone, v.input_size, v.width, v.fpn_repeats, v.head_repeats)
            for k, v in D_LEVELS.items() if not k.startswith('lite')}
    assert rows == {
        'd0': ('b0', 512, 64, 3, 3), 'd1': ('b1', 640, 88, 4, 3), 'd2': ('b2', 768, 112, 5, 3),
        'd3': ('b3', 896, 160, 6, 4), 'd4': ('b4', 1024, 224, 7, 4),
        'd5': ('b5', 1280, 288, 7, 4), 'd6': ('b6', 1280, 384, 8, 5),
        'd7': ('b6', 1536, 384, 8, 5), 'd7x': ('b7', 1536, 384, 8, 5)}
    assert [k for k, v in D_LEVELS.items() if v.fusion == 'sum' and not k.startswith('lite')
            ] == ['d6', 'd7', 'd7x']
    assert D_LEVELS['d7'].anchor_scale == 5.0
    assert efficientdet_dims('d7x')['strides'] == [8, 16, 32, 64, 128, 256]
    assert set(EFFICIENTNET_SCALING) == {f'b{i}' for i in range(8)} | {f'lite{i}' for i in range(5)}


def test_unknown_level_and_arch_name_the_choices():
    with pytest.raises(ValueError, match="unknown EfficientDet level 'd8'.*d0.*d7x.*lite4"):
        efficientdet_dims('d8')
    with pytest.raises(ValueError, match="unknown EfficientNet arch 'b9'.*b0.*b7.*lite4"):
        efficientnet_blocks('b9')
