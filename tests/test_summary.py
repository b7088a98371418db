"""cnncore.summary: receptive fields, jumps, parameter and MAC counts against the
formulas worked out by hand (r_out = r_in + (k - 1) * d * j_in, j_out = j_in * s)."""
import numpy as np
import pytest

import cnncore as cc
from cnncore import nn
from cnncore.summary import LayerInfo, format_summary, summary
from cnncore.tensor import Tensor


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


# --- every layer kind, merges, totals and the table, worked out by hand ---


def rows(model, shape, **kw):
    layers, totals = summary(model, shape, **kw)
    return {lay.name: lay.as_dict() for lay in layers}, totals


def test_dilated_strided_chain():
    m = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.MaxPool2d(2), nn.Conv2d(2, 4, 3, dilation=2),
                      nn.Flatten(), nn.Linear(4, 3))
    r, t = rows(m, (2, 1, 23, 23))
    # conv 3x3/2: 23 -> 11, r 3, j 2; 2*2*11*11 outputs x 9 MACs; 2*9 + 2 parameters
    assert r["0"] == dict(name="0", kind="Conv2d", output_shape=(2, 2, 11, 11), params=20,
                          macs=4356, rf=[3, 3], jump=[2, 2])
    # max pool 2/2: 11 -> 5, r 3 + 1*2 = 5, j 4
    assert r["1"] == dict(name="1", kind="MaxPool2d", output_shape=(2, 2, 5, 5), params=0,
                          macs=0, rf=[5, 5], jump=[4, 4])
    # conv 3x3 dilation 2 (extent 5): 5 -> 1, r 5 + 4*4 = 21; 8 outputs x 18 MACs
    assert r["2"] == dict(name="2", kind="Conv2d", output_shape=(2, 4, 1, 1), params=76,
                          macs=144, rf=[21, 21], jump=[4, 4])
    assert r["3"]["rf"] == [21, 21] and r["3"]["macs"] == 0 and r["3"]["output_shape"] == (2, 4)
    # linear: 6 outputs x 4 inputs
    assert (r["4"]["params"], r["4"]["macs"]) == (15, 24)
    assert t == dict(params=111, trainable_params=111, macs=4356 + 144 + 24,
                     input_shape=(2, 1, 23, 23), output_shape=(2, 3))


def test_dilation_alone_widens_the_field():
    r, _ = rows(nn.Sequential(nn.Conv2d(1, 1, 3, dilation=3)), (1, 1, 9, 9))
    assert r["0"]["rf"] == [7, 7] and r["0"]["output_shape"] == (1, 1, 3, 3)
    r, _ = rows(nn.Sequential(nn.Conv2d(1, 1, 3, dilation=(1, 2))), (1, 1, 9, 9))
    assert r["0"]["rf"] == [3, 5] and r["0"]["output_shape"] == (1, 1, 7, 5)


def test_transposed_convolution_with_dilation_by_hand():
    m = nn.Sequential(nn.ConvTranspose2d(1, 2, 3, stride=2, dilation=2), nn.Conv2d(2, 1, 3))
    r, t = rows(m, (1, 1, 4, 4))
    # (4 - 1)*2 + 2*(3 - 1) + 1 = 11; extent 5 -> r 5, j 1/2; MACs: 16 inputs x 2*9
    assert r["0"] == dict(name="0", kind="ConvTranspose2d", output_shape=(1, 2, 11, 11),
                          params=20, macs=288, rf=[5, 5], jump=[0.5, 0.5])
    # then a 3x3: r 5 + 2 * 0.5 = 6; 81 outputs x 18 MACs
    assert r["1"]["rf"] == [6, 6] and r["1"]["jump"] == [0.5, 0.5] and r["1"]["macs"] == 1458
    assert t["macs"] == 288 + 1458 and t["params"] == 39


