"""The ``cnncore`` command line: ``train``, ``eval``, ``predict``, ``summary``, ``demo``.

``cnncore train`` with no arguments trains the classic LeNet-5 (sigmoid,
average pooling) on the handwritten digits that scikit-learn ships (no
download), shows a progress bar and per-epoch loss/accuracy, and writes a
checkpoint, a PNG of the training curves and a JSON report into ``--out``.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

__all__ = ["main"]

_DEFAULT_OUT = "runs/train"


class CLIError(Exception):
    """A user-facing error: printed as ``cnncore: error: ...``, exit status 2."""


# ---------------------------------------------------------------------------
# data



def _bounded(kind, lo=None, hi=None, lo_open=False, hi_open=False):
    """argparse type: a number of `kind` within the given bounds."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
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

def _load_data(args, input_size, channels):
    """(train, test, description) ArrayDatasets for --data / --format."""
    from . import data as D
    src, fmt = args.data, args.format
    if src == "digits" or fmt == "digits":
        size = input_size or 32
        pad = 2 if size >= 16 else 0
        tr = D.load_digits("train", size=size, pad=pad, test_fraction=args.test_fraction)
        te = D.load_digits("test", size=size, pad=pad, test_fraction=args.test_fraction)
        desc = f"bundled digits ({len(tr)} train / {len(te)} test, {size}x{size})"
    else:
        if not os.path.exists(src):
            raise CLIError(f"--data {src!r}: no such file or folder")
        if fmt == "auto":
            if os.path.isdir(src):
                fmt = "idx" if D.datasets.is_mnist_folder(src) else "folder"
            elif src.endswith(".npz"):
                fmt = "npz"
            else:
                raise CLIError(f"--data {src!r}: cannot tell the format; pass --format "
                               f"idx|npz|folder")
        try:
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
        except D.DataError as exc:
            raise CLIError(str(exc)) from None
        if input_size and tr.images.shape[-1] != input_size:
            tr = D.ArrayDataset(D.transforms.resize(tr.images, input_size), tr.labels,
                                classes=tr.classes)
            te = D.ArrayDataset(D.transforms.resize(te.images, input_size), te.labels,
                                classes=te.classes)
        desc = f"{src} ({fmt}: {len(tr)} train / {len(te)} test, {tr.image_shape})"
    return tr, te, desc


def _split(ds, args):
    from .data import split
    tr, te = split(ds.labels, args.test_fraction, args.seed)
    return ds.subset(tr), ds.subset(te)


# ---------------------------------------------------------------------------
# model <-> checkpoint metadata


def _build(name, kwargs):
    from . import models
    try:
        return models.get_model(name, **kwargs)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _model_kwargs(name, num_classes, channels, size):
    kw = dict(num_classes=num_classes, in_channels=channels)
    if name == "lenet5":
        kw["input_size"] = size
    return kw


def _read_checkpoint(path):
    from . import io
    if not os.path.isfile(path):
        raise CLIError(f"checkpoint {path!r} does not exist")
    try:
        obj, meta = io.load(path, with_metadata=True)
    except io.CheckpointError as exc:
        raise CLIError(str(exc)) from None
    if "cnncore.model" not in meta:
        raise CLIError(f"checkpoint {path!r} has no cnncore.model metadata (was it written by "
                       f"'cnncore train'?)")
    spec = json.loads(meta["cnncore.model"])
    info = json.loads(meta.get("cnncore.data", "{}"))
    state = obj["model"] if isinstance(obj, dict) and "model" in obj else obj
    model = _build(spec["name"], spec["kwargs"])
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as exc:
        raise CLIError(f"checkpoint {path!r} does not fit model {spec['name']}: "
                       f"{exc.args[0] if exc.args else exc}") from None
    model.eval()
    return model, spec, info, obj


