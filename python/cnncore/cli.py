"""The ``cnncore`` command line: ``train``, ``eval``, ``predict``, ``summary``, ``demo``.

``cnncore train`` with no arguments trains the classic LeNet-5 (sigmoid,
average pooling) on the handwritten digits that scikit-learn ships (no
download), shows a progress bar and per-epoch loss/accuracy, and writes a
checkpoint, a PNG of the training curves and a JSON report into ``--out``.

Exit status: 0 on success; 2 for a mistake in the arguments or the input (a
missing, unreadable or malformed data file, checkpoint or image, a data set too
small to split, an output path that cannot be written, ...), with a one-line
``cnncore: error: ...`` on stderr (argparse's own usage errors also exit 2);
3 when training stops because the loss became NaN or infinite (the message
names the epoch and step; the data was already checked to be finite, so the
usual cause is a learning rate too high); 130 when interrupted.
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings

import numpy as np

__all__ = ["main", "EXIT_USAGE", "EXIT_DIVERGED"]

_DEFAULT_OUT = "runs/train"

EXIT_USAGE = 2
"""Exit status for a user mistake (arguments, data, checkpoint, output paths)."""
EXIT_DIVERGED = 3
"""Exit status when training stops on a non-finite loss."""

_EPILOG = ("exit status: 0 success; 2 a mistake in the arguments or the input files (one "
           "'cnncore: error:' line on stderr); 3 training stopped on a NaN or infinite loss "
           "(lower --lr); 130 interrupted")


class CLIError(Exception):
    """A user-facing error: printed as ``cnncore: error: ...``, exit status 2."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: printed as ``cnncore: error: ...``, exit status 3."""


# ---------------------------------------------------------------------------
# output paths, checked before any work


def _check_writable_file(path, flag):
    """CLIError unless ``path`` can be written as a file (tried: opened for appending,
    and removed again if it did not exist)."""
    if os.path.isdir(path):
        raise CLIError(f"{flag} {path!r} is a folder, not a file")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CLIError(f"{flag} {path!r}: the folder {parent!r} does not exist")
    existed = os.path.lexists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise CLIError(f"{flag} {path!r}: cannot write there ({exc.strerror or exc})") from None
    if not existed:
        try:
            os.remove(path)
        except OSError:
            pass


def _prepare_out(args):
    """Create --out and check that it and every file the run writes are writable,
    before the data is loaded or a step trained."""
    out = args.out
    if os.path.lexists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out!r} is a file, not a folder")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"--out {out!r}: cannot create the folder ({exc.strerror or exc})") \
            from None
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise CLIError(f"--out {out!r}: cannot write there ({exc.strerror or exc})") from None
    ckpt = os.path.join(out, "checkpoint.safetensors")
    if os.path.isdir(ckpt):
        raise CLIError(f"--out {out!r}: {ckpt!r} is a folder, where the checkpoint goes")
    if not args.no_plot:
        _check_writable_file(os.path.join(out, "curves.png"), "--out")
    _check_writable_file(args.json or os.path.join(out, "report.json"),
                         "--json" if args.json else "--out")


def _write_json(obj, path, flag="--json"):
    try:
        with open(path, "w") as f:
            json.dump(obj, f, indent=2)
    except OSError as exc:
        raise CLIError(f"{flag} {path!r}: cannot write ({exc.strerror or exc})") from None


# ---------------------------------------------------------------------------
# data



