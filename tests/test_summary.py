"""cnncore.summary: receptive fields, jumps, parameter and MAC counts against the
formulas worked out by hand (r_out = r_in + (k - 1) * d * j_in, j_out = j_in * s)."""
import numpy as np

from cnncore import nn
from cnncore.summary import summary


def _by_kind(layers):
    return {lay.kind: lay for lay in layers}


def test_dilation_widens_the_receptive_field():
    layers, _ = summary(nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2)), (1, 1, 12, 12))
    assert list(layers[0].rf) == [5, 5] and list(layers[0].jump) == [1, 1]


def test_receptive_field_chain_by_hand():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.ReLU(),
                          nn.Conv2d(2, 2, 3, dilation=2), nn.MaxPool2d(2),
                          nn.Conv2d(2, 2, (1, 3)))
    layers, totals = summary(model, (1, 1, 40, 40))
    rfs = [tuple(lay.rf) for lay in layers]
    jumps = [tuple(lay.jump) for lay in layers]
    # conv k3 s2: 1 + 2 = 3, jump 2; relu keeps; conv k3 d2: 3 + 2*2*2 = 11;
    # maxpool 2: 11 + 1*2 = 13, jump 4; conv (1, 3): (13, 13 + 2*4 = 21)
    assert rfs == [(3, 3), (3, 3), (11, 11), (13, 13), (13, 21)]
    assert jumps == [(2, 2), (2, 2), (2, 2), (4, 4), (4, 4)]
    assert totals["output_shape"] == (1, 2, 7, 5)


def test_transposed_convolution_halves_the_jump():
    layers, _ = summary(nn.Sequential(nn.ConvTranspose2d(1, 2, 3, stride=2),
                                      nn.Conv2d(2, 2, 3, dilation=2)), (1, 1, 8, 8))
    assert [list(lay.jump) for lay in layers] == [[0.5, 0.5], [0.5, 0.5]]
    # 3, then 3 + (3 - 1) * 2 * 0.5 = 5
    assert [list(lay.rf) for lay in layers] == [[3, 3], [5, 5]]


def test_params_and_macs_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    layers, totals = summary(model, (1, 3, 10, 10))
    conv, lin = layers[0], layers[-1]
    assert conv.params == 3 * 8 * 9 + 8 and conv.macs == 8 * 8 * 8 * 3 * 9
    assert lin.params == 512 * 10 + 10 and lin.macs == 10 * 512
    assert totals["params"] == conv.params + lin.params
    assert totals["macs"] == conv.macs + lin.macs
    assert totals["input_shape"] == (1, 3, 10, 10) and totals["output_shape"] == (1, 10)


def test_leaves_report_output_shapes_in_call_order():
    layers, _ = summary(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AvgPool2d(2)),
                        (2, 1, 6, 6))
    assert [lay.output_shape for lay in layers] == [(2, 4, 6, 6), (2, 4, 3, 3)]
    assert np.isclose(layers[1].params, 0)


def test_pool_dilation_adaptive_and_separable_windows():
    model = nn.Sequential(nn.MaxPool2d(2, stride=1, dilation=3),          # extent 4, stride 1
                          nn.DepthwiseSeparableConv2d(1, 2, 3, dilation=2),  # extent 5
                          nn.AdaptiveAvgPool2d((2, None)))
    layers, _ = summary(model, (1, 1, 15, 12))
    assert [list(lay.rf) for lay in layers[:2]] == [[4, 4], [8, 8]]
    # 15x12 -> 12x9 -> 8x5; adaptive to (2, None): rows in windows of ceil(8/2) = 4 with
    # stride 8 // 2 = 4 (rf 8 + 3), columns kept (window 1)
    assert layers[2].output_shape == (1, 2, 2, 5)
    assert list(layers[2].rf) == [8 + 3, 8] and list(layers[2].jump) == [4, 1]


def test_dilated_transposed_convolution_window():
    layers, _ = summary(nn.Sequential(nn.ConvTranspose2d(1, 1, 3, stride=3, dilation=2)),
                        (1, 1, 4, 4))
    assert list(layers[0].rf) == [5, 5]
    assert np.allclose(layers[0].jump, [1 / 3, 1 / 3])


def test_format_summary_table_worked_by_hand():
    from cnncore.summary import format_summary
    model = nn.Sequential(nn.Conv2d(3, 8, (3, 1), dilation=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 3 * 5, 1000))
    model[4].bias.requires_grad_(False)
    # conv: out 6x10, params 3*8*3 + 8, MACs 6*10*8 * 3*3, RF 5x1 (dilation 2, kernel 3x1);
    # pool: RF 6x2, jump 2; linear: 120*1000 + 1000 params, 120*1000 MACs (bias frozen)
    want = """tiny
layer  type       output shape   params     MACs   RF  jump
-----  ---------  ------------  -------  -------  ---  ----
0      Conv2d     (1,8,6,10)         80    4,320  5x1     1
1      ReLU       (1,8,6,10)          0        0  5x1     1
2      MaxPool2d  (1,8,3,5)           0        0  6x2     2
3      Flatten    (1,120)             0        0  6x2     2
4      Linear     (1,1000)      121,000  120,000  6x2     2
-----  ---------  ------------  -------  -------  ---  ----
input (1, 3, 10, 10) -> output (1, 1000)
total parameters: 121,080 (trainable 120,080)
total MACs: 124,320 (0.000 G)"""
    assert format_summary(*summary(model, (1, 3, 10, 10)), title="tiny") == want
