"""Differentiable network operations on :class:`cnncore.Tensor`, named and
argued like ``torch.nn.functional`` where torch has the op.

Sections follow the op families of :mod:`cnncore.ops` (conv, conv_transpose,
local_conv, pad, pool, activation, softmax, dropout, norm, linear, cross_entropy).
Each public op is a plain ``def`` that applies one :class:`~cnncore.tensor.Function`
(the rule of its family: ``Convolution``, ``Pool``, ``MaxPool``, ``Dropout``,
``BatchNorm``, ``CrossEntropy``, ``NLLLoss``, or the shared ``ArrayOp``) and names
its C++ kernels explicitly: ``max_pool2d`` runs ``ops.max_pool2d`` forward and
``ops.max_pool2d_backward`` backward. Each rule's forward and backward sit side
by side, with what it saves stated. This module also attaches the network-op
methods of :class:`~cnncore.Tensor` (``x.relu()``, ``x.softmax(dim)``, ...). Our own extras:
``local_conv2d``, ``tiled_conv2d``, ``separable_conv2d``,
``weighted_avg_pool{1,2,3}d``, ``global_{avg,max}_pool2d`` and the ``flip``,
``padding_mode`` and ``algorithm`` keywords on convolution.
"""
import functools

import numpy as np

from . import _numpy_functional as _nf
from . import _core, _random, ops
from ._numpy_functional import (dropout2d, fold, group_norm, interpolate, layer_norm,
                                max_unpool2d, unfold)
from .tensor import Function, Tensor, _wrap, is_grad_enabled

__all__ = [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "separable_conv2d", "local_conv2d", "tiled_conv2d", "pad",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "lp_pool1d", "lp_pool2d", "lp_pool3d", "weighted_avg_pool1d", "weighted_avg_pool2d",
    "weighted_avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "global_avg_pool2d",
    "global_max_pool2d",
    "relu", "leaky_relu", "sigmoid", "tanh", "silu", "gelu", "softmax", "log_softmax", "dropout",
    "local_response_norm", "batch_norm", "layer_norm", "group_norm", "dropout2d",
    "interpolate", "unfold", "fold", "max_unpool2d", "linear", "flatten",
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
]


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _opt(x):
    return None if x is None else _t(x)


# ---------------------------------------------------------------------------
# rule shared by several families


def _backward_tuple(result, n):
    """An op's backward result as an n-tuple (a bare array is the first input's gradient)."""
    if isinstance(result, (np.ndarray, _core.DeviceTensor)):
        return (result,) + (None,) * (n - 1)
    result = tuple(result)
    return result + (None,) * (n - len(result))


class ArrayOp(Function):
    # An op of array inputs: forward op(*inputs, **kw), backward op_backward(grad, *inputs,
    # **kw) returning one gradient per array input (pad, activations, softmax, local
    # response norm, linear).
    # saves: the array inputs and the keywords
    def forward(self, *arrays, op, op_backward, kw):
        self.arrays, self.op_backward, self.kw = arrays, op_backward, kw
        return op(*arrays, **kw)

    def backward(self, grad):
        return _backward_tuple(self.op_backward(grad, *self.arrays, **self.kw), len(self.arrays))


# ---------------------------------------------------------------------------
# conv (ops/_conv.py): conv1d/2d/3d, separable_conv2d


class Convolution(Function):
    # Every convolution-like op (conv, separable_conv2d, conv_transpose, local_conv):
    # forward(x, *weights, bias, **kw) and its backward(grad, x, *weights, bias=<bool>, **kw)
    # -> (grad_x, *grad_weights, grad_bias), both named by the caller (ops.conv2d /
    # ops.conv2d_backward, ...); grad_flags: the backward takes input_grad/weight_grad.
    # saves: x, the weight array(s), whether there is a bias, the keywords (and the forward
    # op, which cnncore.summary reads)
    def forward(self, x, *weights_and_bias, op, op_backward, kw, grad_flags=False):
        weights, bias = weights_and_bias[:-1], weights_and_bias[-1]
        self.x, self.weights, self.has_bias = x, weights, bias is not None
        self.op, self.op_backward, self.kw, self.grad_flags = op, op_backward, kw, grad_flags
        return op(x, *weights, bias, **kw)

    def backward(self, grad):
        kw = self.kw
        if self.grad_flags:
            # Skip the gradients nothing needs (a network's first layer needs no grad_x).
            kw = dict(kw, input_grad=self.needs_input_grad[0],
                      weight_grad=self.needs_input_grad[1])
        return self.op_backward(grad, self.x, *self.weights, bias=self.has_bias, **kw)


