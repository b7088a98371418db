"""Pooling: the direct path against the naive reference, and the reference against NumPy.

* ``algorithm="direct"`` and ``"auto"`` must agree with ``algorithm="reference"`` on
  random configurations (every kind, 1-3 spatial axes, channels 1/3/17, batch >= 1, odd
  sizes, asymmetric padding, dilation, ceil mode): to ~1e-12 in float64, and bit for bit
  in float32 with small-integer inputs where the arithmetic is exact (max values and
  indices, average forward, Lp with p = 1 or inf, max gradients).
* The reference itself is checked against a NumPy oracle written here from the
  definitions in docs/ops.md: window coordinates per axis, padding by masking, the
  divisor rules of average pooling, Lp on ``|x|``, normalised Gaussian weights.
"""
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, strategies as st

from cnncore import ops
from helpers import SEEDS

WINDOWED = ["max", "avg", "lp", "weighted_avg"]
ADAPTIVE = ["adaptive_max", "adaptive_avg"]


@dataclass
class Config:
    kind: str
    nd: int
    shape: tuple
    kernel: list = field(default_factory=list)
    stride: list = field(default_factory=list)
    pads: list = field(default_factory=list)  # (before, after) per axis
    dilation: list = field(default_factory=list)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: object = None
    p: float = 2.0
    sigma: object = None
    output_size: list = field(default_factory=list)

    def _padding(self):
        if all(b == a for b, a in self.pads):
            return tuple(b for b, _ in self.pads)  # one per axis
        # before/after pairs, last axis first (F.pad's order, which cnncore takes)
        return tuple(v for pair in self.pads[::-1] for v in pair)

    def _args(self):
        nd, kind = self.nd, self.kind
        if kind == "max":
            return (f"max_pool{nd}d", (self.kernel, self.stride, self._padding(), self.dilation,
                                       self.ceil_mode), {})
        if kind == "avg":
            return (f"avg_pool{nd}d", (self.kernel, self.stride, self._padding(), self.ceil_mode,
                                       self.count_include_pad, self.divisor_override), {})
        if kind == "lp":
            return (f"lp_pool{nd}d", (self.p, self.kernel, self.stride, self._padding(),
                                      self.ceil_mode), {})
        if kind == "weighted_avg":
            return (f"weighted_avg_pool{nd}d", (self.kernel, self.stride, self._padding(),
                                                self.ceil_mode, self.sigma), {})
        return (f"{kind}_pool{nd}d", (self.output_size,), {})

    def forward(self, x, algorithm="auto", return_indices=False):
        name, args, kw = self._args()
        if return_indices:
            kw = dict(kw, return_indices=True)
        return getattr(ops, name)(x, *args, algorithm=algorithm, **kw)

    def backward(self, g, x, algorithm="auto"):
        name, args, kw = self._args()
        return getattr(ops, name + "_backward")(g, x, *args, algorithm=algorithm, **kw)

    @property
    def has_indices(self):
        return self.kind in ("max", "adaptive_max")