def test_pools_adaptive_and_weighted():
    m = nn.Sequential(nn.AdaptiveAvgPool2d((2, None)), nn.AdaptiveMaxPool2d(3))
    r, _ = rows(m, (1, 1, 9, 7))
    # 9 -> 2: bins of ceil(9/2) = 5, stride 9 // 2 = 4; the None axis stays (k 1, s 1)
    assert (r["0"]["output_shape"], r["0"]["rf"], r["0"]["jump"]) == ((1, 1, 2, 7), [5, 1], [4, 1])
    # 2 -> 3: k 1, s 1; 7 -> 3: k ceil(7/3) = 3, s 2
    assert (r["1"]["rf"], r["1"]["jump"]) == ([5, 3], [4, 2])
    m = nn.Sequential(nn.LPPool2d(2, 3, stride=1), nn.WeightedAvgPool2d(3, 2, 1),
                      nn.MaxPool2d(2, 1, dilation=2), nn.AvgPool2d(2))
    r, _ = rows(m, (1, 1, 12, 12))
    assert [r[k]["rf"][0] for k in "0123"] == [3, 5, 9, 11]
    assert [r[k]["jump"][0] for k in "0123"] == [1, 2, 2, 4]
    assert [r[k]["output_shape"][2] for k in "0123"] == [10, 5, 3, 1]


def test_one_and_three_dimensions_per_axis():
    r, _ = rows(nn.Sequential(nn.Conv1d(1, 1, 3, dilation=3), nn.AvgPool1d(2)), (1, 1, 20))
    assert (r["0"]["rf"], r["0"]["macs"], r["0"]["output_shape"]) == ([7], 42, (1, 1, 14))
    assert (r["1"]["rf"], r["1"]["jump"]) == ([8], [2])
    r, _ = rows(nn.Sequential(nn.Conv3d(1, 1, (3, 1, 2), stride=(1, 2, 1))), (1, 1, 5, 5, 5))
    assert r["0"] == dict(name="0", kind="Conv3d", output_shape=(1, 1, 3, 3, 4), params=7,
                          macs=216, rf=[3, 1, 2], jump=[1, 2, 1])


def test_separable_local_and_tiled_layers():
    m = nn.Sequential(nn.DepthwiseSeparableConv2d(2, 3, 3, dilation=2, depth_multiplier=2),
                      nn.LocallyConnected2d(3, 2, 2, input_size=(4, 4)),
                      nn.TiledConv2d(2, 2, 2, tile=2, stride=2))
    r, t = rows(m, (1, 2, 8, 8))
    # 16 positions x (4 channels x 9 taps + 4 x 3 pointwise); 4*9 + 3*4 + 3 parameters
    assert r["0"] == dict(name="0", kind="DepthwiseSeparableConv2d", output_shape=(1, 3, 4, 4),
                          params=51, macs=768, rf=[5, 5], jump=[1, 1])
    # 18 outputs x 3*2*2; 3*3*2*3*2*2 weights + 2*3*3 biases
    assert r["1"] == dict(name="1", kind="LocallyConnected2d", output_shape=(1, 2, 3, 3),
                          params=234, macs=216, rf=[6, 6], jump=[1, 1])
    assert r["2"] == dict(name="2", kind="TiledConv2d", output_shape=(1, 2, 1, 1), params=72,
                          macs=16, rf=[7, 7], jump=[2, 2])
    assert t["macs"] == 768 + 216 + 16 and t["params"] == 51 + 234 + 72


class TwoBranches(nn.Module):
    def __init__(self, merge):
        super().__init__()
        self.a = nn.Conv2d(1, 1, 3, padding=1)
        self.b = nn.Sequential(nn.Conv2d(1, 1, 5, padding=2), nn.MaxPool2d(3, 1, 1))
        self.merge = merge

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        return a + b if self.merge == "add" else cc.cat([a, b], 1)