_CONV = {1: (ops.conv1d, ops.conv1d_backward), 2: (ops.conv2d, ops.conv2d_backward),
         3: (ops.conv3d, ops.conv3d_backward)}


def _conv(nd, input, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
          algorithm):
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              padding_mode=padding_mode, flip=flip, algorithm=algorithm)
    op, op_backward = _CONV[nd]
    return Convolution.apply(_t(input), _t(weight), _opt(bias), op=op, op_backward=op_backward,
                             kw=kw, grad_flags=True)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", flip=False, algorithm="auto"):
    """1-D convolution, ``input`` (N, C_in, L), ``weight`` (C_out, C_in/groups, k)."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
                 algorithm)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", flip=False, algorithm="auto"):
    """2-D convolution (cross-correlation; ``flip=True`` for true convolution).

    ``padding``: int, per axis, before/after per axis, or ``"valid"``/``"same"``/``"full"``;
    ``padding_mode``: zeros, reflect, replicate, circular, symmetric; ``algorithm``:
    auto, reference, im2col, direct, fft.
    """
    return _conv(2, input, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
                 algorithm)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", flip=False, algorithm="auto"):
    """3-D convolution, ``input`` (N, C_in, D, H, W)."""
    return _conv(3, input, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
                 algorithm)


def separable_conv2d(input, depthwise_weight, pointwise_weight, bias=None, stride=1, padding=0,
                     dilation=1, *, padding_mode="zeros", flip=False, algorithm="auto"):
    """Depthwise (C_in*m, 1, kH, kW) then pointwise (C_out, C_in*m, 1, 1) convolution."""
    return Convolution.apply(_t(input), _t(depthwise_weight), _t(pointwise_weight), _opt(bias),
                             op=ops.separable_conv2d, op_backward=ops.separable_conv2d_backward,
                             kw=dict(stride=stride, padding=padding, dilation=dilation,
                                     padding_mode=padding_mode, flip=flip, algorithm=algorithm))


# ---------------------------------------------------------------------------
# conv_transpose (ops/_conv_transpose.py)


_CONV_TRANSPOSE = {1: (ops.conv_transpose1d, ops.conv_transpose1d_backward),
                   2: (ops.conv_transpose2d, ops.conv_transpose2d_backward),
                   3: (ops.conv_transpose3d, ops.conv_transpose3d_backward)}


def _conv_transpose(nd, input, weight, bias, stride, padding, output_padding, groups, dilation,
                    padding_mode="zeros", flip=False):
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
              dilation=dilation, padding_mode=padding_mode, flip=flip)
    op, op_backward = _CONV_TRANSPOSE[nd]
    return Convolution.apply(_t(input), _t(weight), _opt(bias), op=op, op_backward=op_backward,
                             kw=kw)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, padding_mode="zeros", flip=False):
    """Transposed 1-D convolution; ``weight`` (C_in, C_out/groups, k)."""
    return _conv_transpose(1, input, weight, bias, stride, padding, output_padding, groups,
                           dilation, padding_mode, flip)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, padding_mode="zeros", flip=False):
    """Transposed 2-D convolution (the adjoint of conv2d); ``weight`` (C_in, C_out/groups,
    kH, kW)."""
    return _conv_transpose(2, input, weight, bias, stride, padding, output_padding, groups,
                           dilation, padding_mode, flip)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, padding_mode="zeros", flip=False):
    """Transposed 3-D convolution; ``weight`` (C_in, C_out/groups, kD, kH, kW)."""
    return _conv_transpose(3, input, weight, bias, stride, padding, output_padding, groups,
                           dilation, padding_mode, flip)


# ---------------------------------------------------------------------------
# local_conv (ops/_local_conv.py): local_conv2d, tiled_conv2d


def local_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, *,
                 padding_mode="zeros", flip=False, algorithm="auto"):
    """Unshared (locally connected) convolution: a kernel per output position.

    ``weight`` (H_out, W_out, C_out, C_in, kH, kW), ``bias`` (C_out, H_out, W_out).
    """
    return Convolution.apply(_t(input), _t(weight), _opt(bias), op=ops.local_conv2d,
                             op_backward=ops.local_conv2d_backward,
                             kw=dict(stride=stride, padding=padding, dilation=dilation,
                                     padding_mode=padding_mode, flip=flip, algorithm=algorithm))


def tiled_conv2d(input, weight, bias=None, tile=1, stride=1, padding=0, dilation=1, *,
                 padding_mode="zeros", flip=False, algorithm="auto"):
    """Tiled convolution: output (i, j) uses kernel ``weight[i % tH, j % tW]`` of
    ``weight`` (tH, tW, C_out, C_in, kH, kW); ``bias`` (C_out, tH, tW)."""
    return Convolution.apply(_t(input), _t(weight), _opt(bias), op=ops.tiled_conv2d,
                             op_backward=ops.tiled_conv2d_backward,
                             kw=dict(tile=tile, stride=stride, padding=padding,
                                     dilation=dilation, padding_mode=padding_mode, flip=flip,
                                     algorithm=algorithm))


# ---------------------------------------------------------------------------
# pad (ops/_pad.py)


def pad(input, pad, mode="constant", value=0.0):
    """Pad the spatial axes; ``pad`` lists the LAST axis first, like ``torch.nn.functional.pad``:
    ``(left, right)``, ``(left, right, top, bottom)``, ... Modes: ``constant`` (``zeros``),
    ``reflect``, ``replicate``, ``circular``, ``symmetric``."""
    return ArrayOp.apply(_t(input), op=ops.pad, op_backward=ops.pad_backward,
                         kw=dict(pad=pad if isinstance(pad, int) else tuple(pad), mode=mode,
                                 value=value))


# ---------------------------------------------------------------------------
# pool (ops/_pool.py)


class Pool(Function):
    # Average, Lp, weighted and adaptive-average pooling: op(x, **kw) and
    # op_backward(grad, x, **kw) -> grad_x.
    # saves: x and the keywords (the backward recomputes the windows)
    def forward(self, x, op, op_backward, kw):
        self.x, self.op_backward, self.kw = x, op_backward, kw
        return op(x, **kw)

    def backward(self, grad):
        return (self.op_backward(grad, self.x, **self.kw),)


class MaxPool(Function):
    # Max and adaptive-max pooling: op(x, return_indices=True, **kw) -> (y, indices) and
    # op_backward(grad, x, indices=indices, **kw) -> grad_x.
    # saves: x, the keywords and the argmax indices (so the backward only scatters);
    # when no gradient will be asked for and the caller wants no indices, none are formed
    # (half the work of the forward).
    def forward(self, x, op, op_backward, kw, indices_out=None):
        self.x, self.op_backward, self.kw = x, op_backward, kw
        # On CUDA the backward finds the maxima again (no indices on the device).
        if indices_out is None and (isinstance(x, _core.DeviceTensor) or
                                    not (is_grad_enabled() and any(self.needs_input_grad))):
            self.indices = None
            return op(x, **kw)
        out, self.indices = op(x, return_indices=True, **kw)
        if indices_out is not None:
            indices_out.append(self.indices)
        return out

    def backward(self, grad):
        return (self.op_backward(grad, self.x, indices=self.indices, **self.kw),)


# (forward, backward) of each pooling op by rank
_MAX_POOL = {1: (ops.max_pool1d, ops.max_pool1d_backward),
             2: (ops.max_pool2d, ops.max_pool2d_backward),
             3: (ops.max_pool3d, ops.max_pool3d_backward)}
_AVG_POOL = {1: (ops.avg_pool1d, ops.avg_pool1d_backward),
             2: (ops.avg_pool2d, ops.avg_pool2d_backward),
             3: (ops.avg_pool3d, ops.avg_pool3d_backward)}
_LP_POOL = {1: (ops.lp_pool1d, ops.lp_pool1d_backward),
            2: (ops.lp_pool2d, ops.lp_pool2d_backward),
            3: (ops.lp_pool3d, ops.lp_pool3d_backward)}
_WEIGHTED_AVG_POOL = {1: (ops.weighted_avg_pool1d, ops.weighted_avg_pool1d_backward),
                      2: (ops.weighted_avg_pool2d, ops.weighted_avg_pool2d_backward),
                      3: (ops.weighted_avg_pool3d, ops.weighted_avg_pool3d_backward)}
_ADAPTIVE_AVG_POOL = {1: (ops.adaptive_avg_pool1d, ops.adaptive_avg_pool1d_backward),
                      2: (ops.adaptive_avg_pool2d, ops.adaptive_avg_pool2d_backward),
                      3: (ops.adaptive_avg_pool3d, ops.adaptive_avg_pool3d_backward)}
_ADAPTIVE_MAX_POOL = {1: (ops.adaptive_max_pool1d, ops.adaptive_max_pool1d_backward),
                      2: (ops.adaptive_max_pool2d, ops.adaptive_max_pool2d_backward),
                      3: (ops.adaptive_max_pool3d, ops.adaptive_max_pool3d_backward)}


def _pool(pair, input, kw):
    op, op_backward = pair
    return Pool.apply(_t(input), op=op, op_backward=op_backward, kw=kw)


def _max(pair, input, kw, return_indices):
    op, op_backward = pair
    if return_indices:
        holder = []
        out = MaxPool.apply(_t(input), op=op, op_backward=op_backward, kw=kw,
                            indices_out=holder)
        return out, Tensor(holder[0])
    return MaxPool.apply(_t(input), op=op, op_backward=op_backward, kw=kw)


def _max_pool(nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return _max(_MAX_POOL[nd], input,
                dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                     ceil_mode=ceil_mode), return_indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each window; ``stride=None`` means ``kernel_size``."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    kw = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad)
    if divisor_override is not None:
        kw["divisor_override"] = divisor_override
    return _pool(_AVG_POOL[nd], input, kw)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each window."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _lp_pool(nd, input, norm_type, kernel_size, stride, ceil_mode, padding):
    return _pool(_LP_POOL[nd], input,
                 dict(norm_type=norm_type, kernel_size=kernel_size, stride=stride,
                      padding=padding, ceil_mode=ceil_mode))


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False, *, padding=0):
    return _lp_pool(1, input, norm_type, kernel_size, stride, ceil_mode, padding)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False, *, padding=0):
    """``(sum |x|^p)^(1/p)`` over each window (p = ``norm_type``)."""
    return _lp_pool(2, input, norm_type, kernel_size, stride, ceil_mode, padding)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False, *, padding=0):
    return _lp_pool(3, input, norm_type, kernel_size, stride, ceil_mode, padding)


def _weighted(nd, input, kernel_size, stride, padding, ceil_mode, sigma):
    return _pool(_WEIGHTED_AVG_POOL[nd], input,
                 dict(kernel_size=kernel_size, stride=stride, padding=padding,
                      ceil_mode=ceil_mode, sigma=sigma))


def weighted_avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, sigma=None):
    return _weighted(1, input, kernel_size, stride, padding, ceil_mode, sigma)


def weighted_avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, sigma=None):
    """Gaussian-weighted mean by distance from each window's centre (weights sum to 1)."""
    return _weighted(2, input, kernel_size, stride, padding, ceil_mode, sigma)


