"""Layers: thin :class:`Module` wrappers over :mod:`cnncore.functional`.

Parameter names and shapes follow torch (``weight``, ``bias``; conv weights
(C_out, C_in/groups, k...)); default initialisation is torch's (Kaiming-uniform
with a = sqrt(5), bias U(+-1/sqrt(fan_in))), drawn from ``generator`` or the
package-wide generator.
"""
import numpy as np

from .. import _random, ops
from .. import functional as F
from ..tensor import _dtype
from . import init
from .module import Module, Parameter

__all__ = [
    "Identity", "Linear", "Flatten", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
    "ConvTranspose2d", "ConvTranspose3d", "LocallyConnected2d", "TiledConv2d",
    "DepthwiseSeparableConv2d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d",
    "AvgPool3d", "LPPool1d", "LPPool2d", "WeightedAvgPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool2d", "GlobalAvgPool2d",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "LocalResponseNorm",
    "Dropout", "Dropout2d", "Upsample", "Unfold", "Fold", "MaxUnpool2d", "ReLU",
    "LeakyReLU", "Sigmoid", "Tanh", "SiLU", "GELU", "Softmax", "LogSoftmax", "ZeroPad2d", "Pad",
]


def _tuple(value, n, name):
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name} must be an int or {n} ints, got {value!r}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _positive_tuple(value, n, name, owner):
    """``value`` as n positive ints (checked when the layer is built, not at its first
    forward)."""
    items = value if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  and v > 0 for v in items):
        raise ValueError(f"{owner}: {name} must be a positive int or {n} positive ints, got "
                         f"{value!r}")
    return tuple(int(v) for v in items)


def _positive(value, name, owner):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """``y = x @ weight.T + bias``; ``weight`` (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, generator=None):
        super().__init__()
        self.in_features = _positive(in_features, "in_features", "Linear")
        self.out_features = _positive(out_features, "out_features", "Linear")
        dt = _dtype(dtype)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dt))
        self.bias = Parameter(np.empty(out_features, dtype=dt)) if bias else None
        init.default_(self.weight, self.bias, generator)

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: expected input with {self.in_features} features in the "
                             f"last dimension, got shape {tuple(x.shape)}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# ---------------------------------------------------------------------------
# convolution


class _ConvNd(Module):
    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, flip=False, algorithm="auto",
                 dtype=np.float32, generator=None):
        super().__init__()
        name = type(self).__name__
        self.in_channels = _positive(in_channels, "in_channels", name)
        self.out_channels = _positive(out_channels, "out_channels", name)
        self.groups = _positive(groups, "groups", name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        nd = self._nd
        self.kernel_size = _positive_tuple(kernel_size, nd, "kernel_size", name)
        self.stride = _positive_tuple(stride, nd, "stride", name)
        self.dilation = _positive_tuple(dilation, nd, "dilation", name)
        self.padding = padding if isinstance(padding, str) else (
            tuple(padding) if isinstance(padding, (tuple, list)) else _tuple(padding, nd, "padding"))
        self.padding_mode = padding_mode
        self.flip = flip
        self.algorithm = algorithm
        dt = _dtype(dtype)
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + self.kernel_size,
                                         dtype=dt))
        self.bias = Parameter(np.empty(out_channels, dtype=dt)) if bias else None
        init.default_(self.weight, self.bias, generator)
        self._fn = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]

    def forward(self, x):
        if x.ndim >= 2 and x.shape[-1] == self.in_channels != x.shape[-self._nd - 1]:
            order = "NCHW" if self._nd == 2 else ("NCL" if self._nd == 1 else "NCDHW")
            last = "NHWC" if self._nd == 2 else ("NLC" if self._nd == 1 else "NDHWC")
            raise ValueError(
                f"{type(self).__name__}: expected {self.in_channels} channels in dimension "
                f"{x.ndim - self._nd - 1} ({order} layout), got input of shape "
                f"{tuple(x.shape)}, whose last dimension holds {self.in_channels}: it looks "
                f"like {last}; move the channels first, e.g. x.permute(0, {x.ndim - 1}, "
                f"{', '.join(str(i) for i in range(1, x.ndim - 1))})")
        return self._fn(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, padding_mode=self.padding_mode, flip=self.flip,
                        algorithm=self.algorithm)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        if self.flip:
            s += ", flip=True"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L)."""
    _nd = 1


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W). ``padding`` may be ``"same"``,
    ``"valid"`` or ``"full"``; ``flip=True`` makes it a true convolution;
    ``padding_mode``: zeros, reflect, replicate, circular, symmetric."""
    _nd = 2


class Conv3d(_ConvNd):
    """3-D convolution over (N, C_in, D, H, W)."""
    _nd = 3


class _ConvTransposeNd(Module):
    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 flip=False, dtype=np.float32, generator=None):
        super().__init__()
        name = type(self).__name__
        self.padding_mode, self.flip = padding_mode, flip
        self.in_channels = _positive(in_channels, "in_channels", name)
        self.out_channels = _positive(out_channels, "out_channels", name)
        self.groups = _positive(groups, "groups", name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        nd = self._nd
        self.kernel_size = _positive_tuple(kernel_size, nd, "kernel_size", type(self).__name__)
        self.stride = _positive_tuple(stride, nd, "stride", type(self).__name__)
        self.padding = tuple(padding) if isinstance(padding, (tuple, list)) and \
            len(padding) == 2 * nd else _tuple(padding, nd, "padding")
        self.output_padding = _tuple(output_padding, nd, "output_padding")
        self.dilation = _positive_tuple(dilation, nd, "dilation", type(self).__name__)
        dt = _dtype(dtype)
        self.weight = Parameter(np.empty((in_channels, out_channels // groups) + self.kernel_size,
                                         dtype=dt))
        self.bias = Parameter(np.empty(out_channels, dtype=dt)) if bias else None
        init.default_(self.weight, self.bias, generator)
        self._fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]

    def forward(self, x):
        return self._fn(x, self.weight, self.bias, self.stride, self.padding,
                        self.output_padding, self.groups, self.dilation,
                        padding_mode=self.padding_mode, flip=self.flip)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, padding={self.padding}")
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s + (", flip=True" if self.flip else "")


class ConvTranspose1d(_ConvTransposeNd):
    _nd = 1


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed convolution (the adjoint of Conv2d); weight (C_in, C_out/groups, kH, kW)."""
    _nd = 2