def _bounded(kind, lo=None, hi=None, lo_open=False, hi_open=False):
    """argparse type: a number of `kind` within the given bounds."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if kind is float and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if v != v or (lo is not None and (v <= lo if lo_open else v < lo)) or \
                (hi is not None and (v >= hi if hi_open else v > hi)):
            lo_s = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
            hi_s = "" if hi is None else f"{'<' if hi_open else '<='} {hi}"
            raise argparse.ArgumentTypeError(
                f"must be {' and '.join(x for x in (lo_s, hi_s) if x)}, got {text}")
        return v
    return parse


_POSITIVE = _bounded(int, 1)
_NON_NEGATIVE = _bounded(int, 0)


def _num_classes_arg():
    from .data import MAX_CLASSES
    return _bounded(int, 0, MAX_CLASSES)


def _load_data(args, input_size, channels, size_flag="--input-size"):
    """(train, test, description) ArrayDatasets for --data / --format; a CLIError for
    anything wrong with the data."""
    from .data import DataError
    try:
        return _read_data(args, input_size, channels)
    except DataError as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:     # resizing to a size the memory limit refuses
        raise CLIError(f"{size_flag} {input_size}: {exc}") from None


def _read_data(args, input_size, channels):
    from . import data as D
    src, fmt = args.data, args.format
    if src == "digits" or fmt == "digits":
        size = input_size or 32
        pad = 2 if size >= 16 else 0
        tr = D.load_digits("train", size=size, pad=pad, test_fraction=args.test_fraction)
        te = D.load_digits("test", size=size, pad=pad, test_fraction=args.test_fraction)
        desc = f"bundled digits ({len(tr)} train / {len(te)} test, {size}x{size})"
        return tr, te, desc
    if not os.path.lexists(src):
        raise CLIError(f"--data {src!r}: no such file or folder")
    if fmt == "auto":
        if os.path.isdir(src):
            fmt = "idx" if D.datasets.is_mnist_folder(src) else "folder"
        elif src.endswith(".npz"):
            fmt = "npz"
        else:
            raise CLIError(f"--data {src!r}: cannot tell the format; pass --format "
                           f"idx|npz|folder")
    if fmt in ("idx", "folder") and not os.path.isdir(src):
        raise CLIError(f"--data {src!r}: --format {fmt} needs a folder, this is a file")
    if fmt == "idx":
        tr, te = D.load_mnist(src, "train"), D.load_mnist(src, "test")
    elif fmt == "npz":
        if D.datasets.npz_has_test_split(src):
            tr, te = D.load_npz(src, "train"), D.load_npz(src, "test")
        else:
            tr, te = _split(D.load_npz(src), args)
    elif fmt == "folder":
        size = input_size or None  # 0: keep the images' own size
        sub = [os.path.join(src, s) for s in ("train", "test")]
        if all(os.path.isdir(s) for s in sub):
            tr = D.load_image_folder(sub[0], size, channels or 1)
            te = D.load_image_folder(sub[1], size, channels or 1, classes=tr.classes)
        else:
            tr, te = _split(D.load_image_folder(src, size, channels or 1), args)
    else:
        raise CLIError(f"unknown --format {fmt!r}")
    if input_size and tr.images.shape[-1] != input_size:
        tr = D.ArrayDataset(D.transforms.resize(tr.images, input_size), tr.labels,
                            classes=tr.classes)
        te = D.ArrayDataset(D.transforms.resize(te.images, input_size), te.labels,
                            classes=te.classes)
    desc = f"{src} ({fmt}: {len(tr)} train / {len(te)} test, {tr.image_shape})"
    return tr, te, desc


def _split(ds, args):
    """Hold out --test-fraction of each class; a CLIError when either side is empty."""
    from .data import split
    if len(ds) == 0:
        raise CLIError(f"--data {args.data!r} holds no images")
    tr, te = split(ds.labels, args.test_fraction, args.seed)
    if len(te) == 0 or (len(tr) == 0 and args.command == "train"):
        side = "test" if len(te) == 0 else "training"
        raise CLIError(f"--data {args.data!r}: {len(ds)} image(s) are too few to split into "
                       f"training and test sets with --test-fraction {args.test_fraction} (it "
                       f"leaves no {side} images); add images, change --test-fraction or give "
                       f"x_train/x_test (or train/ and test/ folders)")
    return ds.subset(tr), ds.subset(te)


# ---------------------------------------------------------------------------
# model <-> checkpoint metadata


def _build(name, kwargs, copies=1, what="model", hint=""):
    """The model ``name`` built with ``kwargs``. It is first built without initialising
    its parameters (numpy allocates them lazily), and refused when ``copies`` times its
    parameters would not fit the memory limit (training keeps 4: weights, gradients and
    Adam's two moments), so no argument or checkpoint can make it allocate unbounded
    memory."""
    from . import models
    from ._runtime import get_memory_limit
    from .nn import init
    try:
        with init.skip_init():
            probe = models.get_model(name, **kwargs)
    except MemoryError:
        raise CLIError(f"{what} {name} with {kwargs} is too large to build") from None
    except (TypeError, ValueError) as exc:
        raise CLIError(f"cannot build {what} {name} with {kwargs}: {exc}{hint}") from None
    nbytes = sum(p.data.nbytes for p in probe.parameters())
    limit = get_memory_limit()
    if copies * nbytes > limit:
        raise CLIError(f"{what} {name} with {kwargs} has {probe.num_parameters():,} parameters "
                       f"({copies} x {nbytes:,} bytes needed), more than the memory limit of "
                       f"{limit:,} bytes")
    del probe
    return models.get_model(name, **kwargs)


def _model_kwargs(name, num_classes, channels, size):
    kw = dict(num_classes=num_classes, in_channels=channels)
    if name == "lenet5":
        kw["input_size"] = size
    return kw


def _json_meta(meta, key, path, default=None):
    if key not in meta:
        return default
    try:
        return json.loads(meta[key])
    except ValueError as exc:
        raise CLIError(f"checkpoint {path!r}: its {key} metadata is not valid JSON "
                       f"({exc})") from None


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_spec(spec, path):
    """The checkpoint's {"name", "kwargs"} model description, validated."""
    from .data import MAX_CLASSES
    from .models import MODELS
    bad = f"checkpoint {path!r}: its cnncore.model metadata does not describe a model"
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or \
            not isinstance(spec.get("kwargs"), dict):
        raise CLIError(f"{bad} (expected {{\"name\": ..., \"kwargs\": {{...}}}}, got "
                       f"{json.dumps(spec)[:80]})")
    if spec["name"] not in MODELS:
        raise CLIError(f"{bad}: unknown model {spec['name']!r}")
    kw = spec["kwargs"]
    n = kw.get("num_classes", 1)
    if not _is_int(n) or not 1 <= n <= MAX_CLASSES:
        raise CLIError(f"{bad}: num_classes must be an integer in [1, {MAX_CLASSES:,}], got "
                       f"{n!r}")
    for key in ("in_channels", "input_size"):
        if key in kw and (not _is_int(kw[key]) or kw[key] < 1):
            raise CLIError(f"{bad}: {key} must be a positive integer, got {kw[key]!r}")
    return spec


def _check_info(info, path):
    """The checkpoint's data description (normalisation, classes, input shape), validated."""
    from ._runtime import get_memory_limit
    bad = f"checkpoint {path!r}: its cnncore.data metadata"
    if not isinstance(info, dict):
        raise CLIError(f"{bad} must be a JSON object, got {json.dumps(info)[:80]}")
    shape = info.get("input_shape", [1, 32, 32])
    if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(v) and v >= 1
                                                                for v in shape)):
        raise CLIError(f"{bad}: input_shape must be [channels, height, width] of positive "
                       f"integers, got {shape!r}")
    if math.prod(shape) * 4 > get_memory_limit():
        raise CLIError(f"{bad}: input_shape {shape} is larger than the memory limit")
    for key, default in (("mean", [0.0]), ("std", [1.0])):
        v = info.get(key, default)
        if not (isinstance(v, list) and len(v) in (1, shape[0]) and all(
                isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
                for a in v)) or (key == "std" and min(v) <= 0):
            raise CLIError(f"{bad}: {key} must be 1 or {shape[0]} finite numbers"
                           f"{' > 0' if key == 'std' else ''}, got {v!r}")
    classes = info.get("classes")
    if classes is not None and not (isinstance(classes, list) and
                                    all(isinstance(c, str) for c in classes)):
        raise CLIError(f"{bad}: classes must be a list of names, got {json.dumps(classes)[:80]}")
    return info


def _read_checkpoint(path):
    """(model in eval mode, spec, info, saved object) from a checkpoint written by
    ``cnncore train``; a CLIError for anything else."""
    from . import io
    from .tensor import Tensor, no_grad
    if os.path.isdir(path):
        raise CLIError(f"checkpoint {path!r} is a folder, not a checkpoint file")
    if not os.path.isfile(path):
        raise CLIError(f"checkpoint {path!r} does not exist")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            obj, meta = io.load(path, with_metadata=True)
    except io.CheckpointError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"checkpoint {path!r}: cannot read ({exc.strerror or exc})") from None
    if "cnncore.model" not in meta:
        raise CLIError(f"checkpoint {path!r} has no cnncore.model metadata (was it written by "
                       f"'cnncore train'?)")
    spec = _check_spec(_json_meta(meta, "cnncore.model", path), path)
    info = _check_info(_json_meta(meta, "cnncore.data", path, {}), path)
    state = obj["model"] if isinstance(obj, dict) and "model" in obj else obj
    if not isinstance(state, dict):
        raise CLIError(f"checkpoint {path!r} does not hold a model's state dict (found a "
                       f"{type(state).__name__})")
    model = _build(spec["name"], spec["kwargs"], what="the checkpoint's model")
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError, TypeError) as exc:
        raise CLIError(f"checkpoint {path!r} does not fit model {spec['name']}: "
                       f"{exc.args[0] if exc.args else exc}") from None
    model.eval()
    shape = info.get("input_shape", [1, 32, 32])
    try:                                    # the recorded input shape must suit the model
        with no_grad():
            out = model(Tensor(np.zeros([1] + shape, np.float32)))
    except ValueError as exc:
        raise CLIError(f"checkpoint {path!r}: its model {spec['name']} cannot take its "
                       f"recorded input shape {tuple(shape)}: {exc}") from None
    if tuple(out.shape) != (1, spec["kwargs"].get("num_classes", out.shape[-1])):
        raise CLIError(f"checkpoint {path!r}: its model gives outputs of shape "
                       f"{tuple(out.shape)[1:]}, not one score per class")
    for w in caught:                        # e.g. an unverified (older or foreign) file
        print(f"cnncore: warning: {_one_line(w.message)}", file=sys.stderr)
    return model, spec, info, obj