def _normalize(x, info):
    mean = np.asarray(info.get("mean", [0.0]), np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(info.get("std", [1.0]), np.float32).reshape(1, -1, 1, 1)
    return ((x - mean) / std).astype(np.float32)


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
            out = model(x)
            total += float(F.cross_entropy(out, Tensor(y), reduction="sum").item())
            p = out.data.argmax(1)
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


def _train_threads(args):
    from ._runtime import set_num_threads
    if args.threads:
        set_num_threads(args.threads)
    elif args.model == "lenet5":
        # LeNet's kernels are too small to gain from a second thread, and on a
        # busy machine OpenMP threads waiting for a shared core cost far more.
        set_num_threads(1)


def _train_data(args):
    """(train set with its augmentation and normalisation, test set, description, info):
    info holds the normalisation, the class names and the input shape, for the checkpoint."""
    from .data import transforms as T
    tr, te, desc = _load_data(args, args.input_size, args.channels)
    channels, size = tr.images.shape[1], tr.images.shape[2]
    mean = tr.images.mean(axis=(0, 2, 3)).tolist()
    std = [max(s, 1e-6) for s in tr.images.std(axis=(0, 2, 3)).tolist()]
    info = dict(mean=mean, std=std, classes=tr.classes, input_shape=[channels, size,
                                                                    tr.images.shape[3]])
    transforms = []
    if args.augment and args.translate:
        transforms.append(T.RandomTranslate(args.translate))
    if args.augment and args.hflip:
        transforms.append(T.RandomHorizontalFlip())
    transforms.append(T.Normalize(mean, std))
    tr.transform = T.Compose(transforms)
    return tr, te, desc, info


def _train_model(name, num_classes, input_shape):
    """The model and its constructor keywords; a clear error when it cannot take the input."""
    from .tensor import Tensor, no_grad
    channels, size, width = input_shape
    kwargs = _model_kwargs(name, num_classes, channels, size)
    model = _build(name, kwargs)
    try:                                    # fail early, clearly, on a size the model can't take
        with no_grad():
            model.eval()
            model(Tensor(np.zeros((1, channels, size, width), np.float32)))
    except ValueError as exc:
        raise CLIError(f"model {name} cannot take inputs of shape {(channels, size, size)}: "
                       f"{exc}; try --input-size") from None
    return model, kwargs


def _scheduler(args, opt):
    from . import optim
    if args.schedule == "cosine":
        return optim.CosineAnnealingLR(opt, args.epochs)
    if args.schedule == "step":
        return optim.StepLR(opt, max(args.epochs // 3, 1), 0.1)
    return None


def _train_epoch(model, loader, opt, desc, show):
    """One pass over the loader; returns (images seen, summed loss, correct predictions)."""
    from . import functional as F
    model.train()
    seen, loss_sum, correct = 0, 0.0, 0
    bar = _progress(loader, len(loader), desc, show)
    for x, y in bar:
        out = model(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n = y.data.shape[0]
        loss_val = float(loss.data)
        seen += n
        loss_sum += loss_val * n
        correct += int((out.data.argmax(1) == y.data).sum())
        if show and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss_val:.4f}", refresh=False)
    return seen, loss_sum, correct


def _save_run(args, model, opt, kwargs, info, history, seconds):
    """The checkpoint (model, optimiser, metadata to rebuild and evaluate it), the PNG of the
    curves and the JSON report, then the closing line."""
    from . import io
    from ._runtime import get_num_threads
    name = args.model
    ckpt = os.path.join(args.out, "checkpoint.safetensors")
    png = os.path.join(args.out, "curves.png")
    final = history[-1] if history else dict(test_accuracy=float("nan"), test_loss=float("nan"))
    meta = {"cnncore.model": json.dumps({"name": name, "kwargs": kwargs}),
            "cnncore.data": json.dumps(info),
            "cnncore.report": json.dumps({"epochs": args.epochs,
                                          "test_accuracy": final["test_accuracy"]})}
    io.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": args.epochs},
            ckpt, metadata=meta)
    if history and not args.no_plot:
        _plot(history, png, f"{name} on {args.data}: test accuracy "
                            f"{100 * final['test_accuracy']:.2f}%")
    report = dict(model=name, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=args.optimizer, lr=args.lr, seed=args.seed,
                  threads=get_num_threads(), parameters=model.num_parameters(),
                  test_accuracy=final["test_accuracy"], test_loss=final["test_loss"],
                  seconds=seconds, checkpoint=ckpt,
                  curves=png if history and not args.no_plot else None, history=history)
    json_path = args.json or os.path.join(args.out, "report.json")
    with open(json_path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"test accuracy {100 * final['test_accuracy']:.2f}% after {args.epochs} epochs in "
          f"{seconds:.1f} s; checkpoint {ckpt}" +
          (f", curves {png}" if report["curves"] else "") + f", report {json_path}")


def _train(args):
    from . import _random
    from .data import DataLoader
    from ._runtime import get_num_threads

    _train_threads(args)
    _random.manual_seed(args.seed)
    t_start = time.perf_counter()
    name = args.model
    from .models import MODELS
    if name not in MODELS:
        raise CLIError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    tr, te, desc, info = _train_data(args)
    num_classes = args.num_classes or max(tr.num_classes, int(te.labels.max()) + 1)
    model, kwargs = _train_model(name, num_classes, info["input_shape"])
    opt = _optimizer(args, model.parameters())
    sched = _scheduler(args, opt)
    loader = DataLoader(tr, args.batch_size, shuffle=True, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    print(f"cnncore train: {name} ({model.num_parameters():,} parameters) on {desc}; "
          f"{args.epochs} epochs, batch {args.batch_size}, {args.optimizer} lr {args.lr}, "
          f"{get_num_threads()} threads", flush=True)
    history = []
    show = not args.no_progress
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        seen, loss_sum, correct = _train_epoch(model, loader, opt,
                                               f"epoch {epoch}/{args.epochs}", show)
        if sched is not None:
            sched.step()
        test_loss, test_acc, _ = _evaluate(model, te.images, te.labels, info)
        rec = dict(epoch=epoch, train_loss=loss_sum / max(seen, 1),
                   train_accuracy=correct / max(seen, 1), test_loss=test_loss,
                   test_accuracy=test_acc, seconds=time.perf_counter() - t0)
        history.append(rec)
        print(f"epoch {epoch:3d}/{args.epochs}  train loss {rec['train_loss']:.4f}  "
              f"acc {100 * rec['train_accuracy']:6.2f}%  |  test loss {test_loss:.4f}  "
              f"acc {100 * test_acc:6.2f}%  ({rec['seconds']:.1f}s)", flush=True)
    _save_run(args, model, opt, kwargs, info, history, time.perf_counter() - t_start)
    return 0


# ---------------------------------------------------------------------------
# eval / predict / summary


def _eval(args):
    from ._runtime import set_num_threads
    if args.threads:
        set_num_threads(args.threads)
    model, spec, info, _ = _read_checkpoint(args.checkpoint)
    shape = info.get("input_shape", [1, 32, 32])
    if args.data == "digits" and args.format == "auto":
        args.format = "digits"
    _, te, desc = _load_data(args, shape[1], shape[0])
    if list(te.images.shape[1:]) != list(shape):
        raise CLIError(f"data images have shape {te.images.shape[1:]}, the checkpoint's model "
                       f"takes {tuple(shape)}")
    t0 = time.perf_counter()
    loss, acc, _ = _evaluate(model, te.images, te.labels, info, args.batch_size)
    print(f"{spec['name']} on {desc}: test loss {loss:.4f}, accuracy {100 * acc:.2f}% "
          f"({len(te)} images, {time.perf_counter() - t0:.1f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(model=spec["name"], test_accuracy=acc, test_loss=loss,
                           images=len(te), checkpoint=args.checkpoint), f, indent=2)
    return 0


def _predict(args):
    from . import functional as F
    from .data import DataError, load_image
    from .tensor import Tensor, no_grad
    model, spec, info, _ = _read_checkpoint(args.checkpoint)
    c, h, w = info.get("input_shape", [1, 32, 32])
    classes = info.get("classes") or [str(i) for i in range(spec["kwargs"]["num_classes"])]
    results = []
    for path in args.images:
        try:
            img = load_image(path, (h, w), c)
        except (DataError, FileNotFoundError) as exc:
            raise CLIError(str(exc)) from None
        if args.invert:
            img = 1.0 - img
        with no_grad():
            p = F.softmax(model(Tensor(_normalize(img[None], info))), 1).data[0]
        top = np.argsort(-p)[:args.top]
        results.append(dict(image=path, prediction=classes[int(top[0])],
                            probability=float(p[top[0]]),
                            top=[[classes[int(i)], float(p[i])] for i in top]))
        alts = ", ".join(f"{classes[int(i)]} {100 * p[i]:.1f}%" for i in top)
        print(f"{path}: {classes[int(top[0])]}  ({alts})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
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
        raise CLIError(f"{args.model} cannot take input {shape}: {exc}") from None
    print(format_summary(layers, totals, f"{args.model} (input {shape})"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(model=args.model, layers=[lay.as_dict() for lay in layers],
                           totals={k: list(v) if isinstance(v, tuple) else v
                                   for k, v in totals.items()}), f, indent=2)
    return 0


def _demo(args):
    from ._demo import demo
    return demo()


# ---------------------------------------------------------------------------


def _parser():
    from .models import MODELS
    p = argparse.ArgumentParser(prog="cnncore", description="cnncore: convolutional networks on "
                                "a small C++ core")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("demo", help="convolve a small image and print results you can check by hand")

    t = sub.add_parser("train", help="train a model (default: LeNet-5 on the bundled digits)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--model", default="lenet5", help=f"one of: {', '.join(sorted(MODELS))}")
    t.add_argument("--data", default="digits",
                   help="'digits' (bundled), an IDX folder (MNIST/Fashion-MNIST), a .npz file, "
                        "or a folder of images per class")
    t.add_argument("--format", default="auto", choices=["auto", "digits", "idx", "npz", "folder"])
    t.add_argument("--epochs", type=_POSITIVE, default=60)
    t.add_argument("--batch-size", type=_POSITIVE, default=32)
    t.add_argument("--lr", type=_bounded(float, 0, lo_open=True), default=5e-3)
    t.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd"])
    t.add_argument("--momentum", type=_bounded(float, 0, 1), default=0.9, help="SGD momentum")
    t.add_argument("--nesterov", action="store_true", help="SGD with Nesterov momentum")
    t.add_argument("--weight-decay", type=_bounded(float, 0), default=0.0)
    t.add_argument("--schedule", default="cosine", choices=["cosine", "step", "none"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=_bounded(int, 0, 1024), default=0, help="kernel threads (0: auto = 1 for lenet5, else all cores)")
    t.add_argument("--out", default=_DEFAULT_OUT, help="folder for checkpoint, curves, report")
    t.add_argument("--json", metavar="PATH", help="write the report here (default OUT/report.json)")
    t.add_argument("--input-size", type=_NON_NEGATIVE, default=0, help="resize images to this (0: keep)")
    t.add_argument("--channels", type=_bounded(int, 0, 3), default=0, help="image folders: 1 (gray) or 3 (RGB)")
    t.add_argument("--num-classes", type=_NON_NEGATIVE, default=0, help="0: from the data")
    t.add_argument("--test-fraction", type=_bounded(float, 0, 1, lo_open=True, hi_open=True), default=0.2,
                   help="held-out share when the data has no test split")
    t.add_argument("--translate", type=_NON_NEGATIVE, default=2, help="random translation (pixels)")
    t.add_argument("--hflip", action="store_true", help="random horizontal flips")
    t.add_argument("--no-augment", dest="augment", action="store_false")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--no-plot", action="store_true", help="skip the PNG of the curves")

    e = sub.add_parser("eval", help="evaluate a checkpoint on test data")
    e.add_argument("checkpoint")
    e.add_argument("--data", default="digits")
    e.add_argument("--format", default="auto", choices=["auto", "digits", "idx", "npz", "folder"])
    e.add_argument("--batch-size", type=_POSITIVE, default=256)
    e.add_argument("--test-fraction", type=_bounded(float, 0, 1, lo_open=True, hi_open=True), default=0.2)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--threads", type=_bounded(int, 0, 1024), default=0)
    e.add_argument("--json", metavar="PATH")

    r = sub.add_parser("predict", help="classify image files with a checkpoint")
    r.add_argument("checkpoint")
    r.add_argument("images", nargs="+")
    r.add_argument("--top", type=_POSITIVE, default=3)
    r.add_argument("--invert", action="store_true",
                   help="invert gray levels (dark digits on a light background)")
    r.add_argument("--json", metavar="PATH")

    s = sub.add_parser("summary", help="per-layer shapes, parameters, MACs, receptive fields")
    s.add_argument("model", help=f"one of: {', '.join(sorted(MODELS))}")
    s.add_argument("--input", default=None, help="N,C,H,W (default 1,1,32,32 for lenet5, "
                                                "1,3,224,224 otherwise)")
    s.add_argument("--num-classes", type=_NON_NEGATIVE, default=0)
    s.add_argument("--json", metavar="PATH")
    return p


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "summary" and args.input is None:
        args.input = "1,1,32,32" if args.model == "lenet5" else "1,3,224,224"
    handler = {"train": _train, "eval": _eval, "predict": _predict, "summary": _summary,
               "demo": _demo}[args.command]
    from ._runtime import get_num_threads, set_num_threads
    threads = get_num_threads()
    try:
        return handler(args)
    except CLIError as exc:
        parser.exit(2, f"cnncore: error: {exc}\n")
    except KeyboardInterrupt:
        parser.exit(130, "cnncore: interrupted\n")
    except BrokenPipeError:
        # The reader went away (`cnncore summary ... | head`): stop quietly, and
        # point stdout at devnull so the interpreter's final flush stays quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        set_num_threads(threads)            # main() may be called in-process (tests, notebooks)
