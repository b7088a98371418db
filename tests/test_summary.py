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