class ConvTranspose3d(_ConvTransposeNd):
    _nd = 3


class LocallyConnected2d(Module):
    """Unshared convolution: a separate kernel at each output position.

    Needs the input size: ``weight`` (H_out, W_out, C_out, C_in, kH, kW),
    ``bias`` (C_out, H_out, W_out).
    """

    def __init__(self, in_channels, out_channels, kernel_size, input_size, stride=1, padding=0,
                 dilation=1, bias=True, padding_mode="zeros", *, flip=False, dtype=np.float32,
                 generator=None):
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels", "LocallyConnected2d")
        self.out_channels = _positive(out_channels, "out_channels", "LocallyConnected2d")
        self.kernel_size = _positive_tuple(kernel_size, 2, "kernel_size", type(self).__name__)
        self.input_size = _tuple(input_size, 2, "input_size")
        self.stride = _positive_tuple(stride, 2, "stride", type(self).__name__)
        self.dilation = _positive_tuple(dilation, 2, "dilation", type(self).__name__)
        self.padding, self.padding_mode, self.flip = padding, padding_mode, flip
        kh, kw = self.kernel_size
        # The one output-size rule, the op's own (it validates padding, stride and dilation).
        try:
            ho, wo = ops.conv2d_output_shape((1, in_channels) + self.input_size,
                                             (out_channels, in_channels, kh, kw),
                                             stride=self.stride, padding=padding,
                                             dilation=self.dilation,
                                             padding_mode=padding_mode)[2:]
        except ValueError as e:
            raise ValueError(f"LocallyConnected2d: {str(e).removeprefix('conv2d: ')}") from None
        self.output_size = (ho, wo)
        dt = _dtype(dtype)
        self.weight = Parameter(np.empty((ho, wo, out_channels, in_channels, kh, kw), dtype=dt))
        self.bias = Parameter(np.empty((out_channels, ho, wo), dtype=dt)) if bias else None
        fan_in = in_channels * kh * kw
        init.default_(self.weight, self.bias, generator, fan=(fan_in, out_channels * kh * kw))

    def forward(self, x):
        return F.local_conv2d(x, self.weight, self.bias, self.stride, self.padding,
                              self.dilation, padding_mode=self.padding_mode, flip=self.flip)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"input_size={self.input_size}, output_size={self.output_size}, "
                f"stride={self.stride}")