@st.composite
def configs(draw, kinds=WINDOWED + ADAPTIVE, max_nd=3, channels=(1, 3, 17), batches=(1, 2),
            max_extra=6):
    kind = draw(st.sampled_from(kinds))
    nd = draw(st.integers(1, max_nd))
    n = draw(st.sampled_from(batches))
    c = draw(st.sampled_from(channels))
    if nd == 3:
        max_extra = min(max_extra, 3)
    cfg = Config(kind=kind, nd=nd, shape=())
    sizes = []
    if kind in ADAPTIVE:
        for _ in range(nd):
            sizes.append(draw(st.integers(1, 4 + max_extra)))
            cfg.output_size.append(draw(st.integers(1, 4 + max_extra)))
    else:
        for _ in range(nd):
            k = draw(st.integers(1, 4))
            d = draw(st.integers(1, 3)) if kind == "max" else 1
            span = d * (k - 1) + 1
            pb, pa = draw(st.integers(0, span // 2)), draw(st.integers(0, span // 2))
            cfg.kernel.append(k)
            cfg.dilation.append(d)
            cfg.stride.append(draw(st.integers(1, 3)))
            cfg.pads.append((pb, pa))
            sizes.append(draw(st.integers(max(1, span - pb - pa), span + max_extra)))
        cfg.ceil_mode = draw(st.booleans())
        cfg.count_include_pad = draw(st.booleans())
        if kind == "avg":
            cfg.divisor_override = draw(st.one_of(st.none(), st.integers(1, 7)))
        cfg.p = draw(st.sampled_from([1.0, 1.5, 2.0, 3.0, math.inf]))
        cfg.sigma = draw(st.one_of(st.none(), st.floats(0.3, 3.0),
                                   st.tuples(*[st.floats(0.3, 3.0)] * nd)))
    cfg.shape = (n, c, *sizes)
    return cfg


def exact_forward(cfg):
    return cfg.kind in ("max", "avg", "adaptive_max", "adaptive_avg") or (
        cfg.kind == "lp" and cfg.p in (1.0, math.inf))


def exact_backward(cfg):
    return cfg.kind in ("max", "adaptive_max") or (cfg.kind == "lp" and cfg.p in (1.0, math.inf))


# --------------------------------------------------------------------------- direct vs reference


@given(cfg=configs(), seed=SEEDS)
def test_direct_matches_reference_float64(cfg, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg.shape)
    y_ref = cfg.forward(x, "reference")
    g = rng.standard_normal(y_ref.shape)
    dx_ref = cfg.backward(g, x, "reference")
    assert dx_ref.shape == x.shape and dx_ref.dtype == np.float64
    for algo in ("direct", "auto"):
        np.testing.assert_allclose(cfg.forward(x, algo), y_ref, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(cfg.backward(g, x, algo), dx_ref, rtol=1e-11, atol=1e-13)
    if cfg.has_indices:
        y1, i1 = cfg.forward(x, "reference", return_indices=True)
        y2, i2 = cfg.forward(x, "direct", return_indices=True)
        assert i1.dtype == np.int64 and i1.shape == y1.shape
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(y1, y_ref)


@given(cfg=configs(), seed=SEEDS)
def test_direct_matches_reference_float32_small_integers(cfg, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 9, cfg.shape).astype(np.float32)
    y_ref = cfg.forward(x, "reference")
    assert y_ref.dtype == np.float32
    g = rng.integers(-8, 9, y_ref.shape).astype(np.float32)
    dx_ref = cfg.backward(g, x, "reference")
    y, dx = cfg.forward(x, "direct"), cfg.backward(g, x, "direct")
    if exact_forward(cfg):
        np.testing.assert_array_equal(y, y_ref)
    else:
        np.testing.assert_allclose(y, y_ref, rtol=2e-6, atol=2e-6)
    if exact_backward(cfg):
        np.testing.assert_array_equal(dx, dx_ref)
    else:
        np.testing.assert_allclose(dx, dx_ref, rtol=2e-5, atol=2e-5)
    if cfg.has_indices:  # ties everywhere: both must pick the first maximum in scan order
        np.testing.assert_array_equal(cfg.forward(x, "reference", True)[1],
                                      cfg.forward(x, "direct", True)[1])


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", WINDOWED + ADAPTIVE)
def test_empty_batch_every_kind(kind, nd):
    """Batch 0, which the strategies above no longer draw: empty results of the right shape
    on every path, forward, indices and backward."""
    cfg = Config(kind=kind, nd=nd, shape=(0, 3) + (5,) * nd)
    if kind in ADAPTIVE:
        cfg.output_size, out = [2] * nd, 2
    else:
        cfg.kernel, cfg.stride, cfg.pads, cfg.dilation, out = [2] * nd, [2] * nd, [(1, 0)] * nd, \
            [1] * nd, 3
    for dtype in (np.float32, np.float64):
        x = np.zeros(cfg.shape, dtype)
        for algo in ("reference", "direct", "auto"):
            y = cfg.forward(x, algo)
            assert y.shape == (0, 3) + (out,) * nd and y.dtype == dtype
            dx = cfg.backward(np.zeros(y.shape, dtype), x, algo)
            assert dx.shape == x.shape and dx.dtype == dtype
            if cfg.has_indices:
                _, idx = cfg.forward(x, algo, return_indices=True)
                assert idx.shape == y.shape and idx.dtype == np.int64


# --------------------------------------------------------------------------- NumPy oracle


def oracle_out_size(n, k, s, d, pb, pa, ceil_mode):
    span = d * (k - 1) + 1
    if ceil_mode:
        out = -(-(n + pb + pa - span) // s) + 1
        if (out - 1) * s >= n + pb:
            out -= 1
        return out
    return (n + pb + pa - span) // s + 1


def oracle_forward(cfg, x):
    """The definitions of docs/ops.md, one window at a time. Returns (y, indices)."""
    nd, spatial = cfg.nd, x.shape[2:]
    windows = []  # per axis: list over outputs of (coords, in_padded_extent)
    for a in range(nd):
        n = spatial[a]
        axis = []
        if cfg.kind in ADAPTIVE:
            m = cfg.output_size[a]
            for i in range(m):
                lo, hi = (i * n) // m, -(-((i + 1) * n) // m)
                axis.append((list(range(lo, hi)), hi - lo))
        else:
            k, s, d, (pb, pa) = cfg.kernel[a], cfg.stride[a], cfg.dilation[a], cfg.pads[a]
            for o in range(oracle_out_size(n, k, s, d, pb, pa, cfg.ceil_mode)):
                start = o * s - pb
                axis.append(([start + t * d for t in range(k)], min(start + k, n + pa) - start))
        windows.append(axis)
    out_shape = tuple(len(w) for w in windows)
    y = np.zeros(x.shape[:2] + out_shape)
    idx = np.full(y.shape, -1, dtype=np.int64)
    if cfg.kind == "weighted_avg":
        sig = cfg.sigma
        sig = [k / 4 for k in cfg.kernel] if sig is None else (
            list(sig) if isinstance(sig, tuple) else [sig] * nd)
        taps = list(itertools.product(*[range(k) for k in cfg.kernel]))
        gw = np.array([math.exp(-0.5 * sum(((t[a] - (cfg.kernel[a] - 1) / 2) / sig[a]) ** 2
                                           for a in range(nd))) for t in taps])
        gw /= gw.sum()
    for o in itertools.product(*[range(m) for m in out_shape]):
        coords = [windows[a][o[a]][0] for a in range(nd)]
        taps = list(itertools.product(*coords))  # scan order
        inside = [all(0 <= c[a] < spatial[a] for a in range(nd)) for c in taps]
        flat = [int(np.ravel_multi_index(c, spatial)) if ok else -1 for c, ok in zip(taps, inside)]
        vals = np.stack([x[(slice(None), slice(None)) + c] if ok else np.zeros(x.shape[:2])
                         for c, ok in zip(taps, inside)], axis=-1)  # (N, C, taps)
        ins = np.array(inside)
        sel = (slice(None), slice(None)) + o
        if cfg.kind in ("max", "adaptive_max"):
            if not ins.any():
                y[sel], idx[sel] = -np.inf, -1
                continue
            v = vals[..., ins]
            best = np.argmax(v, axis=-1)  # first maximum
            y[sel] = np.take_along_axis(v, best[..., None], -1)[..., 0]
            idx[sel] = np.array(flat)[ins][best]
        elif cfg.kind in ("avg", "adaptive_avg"):
            s = vals[..., ins].sum(-1)
            if cfg.divisor_override:
                div = cfg.divisor_override
            elif cfg.kind == "adaptive_avg" or not cfg.count_include_pad:
                div = int(ins.sum())
            else:
                div = math.prod(windows[a][o[a]][1] for a in range(nd))
            y[sel] = s / div
        elif cfg.kind == "lp":
            a = np.abs(vals[..., ins])
            y[sel] = a.max(-1) if math.isinf(cfg.p) else (a ** cfg.p).sum(-1) ** (1 / cfg.p)
        else:
            y[sel] = (vals * gw).sum(-1)
    return y, idx


@given(cfg=configs(channels=(1, 2), batches=(1, 2), max_nd=3, max_extra=3), seed=SEEDS)
def test_reference_matches_numpy_oracle(cfg, seed):
    x = np.random.default_rng(seed).standard_normal(cfg.shape)
    want, want_idx = oracle_forward(cfg, x)
    got = cfg.forward(x, "reference")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    if cfg.has_indices:
        np.testing.assert_array_equal(cfg.forward(x, "reference", True)[1], want_idx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_dtype_and_shape_are_preserved(dtype, nd):
    x = np.arange(2 * 3 * 4**nd, dtype=dtype).reshape((2, 3) + (4,) * nd)
    for fn, args in ((f"max_pool{nd}d", (2,)), (f"avg_pool{nd}d", (2,)),
                     (f"lp_pool{nd}d", (2, 2)), (f"weighted_avg_pool{nd}d", (2,)),
                     (f"adaptive_avg_pool{nd}d", (3,)), (f"adaptive_max_pool{nd}d", (3,))):
        y = getattr(ops, fn)(x, *args)
        assert y.dtype == dtype and y.shape[:2] == (2, 3), fn
        g = getattr(ops, fn + "_backward")(np.ones_like(y), x, *args)
        assert g.dtype == dtype and g.shape == x.shape, fn


def test_non_contiguous_input_is_accepted():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 6))
    xt = np.swapaxes(np.swapaxes(x, 2, 3).copy(), 2, 3)  # same values, Fortran-ish strides
    assert not xt.flags.c_contiguous
    np.testing.assert_array_equal(ops.max_pool2d(xt, 3, 2, 1), ops.max_pool2d(x, 3, 2, 1))