def _normalize(x, info):
    mean = np.asarray(info.get("mean", [0.0]), np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(info.get("std", [1.0]), np.float32).reshape(1, -1, 1, 1)
    return ((x - mean) / std).astype(np.float32)


def _host(t):
    """A tensor's values as a NumPy array (copied from the device for a CUDA tensor)."""
    return t.cpu().data


def _forward(model, x):
    """``model(x)`` with x moved to the model's device; the model took one sample already,
    so a ValueError here is a batch the memory limit refuses: a CLIError."""
    p = next(iter(model.parameters()), None)
    if p is not None and p.device.type != "cpu":
        x = x.to(p.device)
    try:
        return model(x)
    except ValueError as exc:
        raise CLIError(f"a batch of {x.shape[0]} images does not fit in memory: "
                       f"{_one_line(exc)}; use a smaller --batch-size") from None


def _evaluate(model, images, labels, info, batch_size=256):
    """(mean loss, accuracy, predictions) in eval mode, no graph."""
    from . import functional as F
    from .tensor import Tensor, no_grad
    model.eval()
    total, correct, preds = 0.0, 0, []
    with no_grad():
        for s in range(0, len(labels), batch_size):
            x = Tensor(_normalize(images[s:s + batch_size], info))
            y = labels[s:s + batch_size]
            out = _forward(model, x)
            total += float(F.cross_entropy(out, Tensor(y), reduction="sum").item())
            p = _host(out).argmax(1)
            correct += int((p == y).sum())
            preds.append(p)
    n = max(len(labels), 1)
    return total / n, correct / n, np.concatenate(preds) if preds else np.zeros(0, np.int64)


# ---------------------------------------------------------------------------
# train


def _optimizer(args, params):
    from . import optim
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum,
                         weight_decay=args.weight_decay, nesterov=args.nesterov)
    if args.optimizer == "adam":
        return optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    if args.optimizer == "adamw":
        return optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    raise CLIError(f"unknown optimizer {args.optimizer!r}")


