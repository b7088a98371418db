"""``cnncore.ops.conv2d`` / ``conv2d_backward`` against PyTorch (CPU) as an independent oracle.

Forward output and the three gradients (x, weight, bias; PyTorch autograd) are compared
in float64 (tight) and float32 (rtol ~1e-4) over a fixed grid and a hypothesis draw of
stride, dilation, groups, int / pair / 4-tuple / named padding, padding modes, ``flip``
and ``algorithm``.  Non-zero padding modes are emulated with ``F.pad`` followed by a
convolution with padding 0, "same"/"full" are turned into explicit paddings following
docs/conv2d.md, and ``flip=True`` is compared with a convolution by the rotated kernel.
"""
import itertools
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cnncore import ops  # noqa: E402
from helpers import SEEDS, paddings  # noqa: E402

torch.set_num_threads(1)

# PyTorch warns (once per process) that padding="same" with an even kernel may copy x
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

MODES = ["zeros", "reflect", "replicate", "circular"]
ALGOS = ["auto", "reference", "im2col"]
TORCH_MODE = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


# --------------------------------------------------------------------------------------
# oracle helpers
# --------------------------------------------------------------------------------------


def pair(v):
    if isinstance(v, (tuple, list)):
        assert len(v) == 2
        return int(v[0]), int(v[1])
    return int(v), int(v)