@pytest.mark.parametrize("merge", ["add", "cat"])
def test_merging_branches_takes_the_largest_field(merge):
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = TwoBranches(merge)
            self.out = nn.Conv2d(1 if merge == "add" else 2, 1, 3)

        def forward(self, x):
            return self.out(self.body(x))

    r, t = rows(Head(), (1, 1, 9, 9))
    assert list(r) == ["body.a", "body.b.0", "body.b.1", "out"]
    assert r["body.a"]["rf"] == [3, 3] and r["body.b.0"]["rf"] == [5, 5]
    assert r["body.b.1"]["rf"] == [7, 7]
    assert r["out"]["rf"] == [9, 9] and r["out"]["output_shape"] == (1, 1, 7, 7)


def test_totals_frozen_parameters_modes_and_buffers():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    m[0].bias.requires_grad = False
    layers, t = summary(m, [3, 1, 5, 5])
    assert (t["params"], t["trainable_params"]) == (2 * 9 + 2 + 4, 2 * 9 + 4)
    assert t["input_shape"] == (3, 1, 5, 5) and t["output_shape"] == (3, 2, 3, 3)
    assert [lay.kind for lay in layers] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert [lay.params for lay in layers] == [20, 4, 0]
    assert m.training and all(mod.training for mod in m.modules())     # mode restored
    assert int(m[1].num_batches_tracked.item()) == 0                    # ran in eval mode
    np.testing.assert_array_equal(m[1].running_mean.numpy(), 0)
    m.eval()
    summary(m, (1, 1, 5, 5))
    assert not m.training


def test_float64_models_and_unreached_outputs():
    class Const(nn.Module):
        def forward(self, x):
            return Tensor(np.ones((1, 2)))            # does not depend on the input

    class Pair(nn.Module):
        def forward(self, x):
            return x * 2, x.flatten(1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 2).double()
            self.const = Const()
            self.pair = Pair()

        def forward(self, x):
            self.const(x)
            return self.pair(self.conv(x))

    layers, t = summary(Net(), (1, 1, 3, 3), dtype=np.float64)
    info = {lay.name: lay for lay in layers}
    assert info["const"].rf is None and info["const"].jump is None
    assert info["pair"].output_shape == ((1, 1, 2, 2), (1, 4))
    assert info["pair"].rf is None and info["pair"].macs == 0   # a tuple has no single field
    assert t["output_shape"] == (1, 1, 2, 2)          # the first of a tuple output
    with pytest.raises(TypeError):
        summary(Net(), (1, 1, 3, 3))                  # float32 input, float64 weights
    text = format_summary(layers, t)
    const = text.splitlines()[2].split()                # called first
    assert const[:3] == ["const", "Const", "(1,2)"] and const[-2:] == ["-", "-"]


def test_format_summary_table():
    m = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.MaxPool2d(2), nn.Conv2d(2, 4, 3, dilation=2),
                      nn.Flatten(), nn.Linear(4, 3))
    layers, t = summary(m, (2, 1, 23, 23))
    assert format_summary(layers, t, title="tiny") == "\n".join([
        "tiny",
        "layer  type       output shape  params   MACs  RF  jump",
        "-----  ---------  ------------  ------  -----  --  ----",
        "0      Conv2d     (2,2,11,11)       20  4,356   3     2",
        "1      MaxPool2d  (2,2,5,5)          0      0   5     4",
        "2      Conv2d     (2,4,1,1)         76    144  21     4",
        "3      Flatten    (2,4)              0      0  21     4",
        "4      Linear     (2,3)             15     24  21     4",
        "-----  ---------  ------------  ------  -----  --  ----",
        "input (2, 1, 23, 23) -> output (2, 3)",
        "total parameters: 111 (trainable 111)",
        "total MACs: 4,524 (0.000 G)",
    ])
    assert not format_summary(layers, t).startswith("tiny")