class TiledConv2d(Module):
    """Tiled convolution: ``tile`` = (tH, tW) kernels used in rotation over the
    output; ``weight`` (tH, tW, C_out, C_in, kH, kW), ``bias`` (C_out, tH, tW). ``tile=1`` is ordinary
    convolution; a tile per output position is the locally connected layer."""

    def __init__(self, in_channels, out_channels, kernel_size, tile, stride=1, padding=0,
                 dilation=1, bias=True, padding_mode="zeros", *, flip=False, dtype=np.float32,
                 generator=None):
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels", "TiledConv2d")
        self.out_channels = _positive(out_channels, "out_channels", "TiledConv2d")
        self.kernel_size = _positive_tuple(kernel_size, 2, "kernel_size", type(self).__name__)
        self.tile = _tuple(tile, 2, "tile")
        self.padding_mode, self.flip = padding_mode, flip
        self.stride = _positive_tuple(stride, 2, "stride", type(self).__name__)
        self.dilation = _positive_tuple(dilation, 2, "dilation", type(self).__name__)
        self.padding = padding
        kh, kw = self.kernel_size
        dt = _dtype(dtype)
        self.weight = Parameter(np.empty(self.tile + (out_channels, in_channels, kh, kw),
                                         dtype=dt))
        self.bias = Parameter(np.empty((out_channels,) + self.tile, dtype=dt)) if bias else None
        init.default_(self.weight, self.bias, generator,
                      fan=(in_channels * kh * kw, out_channels * kh * kw))

    def forward(self, x):
        return F.tiled_conv2d(x, self.weight, self.bias, self.tile, self.stride, self.padding,
                              self.dilation, padding_mode=self.padding_mode, flip=self.flip)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"tile={self.tile}, stride={self.stride}")


class DepthwiseSeparableConv2d(Module):
    """A depthwise k x k convolution (``depth_multiplier`` filters per input
    channel) followed by a pointwise 1 x 1 convolution: K*K*C_in*m + C_in*m*C_out
    weights instead of K*K*C_in*C_out."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, depth_multiplier=1, padding_mode="zeros", *, dtype=np.float32,
                 generator=None):
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels", "DepthwiseSeparableConv2d")
        self.out_channels = _positive(out_channels, "out_channels", "DepthwiseSeparableConv2d")
        self.depth_multiplier = _positive(depth_multiplier, "depth_multiplier",
                                          "DepthwiseSeparableConv2d")
        self.kernel_size = _positive_tuple(kernel_size, 2, "kernel_size", type(self).__name__)
        self.stride = _positive_tuple(stride, 2, "stride", type(self).__name__)
        self.dilation = _positive_tuple(dilation, 2, "dilation", type(self).__name__)
        self.padding = padding
        self.padding_mode = padding_mode
        mid = in_channels * depth_multiplier
        dt = _dtype(dtype)
        self.depthwise_weight = Parameter(np.empty((mid, 1) + self.kernel_size, dtype=dt))
        self.pointwise_weight = Parameter(np.empty((out_channels, mid, 1, 1), dtype=dt))
        self.bias = Parameter(np.empty(out_channels, dtype=dt)) if bias else None
        init.default_(self.depthwise_weight, None, generator)
        init.default_(self.pointwise_weight, self.bias, generator)

    def forward(self, x):
        return F.separable_conv2d(x, self.depthwise_weight, self.pointwise_weight, self.bias,
                                  self.stride, self.padding, self.dilation,
                                  padding_mode=self.padding_mode)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, depth_multiplier={self.depth_multiplier}")


# ---------------------------------------------------------------------------
# pooling


class _MaxPoolNd(Module):
    _fn = None

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return type(self)._fn(x, self.kernel_size, self.stride, self.padding, self.dilation,
                              self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    _fn = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """Max over k x k windows (``stride`` defaults to ``kernel_size``)."""
    _fn = staticmethod(F.max_pool2d)


class MaxPool3d(_MaxPoolNd):
    _fn = staticmethod(F.max_pool3d)


class _AvgPoolNd(Module):
    _fn = None

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x):
        return type(self)._fn(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    _fn = staticmethod(F.avg_pool1d)


class AvgPool2d(_AvgPoolNd):
    """Mean over k x k windows."""
    _fn = staticmethod(F.avg_pool2d)


class AvgPool3d(_AvgPoolNd):
    _fn = staticmethod(F.avg_pool3d)


class _LPPoolNd(Module):
    _fn = None

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False, padding=0):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride = norm_type, kernel_size, stride
        self.ceil_mode, self.padding = ceil_mode, padding

    def forward(self, x):
        return type(self)._fn(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode,
                              padding=self.padding)

    def extra_repr(self):
        return f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}"


class LPPool1d(_LPPoolNd):
    _fn = staticmethod(F.lp_pool1d)


class LPPool2d(_LPPoolNd):
    """``(sum |x|^p)^(1/p)`` over each window: p = 1 is sum pooling, p -> inf is max."""
    _fn = staticmethod(F.lp_pool2d)


class WeightedAvgPool2d(Module):
    """Gaussian-weighted average by distance from each window's centre."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, sigma=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.sigma = ceil_mode, sigma

    def forward(self, x):
        return F.weighted_avg_pool2d(x, self.kernel_size, self.stride, self.padding,
                                     self.ceil_mode, self.sigma)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"sigma={self.sigma}")


class _Adaptive(Module):
    _fn = None

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return type(self)._fn(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_Adaptive):
    _fn = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_Adaptive):
    """Average pooling to a fixed output size (the bins split the input evenly)."""
    _fn = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_Adaptive):
    _fn = staticmethod(F.adaptive_avg_pool3d)


