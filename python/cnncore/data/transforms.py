"""Augmentation and preprocessing on NumPy images.

Each transform takes one image (C, H, W) or a batch (N, C, H, W) and returns
the same layout, drawing fresh randomness per image from its ``generator``
(an int seed, a ``numpy.random.Generator``, or the package-wide generator).
The augmentations are those of the AlexNet paper: random translations /
crops, horizontal flips and the PCA-based RGB intensity jitter.
"""
import numpy as np

from .. import _random

__all__ = ["Compose", "Normalize", "Resize", "Pad", "CenterCrop", "RandomCrop",
           "RandomTranslate", "RandomHorizontalFlip", "RGBIntensityJitter", "resize"]


def _batch(x):
    x = np.asarray(x)
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"transforms expect an image (C, H, W) or a batch (N, C, H, W), got "
                         f"shape {x.shape}")
    return x, False


def _unbatch(x, single):
    return x[0] if single else x


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        return "Compose(" + ", ".join(map(repr, self.transforms)) + ")"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std}")

    def __call__(self, x):
        x, single = _batch(x)
        c = x.shape[1]
        if self.mean.size not in (1, c) or self.std.size not in (1, c):
            raise ValueError(f"Normalize: {self.mean.size} means for {c} channels")
        dt = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        mean = self.mean.astype(dt).reshape(1, -1, 1, 1)
        std = self.std.astype(dt).reshape(1, -1, 1, 1)
        return _unbatch((x.astype(dt, copy=False) - mean) / std, single)

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _interp_matrix(n_in, n_out):
    """(n_out, n_in) bilinear interpolation weights (align_corners=False)."""
    m = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for i in range(n_out):
        src = min(max((i + 0.5) * scale - 0.5, 0.0), n_in - 1)
        lo = int(np.floor(src))
        hi = min(lo + 1, n_in - 1)
        frac = src - lo
        m[i, lo] += 1 - frac
        m[i, hi] += frac
    return m


def _resize_target(size):
    try:
        h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    except (TypeError, ValueError):
        raise ValueError(f"resize: size must be a positive int or (h, w), got {size!r}") \
            from None
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"resize: size must be a positive int or (h, w), got {size!r}")
    return int(h), int(w)


def resize(x, size):
    """Bilinear resize of (C, H, W) or (N, C, H, W) to ``size`` (int or (h, w)).

    The result and the float64 intermediates must fit in
    :func:`cnncore.get_memory_limit`: a ``size`` that would need more is a
    ``ValueError`` before anything is allocated."""
    from .._runtime import get_memory_limit
    x, single = _batch(x)
    h, w = _resize_target(size)
    n, c, hi, wi = (int(d) for d in x.shape)
    need = n * c * (h * w + h * wi) * 8 + n * c * h * w * max(x.dtype.itemsize, 4)
    limit = get_memory_limit()
    if need > limit:
        raise ValueError(f"resize: size {size!r} for {n} images of {c}x{hi}x{wi} needs "
                         f"{need:,} bytes, more than the memory limit of {limit:,} bytes "
                         f"(cnncore.set_memory_limit)")
    rh = _interp_matrix(x.shape[2], h)
    rw = _interp_matrix(x.shape[3], w)
    dt = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    out = np.einsum("hi,ncij,wj->nchw", rh, x.astype(np.float64), rw, optimize=True)
    return _unbatch(out.astype(dt), single)


class Resize:
    def __init__(self, size):
        self.size = size

    def __call__(self, x):
        return resize(x, self.size)

    def __repr__(self):
        return f"Resize({self.size})"


class Pad:
    """Constant padding, with torchvision's forms: an int (every side), ``(horizontal,
    vertical)``, or ``(left, top, right, bottom)``."""

    def __init__(self, padding, value=0.0):
        if isinstance(padding, int):
            p = (padding,) * 4
        else:
            p = tuple(padding)
            if len(p) == 2:
                p = (p[0], p[1], p[0], p[1])
            if len(p) != 4 or not all(isinstance(v, int) and v >= 0 for v in p):
                raise ValueError(f"Pad: padding must be a non-negative int, (horizontal, "
                                 f"vertical) or (left, top, right, bottom), got {padding!r}")
        self.padding, self.value = p, value

    def __call__(self, x):
        x, single = _batch(x)
        l, t, r, b = self.padding
        out = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=self.value)
        return _unbatch(out, single)

    def __repr__(self):
        return f"Pad({self.padding})"


class CenterCrop:
    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, x):
        x, single = _batch(x)
        h, w = self.size
        top = (x.shape[2] - h) // 2
        left = (x.shape[3] - w) // 2
        if top < 0 or left < 0:
            raise ValueError(f"CenterCrop: crop {self.size} is larger than the image "
                             f"{x.shape[2:]}")
        return _unbatch(x[:, :, top:top + h, left:left + w], single)