def weighted_avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, sigma=None):
    return _weighted(3, input, kernel_size, stride, padding, ceil_mode, sigma)


def adaptive_avg_pool1d(input, output_size):
    return _pool(_ADAPTIVE_AVG_POOL[1], input, dict(output_size=output_size))


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed ``output_size`` whatever the input size."""
    return _pool(_ADAPTIVE_AVG_POOL[2], input, dict(output_size=output_size))


def adaptive_avg_pool3d(input, output_size):
    return _pool(_ADAPTIVE_AVG_POOL[3], input, dict(output_size=output_size))


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _max(_ADAPTIVE_MAX_POOL[1], input, dict(output_size=output_size), return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _max(_ADAPTIVE_MAX_POOL[2], input, dict(output_size=output_size), return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    return _max(_ADAPTIVE_MAX_POOL[3], input, dict(output_size=output_size), return_indices)


def global_avg_pool2d(input):
    """Mean over H and W: (N, C, 1, 1)."""
    return _pool((ops.global_avg_pool2d, ops.global_avg_pool2d_backward), input, {})


def global_max_pool2d(input):
    """Max over H and W: (N, C, 1, 1)."""
    return _max(_ADAPTIVE_MAX_POOL[2], input, dict(output_size=1), False)


# ---------------------------------------------------------------------------
# activation (ops/_activation.py)


_NO_KW = {}


def relu(input, inplace=False):
    """max(x, 0)."""
    return ArrayOp.apply(_t(input), op=ops.relu, op_backward=ops.relu_backward, kw=_NO_KW)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return ArrayOp.apply(_t(input), op=ops.leaky_relu,
                         op_backward=ops.leaky_relu_backward,
                         kw=dict(negative_slope=negative_slope))


def sigmoid(input):
    """1 / (1 + exp(-x))."""
    return ArrayOp.apply(_t(input), op=ops.sigmoid, op_backward=ops.sigmoid_backward, kw=_NO_KW)


def tanh(input):
    return ArrayOp.apply(_t(input), op=ops.tanh, op_backward=ops.tanh_backward, kw=_NO_KW)


def silu(input, inplace=False):
    """x * sigmoid(x)."""
    return ArrayOp.apply(_t(input), op=ops.silu, op_backward=ops.silu_backward, kw=_NO_KW)


def gelu(input, approximate="none"):
    """x * Phi(x) (exact, ``approximate="none"``) or its tanh approximation (``"tanh"``)."""
    return ArrayOp.apply(_t(input), op=ops.gelu, op_backward=ops.gelu_backward,
                         kw=dict(approximate=approximate))


# ---------------------------------------------------------------------------
# softmax (ops/_softmax.py)


def softmax(input, dim=-1):
    """exp(x) / sum(exp(x)) along ``dim``."""
    return ArrayOp.apply(_t(input), op=ops.softmax,
                         op_backward=ops.softmax_backward, kw=dict(dim=dim))


def log_softmax(input, dim=-1):
    return ArrayOp.apply(_t(input), op=ops.log_softmax,
                         op_backward=ops.log_softmax_backward, kw=dict(dim=dim))


# ---------------------------------------------------------------------------
# dropout (ops/_dropout.py)


class Dropout(Function):
    # saves: the keywords; the mask is a pure function of (seed, index), so the
    # backward regenerates it instead of saving it
    def forward(self, x, kw):
        self.x, self.kw = x, kw
        return ops.dropout(x, **kw)

    def backward(self, grad):
        return (ops.dropout_backward(grad, self.x, **self.kw),)


def dropout(input, p=0.5, training=True, inplace=False, *, seed=None, generator=None):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    The mask is drawn from ``seed`` (by default a fresh seed from ``generator``
    or the package-wide generator, see :func:`cnncore.manual_seed`).
    """
    x = _t(input)
    if not training or p == 0:
        return x
    if seed is None:
        seed = int(_random.resolve(generator).integers(0, 2**63 - 1))
    return Dropout.apply(x, kw=dict(p=p, training=True, seed=seed))