def _plot(history, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    a1.plot(ep, [h["test_loss"] for h in history], "s-", label="test")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy loss")
    a1.set_yscale("log")
    a1.legend()
    a1.grid(alpha=0.3)
    a2.plot(ep, [100 * h["train_accuracy"] for h in history], "o-", label="train")
    a2.plot(ep, [100 * h["test_accuracy"] for h in history], "s-", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    a2.legend()
    a2.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - declared dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, unit="batch", file=sys.stderr,
                dynamic_ncols=True)


def _train_threads(args, local_ranks=1):
    from ._runtime import set_num_threads
    if args.threads:
        set_num_threads(args.threads)
    elif args.model == "lenet5":
        # LeNet's kernels are too small to gain from a second thread, and on a
        # busy machine OpenMP threads waiting for a shared core cost far more.
        set_num_threads(1)
    elif local_ranks > 1:
        # ranks on one machine share its cores: more threads than cores collapse
        set_num_threads(max(1, (os.cpu_count() or 1) // local_ranks))


class _Ranks:
    """Who this process is in a ``--distributed`` run (one rank of one when it is not),
    and the few collectives the command needs."""

    def __init__(self, args):
        self.dist = None
        self.rank, self.world, self.local = 0, 1, 1
        if args.device == "cuda":
            from . import cuda
            if args.distributed:
                raise CLIError("--device cuda with --distributed is not supported yet: the "
                               "collectives move host arrays (train on one GPU, or on CPUs)")
            if not (cuda.is_available() or cuda.is_emulated()):
                raise CLIError(f"--device cuda: CUDA is not available: {cuda.why_unavailable()}")
        if not args.distributed:
            if args.sync_bn:
                raise CLIError("--sync-bn synchronises batch norm across ranks: it needs "
                               "--distributed")
            return
        from . import distributed as dist
        try:
            dist.init(timeout=args.dist_timeout)
        except dist.DistributedError as exc:
            raise CLIError(f"--distributed: {exc}") from None
        self.dist = dist
        self.rank, self.world, self.local = dist.rank(), dist.world_size(), dist.local_size()
        if args.batch_size % self.world:
            raise CLIError(f"--batch-size {args.batch_size} is the global batch and must "
                           f"divide among the {self.world} ranks")

    @property
    def lead(self):
        return self.rank == 0

    def agree(self, fn):
        """Run ``fn()`` on every rank; if it raises a CLIError on any, every rank raises one
        (the failing rank its own message), so no rank goes on alone into a collective."""
        error = None
        try:
            result = fn()
        except CLIError as exc:
            error, result = exc, None
        if self.dist is not None:
            failed = np.array([0 if error is None else self.rank + 1], np.int64)
            self.dist.all_reduce(failed, "max")
            if error is None and failed[0]:
                raise CLIError(f"rank {failed[0] - 1} could not start (its message says why)")
        if error is not None:
            raise error
        return result

    def sum(self, *values):
        """The values summed over the ranks."""
        arr = np.array(values, np.float64)
        if self.dist is not None:
            self.dist.all_reduce(arr, "sum")
        return arr.tolist()

    def wrap(self, model, sync_bn):
        if self.dist is None:
            return model
        if sync_bn:
            model = self.dist.SyncBatchNorm.convert_sync_batchnorm(model)
        return self.dist.DistributedDataParallel(model)


def _train_data(args):
    """(train set with its augmentation and normalisation, test set, description, info):
    info holds the normalisation, the class names and the input shape, for the checkpoint."""
    from .data import transforms as T
    tr, te, desc = _load_data(args, args.input_size, args.channels)
    if len(tr) == 0 or len(te) == 0:
        raise CLIError(f"--data {args.data!r}: the {'training' if len(tr) == 0 else 'test'} "
                       f"set holds no images")
    channels, size = tr.images.shape[1], tr.images.shape[2]
    with np.errstate(over="ignore", invalid="ignore"):
        mean = tr.images.mean(axis=(0, 2, 3)).tolist()
        std = [max(s, 1e-6) for s in tr.images.std(axis=(0, 2, 3)).tolist()]
    if not all(math.isfinite(v) for v in mean + std):
        raise CLIError(f"--data {args.data!r}: the images' values are too large to normalise "
                       f"(their mean or standard deviation overflows float32); scale them")
    top = max(int(tr.labels.max()), int(te.labels.max()))
    num_classes = args.num_classes or max(tr.num_classes, top + 1)
    if num_classes <= top:
        raise CLIError(f"--num-classes {args.num_classes} is too few: the data has labels up "
                       f"to {top}, so it needs at least {top + 1}")
    classes = list(tr.classes) + [str(i) for i in range(tr.num_classes, num_classes)]
    info = dict(mean=mean, std=std, classes=classes[:num_classes],
                input_shape=[channels, size, tr.images.shape[3]])
    transforms = []
    if args.augment and args.translate:
        if args.translate >= min(tr.images.shape[2:]):
            raise CLIError(f"--translate {args.translate} must be smaller than the images "
                           f"({size}x{tr.images.shape[3]}), or every shifted image is blank")
        transforms.append(T.RandomTranslate(args.translate))
    if args.augment and args.hflip:
        transforms.append(T.RandomHorizontalFlip())
    if args.augment and args.jitter:
        if channels != 3:
            raise CLIError(f"--jitter {args.jitter}: RGB intensity jitter needs colour images "
                           f"(3 channels), these have {channels}; use --channels 3")
        transforms.append(T.RGBIntensityJitter.fit(tr.images, args.jitter))
    transforms.append(T.Normalize(mean, std))
    tr.transform = T.Compose(transforms)
    info["source"] = _data_source(args)
    return tr, te, desc, info, num_classes


def _data_source(args):
    """Where the training data came from, so that eval can find the same test split."""
    data = args.data if args.data == "digits" else os.path.abspath(args.data)
    return dict(data=data, format=args.format, input_size=args.input_size,
                channels=args.channels, test_fraction=args.test_fraction, seed=args.seed)


def _train_model(name, num_classes, input_shape):
    """The model and its constructor keywords; a clear error when it cannot take the input."""
    from .tensor import Tensor, no_grad
    channels, size, width = input_shape
    kwargs = _model_kwargs(name, num_classes, channels, size)
    model = _build(name, kwargs, copies=4, hint="; try --input-size")
    try:                                    # fail early, clearly, on a size the model can't take
        with no_grad():
            model.eval()
            model(Tensor(np.zeros((1, channels, size, width), np.float32)))
    except ValueError as exc:
        raise CLIError(f"model {name} cannot take inputs of shape {(channels, size, width)}: "
                       f"{' '.join(str(exc).split())}; try --input-size") from None
    return model, kwargs


def _scheduler(args, opt):
    from . import optim
    if args.schedule == "cosine":
        return optim.CosineAnnealingLR(opt, args.epochs)
    if args.schedule == "step":
        return optim.StepLR(opt, max(args.epochs // 3, 1), 0.1)
    return None


def _train_epoch(model, loader, opt, desc, show, epoch=1):
    """One pass over the loader; returns (images seen, summed loss, correct predictions).
    A NaN or infinite loss stops it (TrainingDiverged) before the step that would spread
    it into the weights."""
    from . import functional as F
    model.train()
    seen, loss_sum, correct = 0, 0.0, 0
    bar = _progress(loader, len(loader), desc, show)
    try:
        for step, (x, y) in enumerate(bar, 1):
            out = _forward(model, x)
            loss = F.cross_entropy(out, y)
            loss_val = float(loss.data)
            if not math.isfinite(loss_val):
                raise TrainingDiverged(
                    f"training stopped: the loss became {loss_val} at epoch {epoch}, step "
                    f"{step} of {len(loader)} (the data was checked to be finite, so the "
                    f"learning rate is the likely cause: lower --lr); no checkpoint was written "
                    f"for this epoch")
            opt.zero_grad()
            loss.backward()
            opt.step()
            n = y.data.shape[0]
            seen += n
            loss_sum += loss_val * n
            correct += int((_host(out).argmax(1) == y.data).sum())
            if show and hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss_val:.4f}", refresh=False)
    finally:
        if hasattr(bar, "close"):
            bar.close()
    return seen, loss_sum, correct


_CHECKPOINT = "checkpoint.safetensors"


def _save_checkpoint(args, run, epoch):
    """The checkpoint after ``epoch`` (model, optimiser, scheduler, the history so far and
    what is needed to rebuild, evaluate and resume the run), replaced atomically."""
    from . import io
    ckpt = os.path.join(args.out, _CHECKPOINT)
    final = run.history[-1] if run.history else dict(test_accuracy=float("nan"))
    meta = {"cnncore.model": json.dumps({"name": args.model, "kwargs": run.kwargs}),
            "cnncore.data": json.dumps(run.info),
            "cnncore.report": json.dumps({"epochs": epoch,
                                          "test_accuracy": final["test_accuracy"]}),
            "cnncore.history": json.dumps(run.history),
            "cnncore.args": json.dumps({k: v for k, v in vars(args).items()
                                        if isinstance(v, (str, int, float, bool, type(None)))})}
    state = {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
             "epoch": epoch}
    if run.sched is not None:
        state["scheduler"] = {"last_epoch": run.sched.last_epoch}
    try:
        io.save(state, ckpt, metadata=meta)
    except OSError as exc:
        raise CLIError(f"--out {args.out!r}: cannot write ({exc.strerror or exc})") from None
    return ckpt


def _save_run(args, run, seconds):
    """The PNG of the curves and the JSON report (the checkpoint is already written), then
    the closing line."""
    from ._runtime import get_num_threads
    name, history = args.model, run.history
    ckpt = os.path.join(args.out, _CHECKPOINT)
    png = os.path.join(args.out, "curves.png")
    final = history[-1] if history else dict(test_accuracy=float("nan"), test_loss=float("nan"))
    try:
        if history and not args.no_plot:
            _plot(history, png, f"{name} on {args.data}: test accuracy "
                                f"{100 * final['test_accuracy']:.2f}%")
    except OSError as exc:
        raise CLIError(f"--out {args.out!r}: cannot write ({exc.strerror or exc})") from None
    train_s = sum(h["train_seconds"] for h in history)
    images = sum(h["train_images"] for h in history)
    report = dict(model=name, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                  momentum=args.momentum if args.optimizer == "sgd" else None,
                  schedule=args.schedule, seed=args.seed,
                  augmentation=dict(enabled=args.augment,
                                    translate=args.translate if args.augment else 0,
                                    hflip=bool(args.augment and args.hflip),
                                    rgb_jitter=args.jitter if args.augment else 0.0),
                  device=args.device, threads=get_num_threads(), world_size=run.ranks.world,
                  sync_batchnorm=bool(args.distributed and args.sync_bn),
                  resumed_from_epoch=run.first_epoch - 1 if args.resume else None,
                  images_per_second=images / train_s if train_s > 0 else None,
                  parameters=run.model.num_parameters(),
                  test_accuracy=final["test_accuracy"], test_loss=final["test_loss"],
                  seconds=seconds, checkpoint=ckpt,
                  curves=png if history and not args.no_plot else None, history=history)
    json_path = args.json or os.path.join(args.out, "report.json")
    _write_json(report, json_path, "--json" if args.json else "--out")
    print(f"test accuracy {100 * final['test_accuracy']:.2f}% after {args.epochs} epochs in "
          f"{seconds:.1f} s; checkpoint {ckpt}" +
          (f", curves {png}" if report["curves"] else "") + f", report {json_path}")


class _Run:
    """What one training run carries from epoch to epoch."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _resume(args, run):
    """Load --resume's model, optimiser and scheduler state and history into ``run``;
    returns the first epoch still to train."""
    if os.path.isdir(args.resume):          # a run's --out folder
        args.resume = os.path.join(args.resume, _CHECKPOINT)
    model, spec, _, obj = _read_checkpoint(args.resume)
    if spec["name"] != args.model:
        raise CLIError(f"--resume {args.resume!r} holds a {spec['name']} model, not --model "
                       f"{args.model}")
    if spec["kwargs"] != run.kwargs:
        raise CLIError(f"--resume {args.resume!r}: its model was built with {spec['kwargs']}, "
                       f"this data needs {run.kwargs} (resume on the same data)")
    if not isinstance(obj, dict) or "optimizer" not in obj or "epoch" not in obj:
        raise CLIError(f"--resume {args.resume!r} has no optimiser state or epoch (was it "
                       f"written by 'cnncore train'?)")
    done = int(np.asarray(obj["epoch"].data if hasattr(obj["epoch"], "data")
                          else obj["epoch"]))
    if done >= args.epochs:
        raise CLIError(f"--resume {args.resume!r} has already trained {done} epochs; ask for "
                       f"more with --epochs (now {args.epochs})")
    run.model.load_state_dict(model.state_dict())
    try:
        run.opt.load_state_dict(obj["optimizer"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CLIError(f"--resume {args.resume!r}: its optimiser state does not fit --optimizer "
                       f"{args.optimizer}: {_one_line(exc)}") from None
    if run.sched is not None:
        for _ in range(done):
            run.sched.step()
    from . import io
    history = _json_meta(io.load_metadata(args.resume), "cnncore.history", args.resume, [])
    run.history[:] = history if isinstance(history, list) else []
    return done + 1


# Training defaults per model family, chosen by measurement on the bundled digits
# (cnncore train --model M --epochs 3: lenet5 with Adam 5e-3; resnet18 Adam 1e-3 99.2%
# (5e-3 96.9%, SGD 0.05 93.3%); googlenet Adam 1e-3 95.5%; vgg11 Adam 1e-4 88.6% (1e-3
# stays at chance, SGD 0.01 81.9%); vgg11_bn Adam 1e-4 95.8% (1e-3 diverges); alexnet Adam
# 1e-4 on 64x64 84.7%). AlexNet and ZFNet need inputs of at least 63 / 53 pixels.
_MODEL_DEFAULTS = {
    "lenet5": dict(optimizer="adam", lr=5e-3, schedule="cosine", weight_decay=0.0,
                   input_size=0, epochs=60),
    "resnet": dict(optimizer="adam", lr=1e-3, schedule="cosine", weight_decay=0.0,
                   input_size=0, epochs=10),
    "googlenet": dict(optimizer="adam", lr=1e-3, schedule="cosine", weight_decay=0.0,
                      input_size=0, epochs=10),
    "vgg": dict(optimizer="adam", lr=1e-4, schedule="cosine", weight_decay=0.0,
                input_size=0, epochs=10),
    "alexnet": dict(optimizer="adam", lr=1e-4, schedule="cosine", weight_decay=0.0,
                    input_size=64, epochs=10),
}
_DEFAULTS_HELP = ("lenet5: adam 5e-3, 60 epochs; resnet*, googlenet: adam 1e-3, 10 epochs; "
                  "vgg*, alexnet, zfnet: adam 1e-4, 10 epochs (alexnet and zfnet at 64x64); "
                  "cosine schedule, no weight decay")


def _model_family(name):
    for prefix, family in (("resnet", "resnet"), ("vgg", "vgg"), ("zfnet", "alexnet")):
        if name.startswith(prefix):
            return family
    return name if name in _MODEL_DEFAULTS else "resnet"


def _apply_model_defaults(args):
    """Fill every training option the user did not give with its model's default."""
    for key, value in _MODEL_DEFAULTS[_model_family(args.model)].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


def _train(args):
    from . import _random
    from .data import DataLoader
    from ._runtime import get_num_threads

    name = args.model
    from .models import MODELS
    if name not in MODELS:
        raise CLIError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    _apply_model_defaults(args)
    ranks = _Ranks(args)
    _train_threads(args, ranks.local)
    _random.manual_seed(args.seed)
    t_start = time.perf_counter()
    created = not os.path.lexists(args.out)

    def setup():
        try:
            if ranks.lead:
                _prepare_out(args)          # before any time goes into data or training
            tr, te, desc, info, num_classes = _train_data(args)
            model, kwargs = _train_model(name, num_classes, info["input_shape"])
        except CLIError:
            if created and ranks.lead:
                try:
                    os.rmdir(args.out)      # only if still empty
                except OSError:
                    pass
            raise
        return tr, te, desc, info, model, kwargs

    tr, te, desc, info, model, kwargs = ranks.agree(setup)
    if args.device == "cuda":
        model.to("cuda")                    # before the optimiser sees the parameters
    model = ranks.wrap(model, args.sync_bn)
    opt = _optimizer(args, model.parameters())
    run = _Run(model=model, opt=opt, sched=_scheduler(args, opt), kwargs=kwargs, info=info,
               history=[], ranks=ranks, first_epoch=1)
    if args.resume:
        run.first_epoch = ranks.agree(lambda: _resume(args, run))
    if ranks.dist is not None:
        sampler = ranks.dist.DistributedSampler(tr, shuffle=True, seed=args.seed)
        loader = DataLoader(tr, args.batch_size // ranks.world, sampler=sampler)
    else:
        sampler = None
        loader = DataLoader(tr, args.batch_size, shuffle=True, seed=args.seed)
    threads = get_num_threads()
    where = (f"{ranks.world} ranks x {threads} thread{'s' if threads != 1 else ''}"
             if ranks.dist is not None else f"{threads} thread{'s' if threads != 1 else ''}")
    if args.device == "cuda":
        from . import cuda
        where += f" + {cuda.get_device_name()}"
    if ranks.lead:
        print(f"cnncore train: {name} ({model.num_parameters():,} parameters) on {desc}; "
              f"{args.epochs} epochs, batch {args.batch_size}, {args.optimizer} lr {args.lr}, "
              f"{where}" + (f"; resuming after epoch {run.first_epoch - 1}"
                            if args.resume else ""), flush=True)
    show = not args.no_progress and ranks.lead
    try:
        with np.errstate(over="ignore", invalid="ignore"):   # divergence is reported below
            _epochs(args, run, loader, sampler, te, show)
        if ranks.lead:
            _save_run(args, run, time.perf_counter() - t_start)
    except (CLIError, TrainingDiverged) as exc:
        if ranks.dist is None or ranks.world == 1:
            raise
        # the other ranks are in a collective this rank will never join: end them all
        ranks.dist.abort(f"cnncore: error: {_one_line(exc)}",
                         EXIT_DIVERGED if isinstance(exc, TrainingDiverged) else EXIT_USAGE)
    return 0


def _epochs(args, run, loader, sampler, te, show):
    from . import _random
    ranks, info = run.ranks, run.info
    for epoch in range(run.first_epoch, args.epochs + 1):
        t0 = time.perf_counter()
        # every epoch draws from generators seeded by (seed, epoch), so a resumed run
        # repeats exactly the epochs an uninterrupted one would; each rank augments its
        # own way (the model was built from the same seed on all)
        _random.manual_seed([args.seed, ranks.rank, epoch])
        if sampler is not None:
            sampler.set_epoch(epoch)
        else:
            loader.rng = np.random.default_rng([args.seed, epoch])
        seen, loss_sum, correct = _train_epoch(run.model, loader, run.opt,
                                               f"epoch {epoch}/{args.epochs}", show, epoch)
        train_seconds = time.perf_counter() - t0
        seen, loss_sum, correct = ranks.sum(seen, loss_sum, correct)
        if run.sched is not None:
            run.sched.step()
        # each rank scores its share of the test set; the sums make the whole
        r, w = ranks.rank, ranks.world
        n_test = len(te.labels[r::w])
        test_loss, test_acc, _ = _evaluate(run.model, te.images[r::w], te.labels[r::w], info)
        test_loss, test_acc, n = ranks.sum(test_loss * n_test, test_acc * n_test, n_test)
        test_loss, test_acc = test_loss / max(n, 1), test_acc / max(n, 1)
        if not math.isfinite(test_loss):
            raise TrainingDiverged(f"training stopped: the test loss became {test_loss} after "
                                   f"epoch {epoch} (lower --lr); no checkpoint was written for "
                                   f"this epoch")
        rec = dict(epoch=epoch, train_loss=loss_sum / max(seen, 1),
                   train_accuracy=correct / max(seen, 1), test_loss=test_loss,
                   test_accuracy=test_acc, seconds=time.perf_counter() - t0,
                   train_seconds=train_seconds, train_images=int(seen))
        run.history.append(rec)
        if ranks.lead:
            _save_checkpoint(args, run, epoch)
            print(f"epoch {epoch:3d}/{args.epochs}  train loss {rec['train_loss']:.4f}  "
                  f"acc {100 * rec['train_accuracy']:6.2f}%  |  test loss {test_loss:.4f}  "
                  f"acc {100 * test_acc:6.2f}%  ({rec['seconds']:.1f}s)", flush=True)


# ---------------------------------------------------------------------------
# eval / predict / summary


def _eval(args):
    from ._runtime import set_num_threads
    if args.threads:
        set_num_threads(args.threads)
    if args.json:
        _check_writable_file(args.json, "--json")
    model, spec, info, _ = _read_checkpoint(args.checkpoint)
    shape = info.get("input_shape", [1, 32, 32])
    source = info.get("source") if isinstance(info.get("source"), dict) else {}
    if args.data is None:               # the data the checkpoint was trained on
        args.data = source.get("data", "digits")
        if args.data != "digits" and not os.path.lexists(args.data):
            raise CLIError(f"the checkpoint was trained on {args.data!r}, which no longer "
                           f"exists; pass --data")
        for key in ("format", "test_fraction", "seed"):
            if getattr(args, key) is None and key in source:
                setattr(args, key, source[key])
    args.format = args.format or "auto"
    args.test_fraction = 0.2 if args.test_fraction is None else args.test_fraction
    args.seed = 0 if args.seed is None else args.seed
    if args.data == "digits" and args.format == "auto":
        args.format = "digits"
    _, te, desc = _load_data(args, shape[1], shape[0], "the checkpoint's input size")
    if len(te) == 0:
        raise CLIError(f"--data {args.data!r}: the test set holds no images")
    if list(te.images.shape[1:]) != list(shape):
        raise CLIError(f"data images have shape {te.images.shape[1:]}, the checkpoint's model "
                       f"takes {tuple(shape)}")
    n_cls = spec["kwargs"].get("num_classes", 10)
    if int(te.labels.max()) >= n_cls:
        raise CLIError(f"--data {args.data!r} has labels up to {int(te.labels.max())}, but the "
                       f"checkpoint's model scores {n_cls} classes (0 to {n_cls - 1})")
    t0 = time.perf_counter()
    loss, acc, _ = _evaluate(model, te.images, te.labels, info, args.batch_size)
    print(f"{spec['name']} on {desc}: test loss {loss:.4f}, accuracy {100 * acc:.2f}% "
          f"({len(te)} images, {time.perf_counter() - t0:.1f} s)")
    if args.json:
        _write_json(dict(model=spec["name"], test_accuracy=acc, test_loss=loss,
                         images=len(te), checkpoint=args.checkpoint), args.json)
    return 0


def _predict(args):
    from . import functional as F
    from .data import DataError, load_image
    from .tensor import Tensor, no_grad
    if args.json:
        _check_writable_file(args.json, "--json")
    model, spec, info, _ = _read_checkpoint(args.checkpoint)
    c, h, w = info.get("input_shape", [1, 32, 32])
    if c not in (1, 3):
        raise CLIError(f"the checkpoint's model takes {c}-channel inputs; image files give 1 "
                       f"(gray) or 3 (RGB) channels")
    names = info.get("classes") or []

    def name(i):
        return names[i] if i < len(names) else str(i)

    results = []
    for path in args.images:
        try:
            img = load_image(path, (h, w), c)
        except DataError as exc:
            raise CLIError(str(exc)) from None
        inverted = _polarity(args, img, info, c)
        if inverted:
            img = 1.0 - img
            if args.polarity == "auto":
                print(f"{path}: light background, unlike the training images: inverted "
                      f"(--polarity as-is to keep it)")
        with no_grad():
            p = F.softmax(model(Tensor(_normalize(img[None], info))), 1).data[0]
        top = np.argsort(-p)[:args.top]
        results.append(dict(image=path, inverted=inverted, prediction=name(int(top[0])),
                            probability=float(p[top[0]]),
                            top=[[name(int(i)), float(p[i])] for i in top]))
        alts = ", ".join(f"{name(int(i))} {100 * p[i]:.1f}%" for i in top)
        print(f"{path}: {name(int(top[0]))}  ({alts})")
    if args.json:
        _write_json(results, args.json)
    return 0


def _polarity(args, img, info, channels):
    """Whether to invert a gray image: --polarity invert / as-is, or (auto) when its
    background (the median of its border) and the training images' mean lie on opposite
    sides of mid-gray: dark-on-light digits for a model trained on light-on-dark ones."""
    if args.polarity != "auto":
        return args.polarity == "invert"
    if channels != 1:
        return False
    border = np.concatenate([img[0, 0], img[0, -1], img[0, :, 0], img[0, :, -1]])
    train_mean = float(np.mean(info.get("mean", [0.5])))
    return (float(np.median(border)) > 0.5) != (train_mean > 0.5)


def _convert_weights(args):
    """IN (.pth/.pt/.safetensors/.npz) -> OUT.safetensors; with --model, renamed to that
    model's names and checked to load into it."""
    from . import io
    from .weights import for_model, load_weights
    if not args.output.endswith(".safetensors"):
        raise CLIError(f"OUT {args.output!r} must end in .safetensors")
    _check_writable_file(args.output, "OUT")
    state = load_weights(args.input)
    if args.model:
        model = _build(args.model, {}, what="--model")
        state = for_model(state, model)
        try:
            model.load_state_dict(state)
        except (KeyError, ValueError) as exc:
            raise CLIError(f"{args.input!r} does not fit --model {args.model}: "
                           f"{_one_line(exc)}") from None
    try:
        io.save({k: np.array(v, order="C", copy=True) for k, v in state.items()}, args.output)
    except OSError as exc:
        raise CLIError(f"OUT {args.output!r}: cannot write ({exc.strerror or exc})") from None
    print(f"{args.input} -> {args.output}: {len(state)} arrays, "
          f"{sum(int(np.asarray(v).size) for v in state.values()):,} values"
          + (f", loads into {args.model}" if args.model else ""))
    return 0


def _export_onnx(args):
    """A `cnncore train` checkpoint's model as ONNX, for its recorded input shape."""
    from . import onnx as cnx
    if not args.output.endswith(".onnx"):
        raise CLIError(f"OUT {args.output!r} must end in .onnx")
    _check_writable_file(args.output, "OUT")
    model, spec, info, _ = _read_checkpoint(args.checkpoint)
    shape = info.get("input_shape", [1, 32, 32])
    try:
        cnx.export(model, np.zeros([1] + list(shape), np.float32), args.output,
                   opset=args.opset)
    except cnx.ExportError as exc:
        raise CLIError(f"cannot export {spec['name']}: {_one_line(exc)}") from None
    print(f"{args.checkpoint} -> {args.output}: {spec['name']} on (N, "
          f"{', '.join(map(str, shape))}) inputs, opset {args.opset}")
    return 0


def _viz(args):
    """cnncore viz filters|features|receptive-field|saliency: a PNG of what the network sees."""
    from . import viz
    from .data import DataError, load_image
    if not args.output.endswith(".png"):
        raise CLIError(f"OUT {args.output!r} must end in .png")
    _check_writable_file(args.output, "OUT")

    def image_for(info):
        c, h, w = info.get("input_shape", [1, 32, 32])
        try:
            img = load_image(args.image, (h, w), c)
        except DataError as exc:
            raise CLIError(str(exc)) from None
        return _normalize(img[None], info)[0]

    try:
        if args.kind == "receptive-field":
            from .models import MODELS
            if args.model not in MODELS:
                raise CLIError(f"unknown model {args.model!r}; choose one of: "
                               f"{', '.join(sorted(MODELS))}")
            shape = [int(v) for v in args.input.split(",")] if args.input else (
                [1, 1, 32, 32] if args.model == "lenet5" else [1, 3, 224, 224])
            model = _build(args.model, {} if args.model != "lenet5" else
                           {"input_size": shape[-1]}, what="model")
            unit = [int(v) for v in args.unit.split(",")]
            box, full = viz.receptive_field(model, shape, args.layer, unit, args.output)
            print(f"{args.model} {args.layer} unit {tuple(unit)}: input rows {full[0][0]}.."
                  f"{full[0][1]}, columns {full[1][0]}..{full[1][1]} (drawn clipped to the "
                  f"{shape[2]}x{shape[3]} input); {args.output}")
            return 0
        model, spec, info, _ = _read_checkpoint(args.checkpoint)
        if args.kind == "filters":
            viz.filters(model, args.output, args.layer)
        elif args.kind == "features":
            maps, _ = viz.feature_maps(model, image_for(info), args.layer, args.output)
            print(f"{args.layer}: {maps.shape[0]} maps of {maps.shape[1]}x{maps.shape[2]}")
        else:
            names = info.get("classes") or []
            smap, target = viz.saliency(model, image_for(info), args.target, args.output)
            label = names[target] if target < len(names) else str(target)
            print(f"saliency for class {label}")
    except ValueError as exc:
        raise CLIError(_one_line(exc)) from None
    print(f"wrote {args.output}")
    return 0


def _summary(args):
    from .models import MODELS
    from .summary import format_summary, summary
    if args.model not in MODELS:
        raise CLIError(f"unknown model {args.model!r}; choose one of: "
                       f"{', '.join(sorted(MODELS))}")
    try:
        shape = tuple(int(s) for s in args.input.split(","))
    except ValueError:
        raise CLIError(f"--input must be comma-separated integers such as 1,3,224,224, got "
                       f"{args.input!r}") from None
    if len(shape) != 4 or min(shape) <= 0:
        raise CLIError(f"--input must be N,C,H,W with positive sizes, got {args.input!r}")
    if args.json:
        _check_writable_file(args.json, "--json")
    from ._runtime import get_memory_limit
    sample = math.prod(shape[1:]) * 4
    if sample > get_memory_limit():
        raise CLIError(f"--input {args.input}: one sample needs {sample:,} bytes, more than the "
                       f"memory limit of {get_memory_limit():,} bytes")
    num_classes = args.num_classes or (10 if args.model == "lenet5" else 1000)
    kwargs = _model_kwargs(args.model, num_classes, shape[1], shape[2])
    from .nn import init
    with init.skip_init():
        model = _build(args.model, kwargs)
    for p in model.parameters():
        p.data[...] = 0.0
    try:
        layers, totals = summary(model, shape)
    except ValueError as exc:
        raise CLIError(f"{args.model} cannot take input {shape}: "
                       f"{' '.join(str(exc).split())}") from None
    print(format_summary(layers, totals, f"{args.model} (input {shape})"))
    if args.json:
        _write_json(dict(model=args.model, layers=[lay.as_dict() for lay in layers],
                         totals={k: list(v) if isinstance(v, tuple) else v
                                 for k, v in totals.items()}), args.json)
    return 0


def _demo(args):
    from ._demo import demo
    return demo()


# ---------------------------------------------------------------------------


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option shows its default, also those without a help text; options whose default
    is None (chosen later, e.g. by model) say so in their own help."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is argparse.SUPPRESS or \
                "%(default)" in text or not action.option_strings or \
                isinstance(action.default, bool) and action.default is False:
            return text
        return (text + " " if text else "") + "(default: %(default)s)"


def _parser():
    from .models import MODELS
    p = argparse.ArgumentParser(prog="cnncore", description="cnncore: convolutional networks on "
                                "a small C++ core", epilog=_EPILOG)
    from . import __version__
    p.add_argument("--version", action="version", version=f"cnncore {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("demo", help="convolve a small image and print results you can check by hand")

    t = sub.add_parser("train", help="train a model (default: LeNet-5 on the bundled digits)",
                       formatter_class=_HelpFormatter,
                       epilog=f"defaults by model: {_DEFAULTS_HELP}. {_EPILOG}")
    t.add_argument("--model", default="lenet5", help=f"one of: {', '.join(sorted(MODELS))}")
    t.add_argument("--data", default="digits",
                   help="'digits' (bundled), an IDX folder (MNIST/Fashion-MNIST), a .npz file, "
                        "or a folder of images per class")
    t.add_argument("--format", default="auto", choices=["auto", "digits", "idx", "npz", "folder"],
                   help="how to read --data")
    by_model = "default: by model, see below"
    t.add_argument("--epochs", type=_POSITIVE, default=None, help=by_model)
    t.add_argument("--batch-size", type=_POSITIVE, default=32,
                   help="images per step (with --distributed: over all ranks)")
    t.add_argument("--lr", type=_bounded(float, 0, lo_open=True), default=None, help=by_model)
    t.add_argument("--optimizer", default=None, choices=["adam", "adamw", "sgd"], help=by_model)
    t.add_argument("--momentum", type=_bounded(float, 0, 1), default=0.9, help="SGD momentum")
    t.add_argument("--nesterov", action="store_true", help="SGD with Nesterov momentum")
    t.add_argument("--weight-decay", type=_bounded(float, 0), default=None, help=by_model)
    t.add_argument("--schedule", default=None, choices=["cosine", "step", "none"],
                   help=by_model)
    t.add_argument("--seed", type=_NON_NEGATIVE, default=0,
                   help="initialisation, split, shuffling and augmentation")
    t.add_argument("--threads", type=_bounded(int, 0, 1024), default=0, help="kernel threads (0: auto = 1 for lenet5, else all cores)")
    t.add_argument("--out", default=_DEFAULT_OUT, help="folder for checkpoint, curves, report")
    t.add_argument("--json", metavar="PATH", help="write the report here (default OUT/report.json)")
    t.add_argument("--input-size", type=_NON_NEGATIVE, default=None,
                   help="resize images to this (0: keep; default: by model, 64 for alexnet "
                        "and zfnet, else 0)")
    t.add_argument("--channels", type=int, choices=[0, 1, 3], default=0,
                   help="image folders: 1 (gray) or 3 (RGB); 0: gray")
    t.add_argument("--num-classes", type=_num_classes_arg(), default=0, help="0: from the data")
    t.add_argument("--test-fraction", type=_bounded(float, 0, 1, lo_open=True, hi_open=True), default=0.2,
                   help="held-out share when the data has no test split")
    t.add_argument("--translate", type=_NON_NEGATIVE, default=2, help="random translation (pixels)")
    t.add_argument("--hflip", action="store_true", help="random horizontal flips")
    t.add_argument("--jitter", type=_bounded(float, 0), default=0.0, metavar="ALPHASTD",
                   help="AlexNet's RGB intensity jitter along the training images' principal "
                        "colour components (colour images; 0: off, AlexNet used 0.1)")
    t.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no translation, flips or jitter")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--no-plot", action="store_true", help="skip the PNG of the curves")
    t.add_argument("--resume", metavar="CHECKPOINT|DIR",
                   help="continue the run that wrote CHECKPOINT (or DIR/checkpoint."
                        "safetensors; it is saved after every epoch) up to --epochs, with its "
                        "model, optimiser and schedule state")
    t.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where to train: cuda needs the CUDA backend and a GPU (docs/cuda.md)")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI: run as 'mpiexec -n N cnncore train "
                        "--distributed ...'; --batch-size is the global batch (docs/"
                        "distributed.md)")
    t.add_argument("--sync-bn", action="store_true",
                   help="with --distributed: batch norm statistics over the global batch")
    t.add_argument("--dist-timeout", type=_bounded(float, 0, lo_open=True), default=300.0,
                   help="with --distributed: seconds a rank waits for the others before the "
                        "job is stopped")

    e = sub.add_parser("eval", help="evaluate a checkpoint on test data", epilog=_EPILOG,
                       formatter_class=_HelpFormatter)
    e.add_argument("checkpoint")
    e.add_argument("--data", default=None,
                   help="test data (default: the data the checkpoint was trained on, which it "
                        "records, with its format, split and seed)")
    e.add_argument("--format", default=None, choices=["auto", "digits", "idx", "npz", "folder"],
                   help="default: the checkpoint's, else auto")
    e.add_argument("--batch-size", type=_POSITIVE, default=256, help="images per forward pass")
    e.add_argument("--test-fraction", type=_bounded(float, 0, 1, lo_open=True, hi_open=True),
                   default=None, help="default: the checkpoint's, else 0.2")
    e.add_argument("--seed", type=_NON_NEGATIVE, default=None,
                   help="default: the checkpoint's, else 0")
    e.add_argument("--threads", type=_bounded(int, 0, 1024), default=0,
                   help="kernel threads (0: all cores)")
    e.add_argument("--json", metavar="PATH")

    r = sub.add_parser("predict", help="classify image files with a checkpoint", epilog=_EPILOG,
                       formatter_class=_HelpFormatter)
    r.add_argument("checkpoint")
    r.add_argument("images", nargs="+")
    r.add_argument("--top", type=_POSITIVE, default=3)
    r.add_argument("--polarity", choices=["auto", "as-is", "invert"], default="auto",
                   help="gray images: 'auto' inverts an image whose background is light when "
                        "the training images' was dark (or the reverse), and says so")
    r.add_argument("--invert", dest="polarity", action="store_const", const="invert",
                   help="the same as --polarity invert")
    r.add_argument("--json", metavar="PATH")

    s = sub.add_parser("summary", help="per-layer shapes, parameters, MACs, receptive fields",
                       epilog=_EPILOG, formatter_class=_HelpFormatter)
    s.add_argument("model", help=f"one of: {', '.join(sorted(MODELS))}")
    s.add_argument("--input", default=None, help="N,C,H,W (default 1,1,32,32 for lenet5, "
                                                "1,3,224,224 otherwise)")
    s.add_argument("--num-classes", type=_num_classes_arg(), default=0,
                   help="0: the model's own (1000, or 10 for lenet5)")
    s.add_argument("--json", metavar="PATH")
    c = sub.add_parser("convert-weights", help="a torch .pth/.pt (read without torch), timm "
                       "safetensors or .npz weights file to a cnncore safetensors file",
                       epilog=_EPILOG, formatter_class=_HelpFormatter)
    c.add_argument("input", metavar="IN")
    c.add_argument("output", metavar="OUT.safetensors")
    c.add_argument("--model", default=None,
                   help="rename to this zoo model's names (timm -> torchvision) and check "
                        "that the weights load into it")
    x = sub.add_parser("export-onnx", help="a checkpoint's model as an ONNX file (needs the "
                       "onnx package)", epilog=_EPILOG, formatter_class=_HelpFormatter)
    x.add_argument("checkpoint")
    x.add_argument("output", metavar="OUT.onnx")
    x.add_argument("--opset", type=_bounded(int, 13, 23), default=18,
                   help="ONNX opset (19 or more for circular padding)")
    v = sub.add_parser("viz", help="pictures of what a CNN sees: filters, feature maps, "
                       "receptive fields, saliency", epilog=_EPILOG, formatter_class=_HelpFormatter)
    vk = v.add_subparsers(dest="kind", required=True)
    f = vk.add_parser("filters", help="the first convolution's kernels as a grid",
                      formatter_class=_HelpFormatter)
    f.add_argument("checkpoint")
    f.add_argument("output", metavar="OUT.png")
    f.add_argument("--layer", default=None, help="another convolution, by its summary name")
    fm = vk.add_parser("features", help="the feature maps of a named layer for an image",
                       formatter_class=_HelpFormatter)
    fm.add_argument("checkpoint")
    fm.add_argument("image")
    fm.add_argument("output", metavar="OUT.png")
    fm.add_argument("--layer", required=True, help="a layer name as `cnncore summary` prints")
    rf = vk.add_parser("receptive-field", help="the input region one output unit reads",
                       formatter_class=_HelpFormatter)
    rf.add_argument("model", help=f"one of: {', '.join(sorted(MODELS))}")
    rf.add_argument("output", metavar="OUT.png")
    rf.add_argument("--layer", required=True, help="a layer name as `cnncore summary` prints")
    rf.add_argument("--unit", required=True, help="the unit's position I,J in that layer's map")
    rf.add_argument("--input", default=None, help="N,C,H,W (default 1,1,32,32 for lenet5, "
                                                  "1,3,224,224 otherwise)")
    sa = vk.add_parser("saliency", help="|d class score / d input| for an image",
                       formatter_class=_HelpFormatter)
    sa.add_argument("checkpoint")
    sa.add_argument("image")
    sa.add_argument("output", metavar="OUT.png")
    sa.add_argument("--target", type=_NON_NEGATIVE, default=None,
                    help="class index (default: the predicted one)")
    _fill_help(p)
    return p


def _fill_help(parser):
    """Give every option a help text, so that the formatter can show its default."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _fill_help(sub)
        elif action.option_strings and action.help is None and action.default is not None \
                and action.default is not False:
            action.help = "default: %(default)s"


def _one_line(exc):
    return " ".join(str(exc).splitlines())


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "summary" and args.input is None:
        args.input = "1,1,32,32" if args.model == "lenet5" else "1,3,224,224"
    handler = {"train": _train, "eval": _eval, "predict": _predict, "summary": _summary,
               "demo": _demo, "convert-weights": _convert_weights,
               "export-onnx": _export_onnx, "viz": _viz}[args.command]
    from ._runtime import get_num_threads, set_num_threads
    threads = get_num_threads()
    from .data import DataError
    from .io import CheckpointError
    try:
        return handler(args)
    except (CLIError, DataError, CheckpointError) as exc:
        parser.exit(EXIT_USAGE, f"cnncore: error: {_one_line(exc)}\n")
    except TrainingDiverged as exc:
        parser.exit(EXIT_DIVERGED, f"cnncore: error: {_one_line(exc)}\n")
    except KeyboardInterrupt:
        parser.exit(130, "cnncore: interrupted\n")
    except BrokenPipeError:
        # The reader went away (`cnncore summary ... | head`): stop quietly, and
        # point stdout at devnull so the interpreter's final flush stays quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        set_num_threads(threads)            # main() may be called in-process (tests, notebooks)