class RandomCrop:
    """A random ``size`` crop, after optional zero ``padding`` on every side
    (AlexNet trained on random 224 x 224 crops of 256 x 256 images)."""

    def __init__(self, size, padding=0, generator=None):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = padding
        self.rng = None if generator is None else _random.resolve(generator)

    def __call__(self, x):
        x, single = _batch(x)
        p = self.padding
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        h, w = self.size
        H, W = x.shape[2:]
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the (padded) image "
                             f"{(H, W)}")
        rng = _random.resolve(self.rng)
        tops = rng.integers(0, H - h + 1, size=x.shape[0])
        lefts = rng.integers(0, W - w + 1, size=x.shape[0])
        out = np.empty(x.shape[:2] + (h, w), dtype=x.dtype)
        for i, (t, l) in enumerate(zip(tops, lefts)):
            out[i] = x[i, :, t:t + h, l:l + w]
        return _unbatch(out, single)

    def __repr__(self):
        return f"RandomCrop({self.size}, padding={self.padding})"


class RandomTranslate:
    """Shift each image by a random whole number of pixels in
    [-max_shift, max_shift] on each axis, filling with ``fill`` (a shift of the
    whole height or width or more leaves only ``fill``)."""

    def __init__(self, max_shift, fill=0.0, generator=None):
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) \
                or max_shift < 0:
            raise ValueError(f"RandomTranslate: max_shift must be an integer >= 0, got "
                             f"{max_shift!r}")
        self.max_shift, self.fill = int(max_shift), fill
        self.rng = None if generator is None else _random.resolve(generator)

    def __call__(self, x):
        x, single = _batch(x)
        m = self.max_shift
        if m == 0:
            return _unbatch(x, single)
        rng = _random.resolve(self.rng)
        shifts = rng.integers(-m, m + 1, size=(x.shape[0], 2))
        H, W = x.shape[2:]
        out = np.full_like(x, self.fill)
        for i, (dy, dx) in enumerate(shifts):
            if abs(dy) >= H or abs(dx) >= W:
                continue                    # shifted out of the frame: all fill
            ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H),
                                                                        slice(0, H + dy))
            xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W),
                                                                        slice(0, W + dx))
            out[i, :, yd, xd] = x[i, :, ys, xs]
        return _unbatch(out, single)

    def __repr__(self):
        return f"RandomTranslate({self.max_shift})"


class RandomHorizontalFlip:
    def __init__(self, p=0.5, generator=None):
        self.p = p
        self.rng = None if generator is None else _random.resolve(generator)

    def __call__(self, x):
        x, single = _batch(x)
        rng = _random.resolve(self.rng)
        flip = rng.random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return _unbatch(out, single)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


# Principal components of ImageNet RGB pixels (as used for AlexNet's augmentation).
_IMAGENET_EIGVAL = np.array([0.2175, 0.0188, 0.0045])
_IMAGENET_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                             [-0.5808, -0.0045, -0.8140],
                             [-0.5836, -0.6948, 0.4203]])


class RGBIntensityJitter:
    """AlexNet's colour augmentation: add ``sum_i alpha_i * lambda_i * p_i`` to
    every pixel of an image, where (lambda_i, p_i) are the eigenvalues and
    eigenvectors of the 3x3 covariance of RGB pixel values and
    ``alpha_i ~ N(0, alphastd)`` is drawn once per image. Defaults to ImageNet's
    components; :meth:`fit` computes them from your images."""

    def __init__(self, alphastd=0.1, eigval=None, eigvec=None, generator=None):
        self.alphastd = alphastd
        self.eigval = _IMAGENET_EIGVAL if eigval is None else np.asarray(eigval, np.float64)
        self.eigvec = _IMAGENET_EIGVEC if eigvec is None else np.asarray(eigvec, np.float64)
        self.rng = None if generator is None else _random.resolve(generator)

    @classmethod
    def fit(cls, images, alphastd=0.1, generator=None):
        """Principal components of the RGB values of ``images`` (N, 3, H, W)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"RGBIntensityJitter.fit: expected (N, 3, H, W), got "
                             f"{images.shape}")
        pixels = images.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
        val, vec = np.linalg.eigh(np.cov(pixels))
        return cls(alphastd, val[::-1].copy(), vec[:, ::-1].copy(), generator)

    def __call__(self, x):
        x, single = _batch(x)
        if x.shape[1] != 3:
            raise ValueError(f"RGBIntensityJitter: needs 3 channels, got {x.shape[1]}")
        rng = _random.resolve(self.rng)
        alpha = rng.normal(0.0, self.alphastd, size=(x.shape[0], 3))
        shift = (alpha * self.eigval) @ self.eigvec.T          # (N, 3)
        out = x + shift.astype(x.dtype)[:, :, None, None]
        return _unbatch(out, single)

    def __repr__(self):
        return f"RGBIntensityJitter(alphastd={self.alphastd})"