def test_format_summary_axes_and_big_numbers():
    lay = [LayerInfo("a", "X", (1, 2), 1234567, 2_500_000_000, [3, 1], [1 / 3, 1 / 3]),
           LayerInfo("bb", "Y", (1,), 0, 0, [6.0, 6.0], [0.5, 2])]
    totals = dict(params=1234567, trainable_params=7, macs=2_500_000_000, input_shape=(1, 2),
                  output_shape=(1,))
    text = format_summary(lay, totals).splitlines()
    assert text[0] == "layer  type  output shape     params           MACs   RF   jump"
    assert text[2] == "a      X     (1,2)         1,234,567  2,500,000,000  3x1  0.333"
    assert text[3] == "bb     Y     (1,)                  0              0    6  0.5x2"
    assert text[-2:] == ["total parameters: 1,234,567 (trainable 7)",
                         "total MACs: 2,500,000,000 (2.500 G)"]
    empty = format_summary([], dict(totals, macs=0)).splitlines()
    assert empty[0] == "layer  type  output shape  params  MACs  RF  jump"

def test_huge_mac_totals_in_giga():
    totals = dict(params=0, trainable_params=0, macs=10**15, input_shape=(1,), output_shape=(1,))
    assert format_summary([], totals).splitlines()[-1] == \
        "total MACs: 1,000,000,000,000,000 (1000000.000 G)"


def test_one_dimensional_fields_format_as_one_number():
    layers, t = summary(nn.Sequential(nn.Conv1d(1, 1, 3, stride=2)), (1, 1, 9))
    row = format_summary(layers, t).splitlines()[2].split()
    assert row[-2:] == ["3", "2"]