def explicit_pads(padding, in_hw, k_hw, stride, dilation, flip=False):
    """(top, bottom, left, right) for any padding form of docs/conv2d.md ("same" puts an odd
    pixel after for cross-correlation, as torch, and before for true convolution, as
    scipy)."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    if isinstance(padding, str):
        out = []
        for n, k, s, d in zip(in_hw, k_hw, (sh, sw), (dh, dw)):
            if padding == "valid":
                out.append((0, 0))
            elif padding == "full":
                out.append((d * (k - 1), d * (k - 1)))
            elif padding == "same":
                o = -(-n // s)
                total = max((o - 1) * s + d * (k - 1) + 1 - n, 0)
                before = total - total // 2 if flip else total // 2
                out.append((before, total - before))
            else:
                raise AssertionError(padding)
        return out[0][0], out[0][1], out[1][0], out[1][1]
    if isinstance(padding, (tuple, list)) and len(padding) == 4:   # (left, right, top, bottom)
        return tuple(int(padding[i]) for i in (2, 3, 0, 1))
    ph, pw = pair(padding)
    return ph, ph, pw, pw


def out_size(n, before, after, k, s, d):
    return (n + before + after - d * (k - 1) - 1) // s + 1


def torch_pad(xt, pads, mode):
    t, b, l, r = pads
    if mode == "zeros":
        return F.pad(xt, (l, r, t, b))
    H, W = xt.shape[-2:]
    if mode == "circular" and (max(t, b) > H or max(l, r) > W):
        # torch's circular pad is limited to one period; ours is not: gather instead
        hi = torch.arange(-t, H + b) % H
        wi = torch.arange(-l, W + r) % W
        return xt[:, :, hi][:, :, :, wi]
    return F.pad(xt, (l, r, t, b), mode=TORCH_MODE[mode])


def torch_conv(xt, wt, bt, *, stride=1, padding=0, dilation=1, groups=1,
               padding_mode="zeros", flip=False):
    pads = explicit_pads(padding, xt.shape[-2:], wt.shape[-2:], stride, dilation, flip)
    if flip:
        wt = wt.flip(-1, -2)
    xp = torch_pad(xt, pads, padding_mode)
    return F.conv2d(xp, wt, bt, stride=pair(stride), padding=0, dilation=pair(dilation),
                    groups=groups)


def torch_forward_backward(x, w, b, go, **kw):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    y = torch_conv(xt, wt, bt, **kw)
    if go is None:
        return y.detach().numpy(), None
    gx, gw, gb = torch.autograd.grad(y, (xt, wt, bt), grad_outputs=torch.tensor(go))
    return y.detach().numpy(), (gx.numpy(), gw.numpy(), gb.numpy())


def tol(dtype):
    return (1e-10, 1e-10) if dtype == np.float64 else (1e-4, 1e-4)


def assert_close(got, ref, dtype, what):
    rtol, atol = tol(dtype)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol * scale, err_msg=what)


def make_problem(rng, n, cin, cout, groups, hw, khw, dtype):
    x = rng.standard_normal((n, cin) + tuple(hw)).astype(dtype)
    w = rng.standard_normal((cout, cin // groups) + tuple(khw)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    return x, w, b


def check_against_torch(x, w, b, dtype, algorithm="auto", **kw):
    rng = np.random.default_rng(99)
    y = ops.conv2d(x, w, b, algorithm=algorithm, **kw)
    shape_kw = {k: v for k, v in kw.items() if k != "flip"}
    assert tuple(ops.conv2d_output_shape(x.shape, w.shape, **shape_kw)) == y.shape
    go = rng.standard_normal(y.shape).astype(dtype)
    y_ref, (gx_ref, gw_ref, gb_ref) = torch_forward_backward(x, w, b, go, **kw)
    assert_close(y, y_ref, dtype, f"forward {kw} {algorithm}")
    gx, gw, gb = ops.conv2d_backward(go, x, w, algorithm=algorithm, **kw)
    assert_close(gx, gx_ref, dtype, f"grad_x {kw} {algorithm}")
    assert_close(gw, gw_ref, dtype, f"grad_weight {kw} {algorithm}")
    assert_close(gb, gb_ref, dtype, f"grad_bias {kw} {algorithm}")
    return y


# --------------------------------------------------------------------------------------
# self-check of the oracle's padding emulation against numpy
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode,npmode", [("zeros", "constant"), ("reflect", "reflect"),
                                         ("replicate", "edge"), ("circular", "wrap")])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 2, 0, 3), (3, 3, 4, 4), (2, 0, 1, 1)])
def test_oracle_padding_matches_numpy(mode, npmode, pads):
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 5))
    got = torch_pad(torch.tensor(x), pads, mode).numpy()
    t, b, l, r = pads
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), mode=npmode))


def test_oracle_circular_beyond_one_period():
    x = np.random.default_rng(2).standard_normal((1, 1, 2, 3))
    got = torch_pad(torch.tensor(x), (5, 1, 7, 0), "circular").numpy()
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (0, 0), (5, 1), (7, 0)), mode="wrap"))


# --------------------------------------------------------------------------------------
# fixed grid
# --------------------------------------------------------------------------------------

# (n, cin, cout, groups, (H, W), (kh, kw), stride, padding, dilation)
GRID = [
    (1, 1, 1, 1, (5, 5), (3, 3), 1, 0, 1),
    (2, 3, 4, 1, (7, 6), (3, 3), 1, 1, 1),
    (2, 3, 5, 1, (9, 8), (3, 2), 2, (1, 0), 1),
    (1, 4, 6, 2, (8, 9), (3, 3), (2, 1), (1, 2, 0, 1), (1, 2)),
    (2, 6, 6, 3, (10, 7), (2, 3), 1, "same", 2),
    (1, 4, 4, 4, (7, 7), (3, 3), 2, "same", 1),  # depthwise, same with stride 2
    (1, 2, 3, 1, (6, 5), (4, 4), 1, "same", 1),  # even kernel: odd total padding
    (2, 2, 3, 1, (5, 6), (3, 3), 3, "same", (2, 1)),
    (1, 3, 2, 1, (4, 5), (3, 2), 1, "full", 1),
    (1, 2, 2, 1, (6, 6), (2, 2), 1, "full", 2),
    (2, 3, 4, 1, (6, 7), (1, 1), 1, 0, 1),  # 1x1
    (1, 2, 4, 1, (9, 9), (1, 1), 2, 0, 1),  # strided 1x1
    (1, 4, 8, 4, (6, 6), (3, 3), 1, 1, 1),  # groups = C_in, C_out = 2 C_in
    (3, 2, 3, 1, (5, 5), (5, 5), 1, "valid", 1),  # kernel = input
    (1, 1, 2, 1, (1, 1), (1, 1), 1, 0, 1),
    (1, 2, 2, 1, (1, 7), (1, 3), (1, 2), (0, 1), 1),
    (1, 3, 2, 1, (5, 4), (3, 3), 1, (2, 0, 0, 3), 1),  # asymmetric 4-tuple
    (2, 2, 2, 2, (11, 3), (4, 1), (3, 1), (3, 0), (2, 1)),
]


def _grid_params():
    out = []
    for case, mode in itertools.product(GRID, MODES):
        n, cin, cout, g, hw, khw, s, p, d = case
        pads = explicit_pads(p, hw, khw, s, d)
        if mode == "reflect" and (max(pads[:2]) >= hw[0] or max(pads[2:]) >= hw[1]):
            continue
        out.append(pytest.param(case, mode, id=f"{case}-{mode}".replace(" ", "")))
    return out


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case,mode", _grid_params())
def test_grid(case, mode, dtype, algorithm):
    n, cin, cout, g, hw, khw, s, p, d = case
    rng = np.random.default_rng(zlib.crc32(repr((case, mode)).encode()))
    x, w, b = make_problem(rng, n, cin, cout, g, hw, khw, dtype)
    y = check_against_torch(x, w, b, dtype, algorithm, stride=s, padding=p, dilation=d,
                            groups=g, padding_mode=mode)
    pads = explicit_pads(p, hw, khw, s, d)
    (sh, sw), (dh, dw) = pair(s), pair(d)
    assert y.shape == (n, cout, out_size(hw[0], pads[0], pads[1], khw[0], sh, dh),
                       out_size(hw[1], pads[2], pads[3], khw[1], sw, dw))


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", GRID[:8], ids=[str(c).replace(" ", "") for c in GRID[:8]])
def test_grid_flip(case, dtype, algorithm):
    n, cin, cout, g, hw, khw, s, p, d = case
    rng = np.random.default_rng(7)
    x, w, b = make_problem(rng, n, cin, cout, g, hw, khw, dtype)
    check_against_torch(x, w, b, dtype, algorithm, stride=s, padding=p, dilation=d,
                        groups=g, flip=True)
    # flip=True with w equals flip=False with the rotated kernel (both directions), given
    # the same explicit padding ("same" splits an odd total differently for the two)
    y1 = ops.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g, flip=True,
                    algorithm=algorithm)
    t, bo, le, r = explicit_pads(p, hw, khw, s, d, flip=True)
    y2 = ops.conv2d(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, stride=s,
                    padding=(le, r, t, bo), dilation=d, groups=g, algorithm=algorithm)
    np.testing.assert_allclose(y1, y2, rtol=tol(dtype)[0], atol=tol(dtype)[1] * 10)


# --------------------------------------------------------------------------------------
# hypothesis draw
# --------------------------------------------------------------------------------------


@st.composite
def conv_problems(draw):
    groups = draw(st.integers(1, 3))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H, W = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = sh if (sh == sw and draw(st.booleans())) else (sh, sw)
    dilation = dh if (dh == dw and draw(st.booleans())) else (dh, dw)
    padding = draw(paddings(3))
    mode = draw(st.sampled_from(MODES))
    flip = draw(st.booleans())
    pads = explicit_pads(padding, (H, W), (kh, kw), stride, dilation, flip)
    assume(out_size(H, pads[0], pads[1], kh, sh, dh) >= 1)
    assume(out_size(W, pads[2], pads[3], kw, sw, dw) >= 1)
    if mode == "reflect":
        assume(max(pads[:2]) < H and max(pads[2:]) < W)
    return dict(n=n, cin=cin, cout=cout, groups=groups, hw=(H, W), khw=(kh, kw),
                kw=dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                        padding_mode=mode, flip=flip))


@given(prob=conv_problems(), dtype=st.sampled_from([np.float64, np.float32]),
       algorithm=st.sampled_from(ALGOS), seed=SEEDS)
def test_hypothesis(prob, dtype, algorithm, seed):
    rng = np.random.default_rng(seed)
    x, w, b = make_problem(rng, prob["n"], prob["cin"], prob["cout"], prob["groups"],
                           prob["hw"], prob["khw"], dtype)
    check_against_torch(x, w, b, dtype, algorithm, **prob["kw"])


# --------------------------------------------------------------------------------------
# PyTorch's own "same" and nn.Conv2d padding modes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("khw,dil", [((3, 3), 1), ((5, 3), (1, 2)), ((3, 3), 2),
                                     ((2, 2), 1), ((4, 3), 1), ((2, 5), (3, 1)),
                                     ((2, 2), 2), ((1, 4), 1)])
def test_same_stride1_matches_torch_same(khw, dil, dtype):
    rng = np.random.default_rng(5)
    x, w, b = make_problem(rng, 2, 3, 4, 1, (9, 8), khw, dtype)
    y = ops.conv2d(x, w, b, padding="same", dilation=dil)
    assert y.shape == (2, 4, 9, 8)
    xt, wt, bt = torch.tensor(x), torch.tensor(w), torch.tensor(b)
    dh, dw = pair(dil)
    totals = (dh * (khw[0] - 1), dw * (khw[1] - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_same = F.conv2d(xt, wt, bt, padding="same", dilation=pair(dil)).numpy()
    if all(t % 2 == 0 for t in totals):
        assert_close(y, ref_same, dtype, "same (even total) vs torch same")
    # odd totals: the extra pixel goes to the bottom/right -- emulate with F.pad
    t, r = totals
    ref_pad = F.conv2d(F.pad(xt, (r // 2, r - r // 2, t // 2, t - t // 2)), wt, bt,
                       dilation=pair(dil)).numpy()
    assert_close(y, ref_pad, dtype, "same vs F.pad emulation")
    # (PyTorch >= 1.9 also puts the odd pixel at the end, so torch's "same" agrees too)
    assert_close(y, ref_same, dtype, "same vs torch same")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
@pytest.mark.parametrize("khw", [(3, 3), (2, 3)])
def test_nn_conv2d_padding_modes(mode, padding, khw):
    """nn.Conv2d implements padding_mode itself: a second, independent path."""
    rng = np.random.default_rng(11)
    x, w, b = make_problem(rng, 2, 4, 6, 2, (7, 8), khw, np.float64)
    conv = torch.nn.Conv2d(4, 6, khw, padding=padding, padding_mode=mode, groups=2,
                           dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(w))
        conv.bias.copy_(torch.tensor(b))
    xt = torch.tensor(x, requires_grad=True)
    yt = conv(xt)
    go = rng.standard_normal(tuple(yt.shape))
    gx_ref, gw_ref, gb_ref = torch.autograd.grad(yt, (xt, conv.weight, conv.bias),
                                                 torch.tensor(go))
    y = ops.conv2d(x, w, b, padding=padding, padding_mode=mode, groups=2)
    assert_close(y, yt.detach().numpy(), np.float64, "forward")
    gx, gw, gb = ops.conv2d_backward(go, x, w, padding=padding, padding_mode=mode, groups=2)
    assert_close(gx, gx_ref.numpy(), np.float64, "grad_x")
    assert_close(gw, gw_ref.numpy(), np.float64, "grad_weight")
    assert_close(gb, gb_ref.numpy(), np.float64, "grad_bias")


# --------------------------------------------------------------------------------------
# bigger shapes (vectorized / blocked paths), layouts, bias=False, NaN
# --------------------------------------------------------------------------------------

BIG = [
    # (n, cin, cout, groups, hw, khw, stride, padding, dilation)
    (2, 16, 24, 1, (15, 13), (3, 3), 1, 1, 1),
    (1, 32, 16, 1, (14, 14), (1, 1), 1, 0, 1),
    (2, 32, 32, 32, (17, 11), (3, 3), 1, 1, 1),  # depthwise
    (1, 3, 16, 1, (33, 31), (7, 7), 2, 3, 1),  # stem
    (1, 24, 40, 2, (10, 19), (3, 3), 2, "same", 1),
    (2, 8, 20, 1, (12, 12), (3, 3), 1, 2, 2),
    (1, 1, 9, 1, (32, 32), (5, 5), 1, 0, 1),  # LeNet c1-ish
    (3, 17, 5, 1, (9, 23), (2, 4), (1, 3), (1, 0, 2, 1), 1),
]


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", BIG, ids=[str(c).replace(" ", "") for c in BIG])
def test_bigger_shapes(case, dtype, algorithm):
    n, cin, cout, g, hw, khw, s, p, d = case
    rng = np.random.default_rng(21)
    x, w, b = make_problem(rng, n, cin, cout, g, hw, khw, dtype)
    check_against_torch(x, w, b, dtype, algorithm, stride=s, padding=p, dilation=d, groups=g)


@pytest.mark.parametrize("mode", MODES)
def test_bigger_shapes_padding_modes(mode):
    rng = np.random.default_rng(22)
    x, w, b = make_problem(rng, 2, 16, 16, 1, (14, 15), (3, 3), np.float32)
    check_against_torch(x, w, b, np.float32, stride=1, padding=(2, 1), padding_mode=mode)


@pytest.mark.parametrize("layout", ["fortran", "strided", "transposed", "negative"])
def test_non_contiguous_inputs(layout):
    rng = np.random.default_rng(3)
    xc, wc, bc = make_problem(rng, 2, 4, 6, 2, (9, 10), (3, 3), np.float64)
    goc = rng.standard_normal((2, 6, 5, 8))
    if layout == "fortran":
        x, w, b, go = (np.asfortranarray(a) for a in (xc, wc, bc, goc))
    elif layout == "strided":
        big = np.zeros((4, 8, 18, 20))
        big[::2, ::2, ::2, ::2] = xc
        x = big[::2, ::2, ::2, ::2]
        bigw = np.zeros((6, 2, 6, 3))
        bigw[:, :, ::2] = wc
        w = bigw[:, :, ::2]
        b = np.repeat(bc, 2)[::2]
        go = np.repeat(goc, 2, axis=3)[..., ::2]
    elif layout == "transposed":
        x = np.ascontiguousarray(xc.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
        w = np.ascontiguousarray(wc.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
        b = bc
        go = np.ascontiguousarray(goc.transpose(2, 3, 0, 1)).transpose(2, 3, 0, 1)
    else:
        x = np.ascontiguousarray(xc[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]
        w = np.ascontiguousarray(wc[::-1])[::-1]
        b = bc[::-1].copy()[::-1]
        go = goc[::-1].copy()[::-1]
    assert not (x.flags.c_contiguous and w.flags.c_contiguous)
    np.testing.assert_array_equal(x, xc)
    np.testing.assert_array_equal(w, wc)
    kw = dict(stride=(2, 1), padding=(1, 0), groups=2)
    y = ops.conv2d(x, w, b, **kw)
    y_ref, (gx_ref, gw_ref, gb_ref) = torch_forward_backward(xc, wc, bc, goc, **kw)
    assert_close(y, y_ref, np.float64, "forward")
    np.testing.assert_array_equal(y, ops.conv2d(xc, wc, bc, **kw))
    gx, gw, gb = ops.conv2d_backward(go, x, w, **kw)
    assert_close(gx, gx_ref, np.float64, "grad_x")
    assert_close(gw, gw_ref, np.float64, "grad_weight")
    assert_close(gb, gb_ref, np.float64, "grad_bias")
    # inputs are not modified
    np.testing.assert_array_equal(x, xc)
    np.testing.assert_array_equal(go, goc)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bias_none_and_bias_false(dtype):
    rng = np.random.default_rng(4)
    x, w, b = make_problem(rng, 2, 3, 4, 1, (6, 7), (3, 2), dtype)
    y = ops.conv2d(x, w, None, padding=1)
    y_ref = F.conv2d(torch.tensor(x), torch.tensor(w), None, padding=1).numpy()
    assert_close(y, y_ref, dtype, "forward without bias")
    yb = ops.conv2d(x, w, b, padding=1)
    assert_close(yb - y, np.broadcast_to(b[None, :, None, None], y.shape).astype(dtype),
                 dtype, "bias is added per channel")
    go = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = ops.conv2d_backward(go, x, w, padding=1, bias=False)
    assert gb is None
    gx2, gw2, gb2 = ops.conv2d_backward(go, x, w, padding=1, bias=True)
    np.testing.assert_array_equal(gx, gx2)
    np.testing.assert_array_equal(gw, gw2)
    assert_close(gb2, go.sum(axis=(0, 2, 3)), dtype, "grad_bias")


def test_nan_and_inf_propagate():
    rng = np.random.default_rng(8)
    x, w, b = make_problem(rng, 1, 2, 3, 1, (8, 9), (3, 3), np.float64)
    x[0, 1, 2, 4] = np.nan
    x[0, 0, 6, 1] = np.inf
    for algorithm in ALGOS:
        y = ops.conv2d(x, w, b, padding=1, algorithm=algorithm)
        y_ref = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy()
        np.testing.assert_array_equal(np.isnan(y), np.isnan(y_ref), err_msg=algorithm)
        np.testing.assert_array_equal(np.isinf(y), np.isinf(y_ref), err_msg=algorithm)
        assert np.isnan(y).sum() >= 9 * 3  # every output touching the NaN pixel
        fin = np.isfinite(y_ref)
        np.testing.assert_allclose(y[fin], y_ref[fin], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_zero_matches_torch(dtype):
    rng = np.random.default_rng(9)
    _, w, b = make_problem(rng, 1, 3, 4, 1, (6, 6), (3, 3), dtype)
    x = np.zeros((0, 3, 6, 6), dtype)
    y = ops.conv2d(x, w, b, stride=2, padding=1)
    y_ref = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2,
                     padding=1).numpy()
    assert y.shape == y_ref.shape == (0, 4, 3, 3)
    assert y.dtype == dtype