# ---------------------------------------------------------------------------
# norm (ops/_norm.py): local response and batch normalisation


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Across-channel local response normalisation (AlexNet)."""
    return ArrayOp.apply(_t(input), op=ops.local_response_norm,
                         op_backward=ops.local_response_norm_backward,
                         kw=dict(size=size, alpha=alpha, beta=beta, k=k))


class BatchNorm(Function):
    # saves: x, the running statistics (read by the backward only in eval mode;
    # in training mode it recomputes the batch statistics from x), weight, bias
    # and the keywords
    def forward(self, x, running_mean, running_var, weight, bias, kw):
        self.x, self.weight, self.bias, self.kw = x, weight, bias, kw
        self.mean, self.var = running_mean, running_var
        return ops.batch_norm(x, running_mean, running_var, weight, bias, **kw)

    def backward(self, grad):
        gx, gw, gb = _backward_tuple(ops.batch_norm_backward(
            grad, self.x, self.mean, self.var, self.weight, self.bias, **self.kw), 3)
        return gx, None, None, gw, gb


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over (N, spatial...) per channel.

    ``training=True`` normalises with batch statistics and updates
    ``running_mean``/``running_var`` in place (unbiased variance), like torch.
    """
    x = _t(input)
    c = x.shape[1]
    if running_mean is None or running_var is None:
        if not training:
            raise ValueError("batch_norm: running_mean and running_var are required when "
                             "training=False")
        running_mean = np.zeros(c, dtype=x.dtype)
        running_var = np.ones(c, dtype=x.dtype)
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    return BatchNorm.apply(x, Tensor._make(rm, False, None), Tensor._make(rv, False, None),
                           _opt(weight), _opt(bias),
                           kw=dict(training=training, momentum=momentum, eps=eps))


