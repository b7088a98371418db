"""conv2d_backward against central finite differences of L = sum(conv2d(x, w, b) * G).

Float64, eps = 1e-6. L is linear in each of x, w and b, so the central difference is
exact up to rounding; atol 1e-5 / rtol 1e-3 leave plenty of room for that.
"""
import numpy as np
import pytest

from cnncore import ops
from helpers import GRAD_NAMES, assert_gradients_match

# id: (x shape, weight shape, conv2d keyword arguments)
CONFIGS = {
    "plain": ((2, 2, 5, 6), (3, 2, 3, 3), dict(padding=1)),
    "stride2": ((1, 2, 7, 8), (2, 2, 3, 3), dict(stride=2, padding=1)),
    "stride_hw": ((1, 1, 7, 6), (2, 1, 2, 3), dict(stride=(3, 2), padding=(0, 1, 2, 1))),
    "dilation2": ((1, 2, 8, 7), (2, 2, 3, 2), dict(dilation=2, padding=2)),
    "groups2": ((2, 4, 5, 5), (6, 2, 3, 3), dict(groups=2, padding=1)),
    "depthwise": ((1, 3, 6, 5), (3, 1, 3, 3), dict(groups=3, padding="same")),
    "reflect": ((1, 2, 5, 6), (2, 2, 3, 3), dict(padding=(2, 1), padding_mode="reflect")),
    "replicate": ((1, 2, 4, 5), (2, 2, 3, 2), dict(padding=2, padding_mode="replicate")),
    "circular": ((1, 2, 4, 3), (2, 2, 3, 3), dict(padding=(3, 1, 4, 2), padding_mode="circular")),
    "flip": ((1, 2, 6, 5), (2, 2, 3, 2), dict(padding="full", flip=True)),
    "same_stride2": ((1, 2, 7, 6), (3, 2, 3, 3), dict(padding="same", stride=2)),
    "even_kernel_same": ((1, 1, 6, 7), (2, 1, 4, 2), dict(padding="same", padding_mode="reflect")),
    "even_kernel_valid": ((2, 2, 6, 5), (2, 2, 2, 4), dict(padding="valid", dilation=(1, 1))),
    "everything": ((1, 4, 9, 8), (4, 2, 2, 3),
                   dict(stride=2, dilation=(2, 1), groups=2, padding="same",
                        padding_mode="circular", flip=True)),
}


@pytest.mark.parametrize("algorithm", ["reference", "im2col", "auto"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_backward_matches_finite_differences(rng, algorithm, name):
    x_shape, w_shape, kw = CONFIGS[name]
    kw = dict(kw, algorithm=algorithm)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    G = rng.standard_normal(ops.conv2d(x, w, b, **kw).shape)

    def loss():
        return float(np.sum(ops.conv2d(x, w, b, **kw) * G))

    grads = ops.conv2d_backward(G, x, w, bias=True, **kw)
    assert_gradients_match(loss, (x, w, b), grads, GRAD_NAMES, min_abs=1e-3)