class Functional(nn.Module):
    """A leaf calling the functional ops with int arguments, a constant first operand and a
    transient (unregistered) module."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.ones((1, 1, 3, 3), np.float32))

    def forward(self, x):
        y = cc.functional.conv2d(x, self.w, None, 2, 0, 2)      # stride 2, dilation 2 as ints
        return Tensor(np.ones(y.shape, np.float32)) + y


class UsesTransient(nn.Module):
    def forward(self, x):
        return nn.ReLU()(x)


def test_functional_calls_constants_and_unregistered_modules():
    m = nn.Sequential(Functional(), UsesTransient())
    layers, _ = summary(m, (1, 1, 11, 11))
    assert [(lay.name, lay.kind) for lay in layers] == [("0", "Functional"), ("?", "ReLU"),
                                                        ("1", "UsesTransient")]
    # extent 5, stride 2: r 5, j 2 -- reached through the constant's sum
    assert [lay.rf for lay in layers] == [[5, 5]] * 3
    assert [lay.jump for lay in layers] == [[2, 2]] * 3
    assert layers[0].output_shape == (1, 1, 4, 4) and layers[0].params == 9


class Diamond(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 1, 3, stride=2)
        self.a = nn.Conv2d(1, 1, 1)
        self.b = nn.Conv2d(1, 1, 3, padding=1)
        self.head = nn.Conv2d(1, 1, 3)

    def forward(self, x):
        h = self.stem(x)
        return self.head(self.a(h) + self.b(h))


def test_a_shared_stem_feeds_both_branches():
    layers, _ = summary(Diamond(), (1, 1, 15, 15))
    rf = {lay.name: lay.rf for lay in layers}
    # stem r 3 j 2; a: 3; b: 3 + 2*2 = 7; the sum 7; head 7 + 2*2 = 11
    assert rf == {"stem": [3, 3], "a": [3, 3], "b": [7, 7], "head": [11, 11]}


class Square(nn.Module):
    def forward(self, x):
        h = x * 2
        return h * h                  # one operand twice: the graph walk meets h twice


def test_an_operand_used_twice_keeps_its_field():
    layers, _ = summary(nn.Sequential(nn.Conv2d(1, 1, 3), Square()), (1, 1, 6, 6))
    assert [lay.rf for lay in layers] == [[3, 3], [3, 3]]


def test_parameter_free_first_layers_still_get_fields():
    layers, _ = summary(nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(3, 1)), (1, 1, 8, 8))
    assert [lay.rf for lay in layers] == [[2, 2], [6, 6]]


# --- the batch is never allocated: figures for N come from runs on 1 and 2 samples ---


def _real_figures(model, shape, dtype=np.float32):
    """(name, output shape, MACs) per leaf from a real forward pass on the whole batch:
    what the summary reported before it scaled from small batches."""
    from cnncore.nn import module as M
    from cnncore.summary import _macs, _shape_of
    names = {id(m): n for n, m in model.named_modules()}
    got = []

    def hook(module, inputs, out):
        if next(module.children(), None) is None:
            got.append((names.get(id(module), "?"), _shape_of(out), _macs(module, inputs, out)))

    model.eval()
    M._forward_hooks.append(hook)
    try:
        model(Tensor(np.zeros(shape, dtype)))
    finally:
        M._forward_hooks.remove(hook)
    return got


class EveryKind(nn.Module):
    """Each layer kind the summary reports, with BatchNorm carrying non-trivial running
    statistics (eval mode uses them, so samples never mix)."""

    def __init__(self):
        super().__init__()
        self.c2 = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1, stride=2), nn.BatchNorm2d(4), nn.ReLU(),
            nn.LocalResponseNorm(3), nn.Dropout(0.5), nn.ConvTranspose2d(4, 3, 3, stride=2),
            nn.DepthwiseSeparableConv2d(3, 4, 3, padding=1), nn.MaxPool2d(2),
            nn.LocallyConnected2d(4, 2, 2, input_size=(3, 3)), nn.TiledConv2d(2, 3, 1, tile=2),
            nn.AvgPool2d(1), nn.LPPool2d(2, 1), nn.WeightedAvgPool2d(1, 1),
            nn.AdaptiveAvgPool2d((2, None)), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
            nn.Linear(3, 5), nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(), nn.Softmax(1))
        self.c2[1].running_mean.data[...] = 0.3
        self.c2[1].running_var.data[...] = 2.0
        self.c1 = nn.Sequential(nn.Conv1d(2, 2, 3), nn.ConvTranspose1d(2, 2, 2),
                                nn.AvgPool1d(2), nn.MaxPool1d(1), nn.BatchNorm1d(2))
        self.c3 = nn.Sequential(nn.Conv3d(1, 2, (1, 3, 3)), nn.ConvTranspose3d(2, 1, 1),
                                nn.MaxPool3d(1), nn.AvgPool3d(1), nn.BatchNorm3d(1))

    def forward(self, x):
        n = x.shape[0]
        a = self.c2(x)
        b = self.c1(x.reshape(n, 2, 36))
        c = self.c3(x.reshape(n, 1, 2, 6, 6))
        return cc.cat([a, b.flatten(1), c.flatten(1)], 1)


class Odd(nn.Module):
    """Leaves that do not keep the batch as their first axis: a batch-independent
    constant, a tuple, and a flatten over the batch."""

    def __init__(self):
        super().__init__()
        self.const, self.pair, self.conv = Const(), Pair(), nn.Conv2d(1, 2, 3)

    def forward(self, x):
        self.const(x)
        self.pair(x)
        return self.conv(x).reshape(-1)


class Const(nn.Module):
    def forward(self, x):
        return Tensor(np.ones((3, 2), np.float32))


class Pair(nn.Module):
    def forward(self, x):
        return x * 2, x.flatten(0)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
@pytest.mark.parametrize("model, shape", [(EveryKind, (2, 6, 6)), (Odd, (1, 4, 4))])
def test_scaled_figures_equal_a_real_run_for_every_layer_kind(model, shape, n):
    m = model()
    layers, totals = summary(m, (n,) + shape)
    got = [(lay.name, lay.output_shape, lay.macs) for lay in layers]
    assert got == _real_figures(m, (n,) + shape)
    assert totals["macs"] == sum(mac for _, _, mac in got)
    assert totals["input_shape"] == (n,) + shape
    if model is EveryKind:
        assert totals["output_shape"] == (n, 5 + 2 * 17 + 2 * 4 * 4)   # c2, c1, c3
        assert {type(mod).__name__ for mod in m.modules()} - {lay.kind for lay in layers} == \
            {"EveryKind", "Sequential"}                        # every leaf kind is compared
    else:
        assert totals["output_shape"] == (n * 2 * 2 * 2,)


def test_a_huge_batch_is_never_allocated():
    """`summary(model, (10**9, 3, 8, 8))` used to allocate 768 GB of zeros."""
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(36, 10))
    big = 10**9
    layers, totals = summary(m, (big, 3, 8, 8))
    one, t1 = summary(m, (1, 3, 8, 8))
    assert [lay.output_shape for lay in layers] == [(big,) + lay.output_shape[1:] for lay in one]
    assert [lay.macs for lay in layers] == [big * lay.macs for lay in one]
    assert [(lay.rf, lay.jump, lay.params) for lay in layers] == \
        [(lay.rf, lay.jump, lay.params) for lay in one]
    assert totals == dict(t1, macs=big * t1["macs"], input_shape=(big, 3, 8, 8),
                          output_shape=(big, 10))
    assert format_summary(layers, totals).splitlines()[-1] == \
        f"total MACs: {big * t1['macs']:,} ({big * t1['macs'] / 1e9:.3f} G)"


@pytest.mark.parametrize("shape, why", [
    ((0, 1, 8, 8), r"sizes must be positive, got \(0, 1, 8, 8\)"),
    ((1, 1, -8, 8), r"sizes must be positive, got \(1, 1, -8, 8\)"),
    ((4,), r"must have a batch size and at least one more size, \(N, C, \.\.\.\), got \(4,\)"),
    ((), r"must have a batch size and at least one more size"),
    ((1, 1, 8.0, 8), r"must hold integers, got \(1, 1, 8\.0, 8\)"),
    ((1, True, 8, 8), r"must hold integers"),
    ((1, "1", 8, 8), r"must hold integers"),
    (8, r"must be a sequence of sizes such as \(1, 3, 224, 224\), got 8"),
    (None, r"must be a sequence of sizes"),
])
def test_bad_input_shapes_are_value_errors_naming_input_shape(shape, why):
    with pytest.raises(ValueError, match=r"^summary: input_shape " + why):
        summary(nn.Sequential(nn.Conv2d(1, 1, 3)), shape)


def test_a_sample_beyond_the_memory_limit_is_refused():
    m = nn.Sequential(nn.Conv2d(1, 1, 3))
    old = cc.get_memory_limit()
    try:
        cc.set_memory_limit(10**6)
        assert summary(m, (10**6, 1, 100, 100))[1]["output_shape"] == (10**6, 1, 98, 98)
        with pytest.raises(ValueError, match=r"^summary: input_shape \(1, 1, 500, 501\): one "
                                             r"sample needs 1,002,000 bytes, more than the "
                                             r"memory limit of 1,000,000 bytes "
                                             r"\(cnncore.set_memory_limit\)$"):
            summary(m, (1, 1, 500, 501))
        with pytest.raises(ValueError, match=r"one sample needs 1,280,000 bytes"):
            summary(m.double(), (1, 1, 400, 400), dtype=np.float64)
    finally:
        cc.set_memory_limit(old)


def test_models_that_change_with_the_batch_size_are_refused():
    class ByBatch(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.ReLU(), nn.Sigmoid()

        def forward(self, x):
            return self.a(x) if x.shape[0] == 1 else self.b(x)

    assert summary(ByBatch(), (1, 2))[0][0].kind == "ReLU"
    with pytest.raises(ValueError, match=r"^summary: the model runs different layers .* "
                                         r"batches of 1 and 2, so its figures cannot be scaled "
                                         r"to a batch of 5$"):
        summary(ByBatch(), (5, 2))
