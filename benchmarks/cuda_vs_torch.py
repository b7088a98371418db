#!/usr/bin/env python3
"""cnncore's CUDA backend against PyTorch CUDA, in the same run, with the same weights.

Workloads (``--only`` picks some): ResNet-18 eval forward at batch 32, 224x224; a ResNet-18
training step (forward, cross-entropy, zero_grad, backward, SGD momentum 0.9) at batch 32,
224x224; and the per-layer convolution suite (ResNet-18's 3x3 and 1x1 layers at batch 32,
forward and backward). PyTorch runs twice, with ``torch.backends.cudnn.allow_tf32`` (and
``torch.backends.cuda.matmul.allow_tf32``) off and on: cnncore computes in plain float32, so
the TF32-off column is the like-for-like one. Times are medians of ``--repeat`` rounds taken
alternately after a warm-up, each timed call closed by a device synchronisation.
``ratio`` = torch_ms / cnncore_ms (above 1: cnncore faster).

Finally a leak check: device memory held after 100 training steps of LeNet-5 must equal
what was held after the second (the caching allocator's figures).

Without a GPU (cnncore.cuda.is_available() false) the script says why and exits 0, unless
``--emulator`` asks it to run the workloads' correctness lines (small sizes) on the host
emulator instead; nothing is timed then.

    python3 benchmarks/cuda_vs_torch.py                  # on a machine with a GPU
    python3 benchmarks/cuda_vs_torch.py --only resnet18_train --repeat 10
    python3 benchmarks/cuda_vs_torch.py --emulator       # anywhere: the plumbing, no timing
"""
import argparse
import statistics
import sys
import time

import numpy as np

import cnncore as cc
from cnncore import functional as F

try:
    import torch
    import torch_models
except ImportError:  # pragma: no cover - the rival is optional
    torch = None

LAYERS = [  # ResNet-18's convolutions at 224x224 input: (C_in, C_out, size, kernel, stride)
    (64, 64, 56, 3, 1), (64, 128, 56, 3, 2), (128, 128, 28, 3, 1), (256, 256, 14, 3, 1),
    (512, 512, 7, 3, 1), (64, 128, 56, 1, 2), (3, 64, 224, 7, 2),
]


def sync():
    cc.cuda.synchronize()
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeat):
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def alternate(fns, repeat):
    """Medians (ms) of each callable, called in rotating order after one warm-up each."""
    for f in fns:
        f()
    sync()
    times = [[] for _ in fns]
    for r in range(repeat):
        order = list(range(len(fns)))
        order = order[r % len(order):] + order[:r % len(order)]
        for k in order:
            t0 = time.perf_counter()
            fns[k]()
            sync()
            times[k].append(time.perf_counter() - t0)
    return [1e3 * statistics.median(t) for t in times]


def set_tf32(on):
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def model_pair(batch, size, classes=1000):
    torch.manual_seed(0)
    tm = torch_models.BUILDERS["resnet18"](num_classes=classes).cuda()
    with cc.nn.init.skip_init():
        cm = cc.models.resnet18(num_classes=classes)
    cm.load_state_dict({k: v.detach().cpu() for k, v in tm.state_dict().items()})
    cm.to("cuda")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    y = rng.integers(0, classes, batch)
    return tm, cm, x, y


def bench_resnet(train, batch, size, repeat):
    tm, cm, x, y = model_pair(batch, size)
    tm.train(train)
    cm.train(train)
    xc, yc = cc.tensor(x).to("cuda"), cc.tensor(y)
    xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    if train:
        oc = cc.optim.SGD(cm.parameters(), lr=0.01, momentum=0.9)
        ot = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)

        def ours():
            out = cm(xc)
            oc.zero_grad()
            F.cross_entropy(out, yc).backward()
            oc.step()
            return out

        def rival():
            out = tm(xt)
            ot.zero_grad()
            torch.nn.functional.cross_entropy(out, yt).backward()
            ot.step()
            return out
    else:
        def ours():
            with cc.no_grad():
                return cm(xc)

        def rival():
            with torch.no_grad():
                return tm(xt)
    a = ours().cpu().numpy()
    b = rival().detach().cpu().numpy()
    err = float(np.abs(a - b).max() / max(1e-30, np.abs(b).max()))

    def rival_tf32():
        set_tf32(True)
        try:
            return rival()
        finally:
            set_tf32(False)
    set_tf32(False)
    ms_ours, ms_t, ms_t32 = alternate([ours, rival, rival_tf32], repeat)
    return ms_ours, ms_t, ms_t32, err