# ---------------------------------------------------------------------------
# linear (ops/_linear.py)


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``; ``weight`` (out_features, in_features)."""
    return ArrayOp.apply(_t(input), _t(weight), _opt(bias), op=ops.linear,
                         op_backward=ops.linear_backward, kw=_NO_KW)


def flatten(input, start_dim=0, end_dim=-1):
    return _t(input).flatten(start_dim, end_dim)


# ---------------------------------------------------------------------------
# cross_entropy (ops/_cross_entropy.py): cross_entropy, nll_loss


class CrossEntropy(Function):
    # saves: the logits, the (integer) target, the class weights and the keywords
    def forward(self, logits, target, weight, kw):
        self.logits, self.target, self.weight, self.kw = logits, target, weight, kw
        return ops.cross_entropy(logits, target, weight, **kw)

    def backward(self, grad):
        g = ops.cross_entropy_backward(grad, self.logits, self.target, self.weight, **self.kw)
        return g, None, None


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy of logits ``input`` (N, C[, d...]) against class indices, or
    against class probabilities (a floating ``target`` of the logits' shape, as torch)."""
    t = target.data if isinstance(target, Tensor) else target
    if isinstance(t, np.ndarray) and np.issubdtype(t.dtype, np.floating) and \
            t.shape == tuple(_t(input).shape):
        return _nf.soft_cross_entropy(input, t, weight, reduction, label_smoothing)
    return CrossEntropy.apply(_t(input), _t(target), _opt(weight),
                              kw=dict(ignore_index=ignore_index, reduction=reduction,
                                      label_smoothing=label_smoothing))