class AdaptiveMaxPool2d(_Adaptive):
    _fn = staticmethod(F.adaptive_max_pool2d)


class GlobalAvgPool2d(Module):
    def forward(self, x):
        return F.global_avg_pool2d(x)


# ---------------------------------------------------------------------------
# normalisation, dropout, activations


class _BatchNorm(Module):
    _ranks = (4,)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, dtype=np.float32):
        super().__init__()
        self.num_features = _positive(num_features, "num_features", type(self).__name__)
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dt = _dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dt))
            self.bias = Parameter(np.zeros(num_features, dtype=dt))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dt))
            self.register_buffer("running_var", np.ones(num_features, dtype=dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        name = type(self).__name__
        if x.ndim not in self._ranks:
            raise ValueError(f"{name}: expected a {' or '.join(map(str, self._ranks))}-D input, "
                             f"got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected {self.num_features} channels (dimension 1), got "
                             f"input of shape {tuple(x.shape)}")
        use_batch = self.training or not self.track_running_stats
        if use_batch and x.data.size // max(x.shape[1], 1) <= 1 and x.data.size:
            raise ValueError(f"{name}: expected more than 1 value per channel when using batch "
                             f"statistics (training), got input of shape {tuple(x.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.data)
        rm = self.running_mean.data if self.track_running_stats else None
        rv = self.running_var.data if self.track_running_stats else None
        return F.batch_norm(x, rm, rv, self.weight, self.bias, use_batch, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs."""
    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel."""
    _ranks = (4,)


class BatchNorm3d(_BatchNorm):
    _ranks = (5,)


class LocalResponseNorm(Module):
    """AlexNet's across-channel normalisation:
    ``b_c = a_c / (k + alpha/n * sum_{c' near c} a_c'^2)^beta``."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class Dropout(Module):
    """Zero elements with probability ``p`` in training mode (identity in eval mode)."""

    def __init__(self, p=0.5, inplace=False, *, generator=None):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = p
        self._generator = generator if generator is None else _random.resolve(generator)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, generator=self._generator)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Zero whole channels with probability ``p`` in training mode (identity in eval mode);
    (N, C, H, W) or (C, H, W) inputs."""

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training, generator=self._generator)


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` axes of each sample, with a learnt
    scale and shift of that shape (``elementwise_affine``)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, *,
                 dtype=np.float32):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(_positive(n, "normalized_shape", "LayerNorm")
                                      for n in normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dt = _dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dt))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dt)) if bias else None
        else:
            self.weight = self.bias = None

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalise each sample's channels in ``num_groups`` groups, with a learnt scale and
    shift per channel (``affine``)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, *, dtype=np.float32):
        super().__init__()
        self.num_groups = _positive(num_groups, "num_groups", "GroupNorm")
        self.num_channels = _positive(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.eps, self.affine = eps, affine
        dt = _dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=dt))
            self.bias = Parameter(np.zeros(num_channels, dtype=dt))
        else:
            self.weight = self.bias = None

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected {self.num_channels} channels (dimension "
                             f"1), got input of shape {tuple(x.shape)}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class Upsample(Module):
    """Resize by ``size`` or ``scale_factor`` (:func:`cnncore.functional.interpolate`)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


class Unfold(Module):
    """Sliding blocks as columns (im2col), :func:`cnncore.functional.unfold`."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, x):
        return F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(Module):
    """Columns summed back into an image, :func:`cnncore.functional.fold`."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x):
        return F.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)


class MaxUnpool2d(Module):
    """The partial inverse of ``MaxPool2d(..., return_indices=True)``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, indices, output_size=None):
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding,
                              output_size)


class _Simple(Module):
    _fn = None

    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x):
        return type(self)._fn(x)


class ReLU(_Simple):
    _fn = staticmethod(F.relu)


class Sigmoid(_Simple):
    _fn = staticmethod(F.sigmoid)


class Tanh(_Simple):
    _fn = staticmethod(F.tanh)


class SiLU(_Simple):
    """x * sigmoid(x) (swish)."""
    _fn = staticmethod(F.silu)


class GELU(Module):
    """x * Phi(x); ``approximate="tanh"`` for the tanh approximation (as torch)."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Pad(Module):
    """``F.pad`` as a layer (``pad`` last axis first, like torch)."""

    def __init__(self, pad, mode="constant", value=0.0):
        super().__init__()
        self.pad, self.mode, self.value = tuple(pad), mode, value

    def forward(self, x):
        return F.pad(x, self.pad, self.mode, self.value)

    def extra_repr(self):
        return f"pad={self.pad}, mode={self.mode!r}"


class ZeroPad2d(Pad):
    def __init__(self, padding):
        pad = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
        super().__init__(pad, "constant", 0.0)