def bench_layer(layer, batch, repeat):
    cin, cout, size, k, s = layer
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, cin, size, size), dtype=np.float32)
    w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
    pad = k // 2
    xc = cc.tensor(x).to("cuda").requires_grad_()
    wc = cc.tensor(w).to("cuda").requires_grad_()
    xt = torch.from_numpy(x).cuda().requires_grad_()
    wt = torch.from_numpy(w).cuda().requires_grad_()
    gy = None

    def fwd_ours():
        return F.conv2d(xc, wc, stride=s, padding=pad)

    def fwd_torch():
        return torch.nn.functional.conv2d(xt, wt, stride=s, padding=pad)

    out = fwd_ours()
    gy_np = rng.standard_normal(out.shape, dtype=np.float32)
    gyc, gyt = cc.tensor(gy_np).to("cuda"), torch.from_numpy(gy_np).cuda()
    del gy

    def bwd_ours():
        xc.grad = wc.grad = None
        fwd_ours().backward(gyc)

    def bwd_torch():
        xt.grad = wt.grad = None
        fwd_torch().backward(gyt)
    set_tf32(False)
    f_ours, f_t = alternate([fwd_ours, fwd_torch], repeat)
    b_ours, b_t = alternate([bwd_ours, bwd_torch], repeat)
    return f_ours, f_t, b_ours, b_t


def leak_check(steps=100):
    model = cc.models.lenet5().to("cuda")
    opt = cc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = cc.tensor(rng.standard_normal((64, 1, 32, 32), dtype=np.float32)).to("cuda")
    y = cc.tensor(rng.integers(0, 10, 64))
    held = []
    for i in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if i in (1, steps - 1):
            sync()
            held.append(cc.cuda.memory_allocated())
    return held, cc.cuda.memory_stats()


def emulator_run():
    """Correctness only, small sizes, on the host emulator (no timing)."""
    cc.cuda.use_emulator(True)
    model = cc.models.resnet18(num_classes=10)
    twin = cc.models.resnet18(num_classes=10)
    twin.load_state_dict(model.state_dict())
    twin.to("cuda")
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    a = model.eval()(cc.tensor(x)).numpy()
    b = twin.eval()(cc.tensor(x).to("cuda")).cpu().numpy()
    print(f"emulator: resnet18 eval forward 2x3x32x32, max |cpu - cuda| / max |cpu| = "
          f"{np.abs(a - b).max() / np.abs(a).max():.2e}")
    held, stats = leak_check(10)
    print(f"emulator: lenet5 device memory after step 2 / 10: {held[0]} / {held[1]} bytes; {stats}")
    return 0 if held[0] == held[1] else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma list of: resnet18_fwd, resnet18_train, layers, leak")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--emulator", action="store_true", help="no GPU: check the plumbing on the emulator")
    args = ap.parse_args(argv)
    if args.emulator:
        return emulator_run()
    if not cc.cuda.is_available():
        print(f"no CUDA device for cnncore: {cc.cuda.why_unavailable()}")
        return 0
    only = set(filter(None, args.only.split(","))) or {"resnet18_fwd", "resnet18_train", "layers", "leak"}
    print(f"cnncore {cc.__version__} on {cc.cuda.get_device_name()}")
    have_torch = torch is not None and torch.cuda.is_available()
    if have_torch:
        print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    else:
        print("torch with CUDA is not available: the rival columns are skipped")
    rc = 0
    if have_torch:
        for name, train in (("resnet18_fwd", False), ("resnet18_train", True)):
            if name not in only:
                continue
            ours, t, t32, err = bench_resnet(train, args.batch, args.size, args.repeat)
            print(f"{name} b{args.batch} {args.size}: cnncore {ours:8.2f} ms | torch tf32-off {t:8.2f} ms "
                  f"(ratio {t / ours:5.2f}) | torch tf32-on {t32:8.2f} ms (ratio {t32 / ours:5.2f}) | err {err:.1e}")
        if "layers" in only:
            print("layer (C_in, C_out, size, k, stride) b%d: fwd ours/torch ms (ratio) | fwd+bwd ours/torch ms "
                  "(ratio), TF32 off" % args.batch)
            for layer in LAYERS:
                fo, ft, bo, bt = bench_layer(layer, args.batch, max(3, args.repeat // 4))
                print(f"  {layer}: {fo:8.2f} / {ft:8.2f} ({ft / fo:5.2f}) | {bo:8.2f} / {bt:8.2f} ({bt / bo:5.2f})")
    if "leak" in only:
        held, stats = leak_check()
        ok = held[0] == held[1]
        rc |= 0 if ok else 1
        print(f"leak check: device memory after step 2 / 100: {held[0]} / {held[1]} bytes "
              f"({'no leak' if ok else 'LEAK'}); allocator {stats}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