class NLLLoss(Function):
    # saves: the log-probabilities, the (integer) target, the class weights and the keywords
    def forward(self, logp, target, weight, kw):
        self.logp, self.target, self.weight, self.kw = logp, target, weight, kw
        return ops.nll_loss(logp, target, weight, **kw)

    def backward(self, grad):
        g = ops.nll_loss_backward(grad, self.logp, self.target, self.weight, **self.kw)
        return g, None, None


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C[, d...])."""
    return NLLLoss.apply(_t(input), _t(target), _opt(weight),
                         kw=dict(ignore_index=ignore_index, reduction=reduction))


# ---------------------------------------------------------------------------
# unbatched inputs: (C, spatial...) as a batch of one, as torch accepts


def _allow_unbatched(fn, spatial):
    @functools.wraps(fn)
    def wrapper(input, *args, **kwargs):
        x = _t(input)
        if x.ndim != spatial + 1:
            return fn(x, *args, **kwargs)
        out = fn(x.unsqueeze(0), *args, **kwargs)
        if isinstance(out, tuple):          # (values, indices)
            return type(out)(o.reshape(tuple(o.shape[1:])) for o in out)
        return out.reshape(tuple(out.shape[1:]))
    return wrapper


for _name in ("conv{}d", "conv_transpose{}d", "max_pool{}d", "avg_pool{}d", "lp_pool{}d",
              "weighted_avg_pool{}d", "adaptive_avg_pool{}d", "adaptive_max_pool{}d"):
    for _k in (1, 2, 3):
        globals()[_name.format(_k)] = _allow_unbatched(globals()[_name.format(_k)], _k)
for _name in ("separable_conv2d", "local_conv2d", "tiled_conv2d"):
    globals()[_name] = _allow_unbatched(globals()[_name], 2)
del _name, _k


# ---------------------------------------------------------------------------
# losses on Tensor arithmetic


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def mse_loss(input, target, reduction="mean"):
    """Mean squared error."""
    x = _t(input)
    d = x - _wrap(target, x)
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    x = _t(input)
    return _reduce((x - _wrap(target, x)).abs(), reduction)


# Tensor methods for the network ops, attached here, where the ops are defined (so
# tensor.py never imports this module): x.relu() is relu(x), x.softmax(dim) softmax(x, dim).
Tensor.relu = relu
Tensor.sigmoid = sigmoid
Tensor.tanh = tanh
Tensor.softmax = softmax
Tensor.log_softmax = log_softmax
