"""Fuzz harness over every public op of cnncore.ops (atheris, libFuzzer's engine).

Each input picks an op, starts from a valid call of it (tests/op_catalogue.py), and lets
the fuzzer's bytes rewrite it: integers in the parameters replaced by extremes (0, -1,
2**31, 2**63 - 1, -2**63, 2**64, ...), arrays reshaped, emptied, retyped, strided,
misaligned or filled with NaN, inf and huge values, keyword arguments added with
integers, tuples, floats, strings or None. A call must then return or raise ValueError,
TypeError or IndexError whose message names the op; anything else (another exception,
a message without the op's name, a crash, a hang) is a finding. The memory limit is set
low, so a size the fuzzer makes up cannot take the machine's memory.

  python fuzz/fuzz_ops.py -runs=5000 -max_len=128 -len_control=0 -seed=1   # CI smoke run
  mkdir -p fuzz/corpus && python fuzz/fuzz_ops.py -max_total_time=3600 -max_len=128 \
      -len_control=0 -print_final_stats=1 -artifact_prefix=fuzz/ fuzz/corpus   # the long run

A finding is written to crash-<hash> (under -artifact_prefix); replay it with
``python fuzz/fuzz_ops.py crash-<hash>``.

The C++ core is not built with coverage instrumentation (that needs clang's
-fsanitize=fuzzer-no-link), so guidance comes from the Python layer's branches; the
rewrites above are what reach the core's checks. Build the extension with
scripts/sanitize.sh and run this under it to catch memory errors that do not crash.
"""
import collections
import inspect
import json
import os
import sys
import warnings

import atheris
import numpy as np

with atheris.instrument_imports(include=["cnncore"]):
    import cnncore
    from cnncore import ops  # noqa: F401  (instrumented with the package)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from op_catalogue import CALLS  # noqa: E402

NAMES = sorted(CALLS)
EXTREMES = [0, 1, 2, 3, -1, -2, 7, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 62, 2 ** 63 - 1, 2 ** 63 - 2,
            -2 ** 63, 2 ** 63, 2 ** 64, 10 ** 12, -10 ** 12]
FLOATS = [0.0, -0.0, 1e-300, 5e-324, 1e300, float("inf"), float("-inf"), float("nan"), 0.5, 2.0, -1.0]
KWARGS = ["stride", "padding", "dilation", "groups", "output_padding", "output_size", "kernel_size",
          "ceil_mode", "count_include_pad", "sigma", "padding_mode", "flip", "algorithm", "dim", "p",
          "training", "momentum", "eps", "ignore_index", "reduction", "label_smoothing", "mode", "value",
          "tile", "negative_slope", "return_indices", "indices", "seed", "bias", "weight"]
WORDS = ["zeros", "reflect", "replicate", "circular", "symmetric", "same", "valid", "full", "auto",
         "reference", "direct", "im2col", "fft", "mean", "sum", "none", "", "x" * 100]
ALLOWED = (ValueError, TypeError, IndexError)
OUTCOMES = collections.Counter()  # how the calls ended; FUZZ_STATS=path writes it there
STATS = os.environ.get("FUZZ_STATS")


def _own_keywords(name):
    fn = getattr(ops, name)
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.default is not inspect.Parameter.empty]


OWN = {name: _own_keywords(name) or KWARGS for name in NAMES}


def _base(name):
    return name[:-len("_backward")] if name.endswith("_backward") else name


def _value(fdp):
    kind = fdp.ConsumeIntInRange(0, 7)
    if kind == 0:
        return fdp.PickValueInList(EXTREMES)
    if kind == 1:
        return fdp.ConsumeIntInRange(-3, 9)
    if kind == 2:
        return tuple(fdp.PickValueInList(EXTREMES[:8]) for _ in range(fdp.ConsumeIntInRange(0, 7)))
    if kind == 3:
        return fdp.PickValueInList(FLOATS)
    if kind == 4:
        return fdp.PickValueInList(WORDS)
    if kind == 5:
        return fdp.PickValueInList([None, True, False, [], (), {}])
    if kind == 6:
        return np.int64(fdp.PickValueInList(EXTREMES[:12]))
    return fdp.ConsumeInt(9)


def _array(fdp, a):
    how = fdp.ConsumeIntInRange(0, 9)
    if how == 0:  # another shape of up to 6 small dimensions, maybe empty
        shape = tuple(fdp.ConsumeIntInRange(0, 5) for _ in range(fdp.ConsumeIntInRange(0, 6)))
        return np.ones(shape, a.dtype)
    if how == 1 and a.ndim:
        return a[:0]
    if how == 2:
        return a.astype(fdp.PickValueInList([np.float16, np.int32, np.int64, np.bool_, np.complex64,
                                             np.float64, np.float32]))
    if how == 3 and a.ndim:
        return a[..., ::-1]
    if how == 4 and a.size and a.dtype.kind == "f":
        b = a.copy()
        b.flat[fdp.ConsumeIntInRange(0, a.size - 1)] = fdp.PickValueInList(FLOATS)
        return b
    if how == 5:
        buf = bytearray(a.nbytes + 1)
        u = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
        u[...] = a
        return u
    if how == 6 and a.ndim and a.shape[-1]:
        return np.broadcast_to(a[..., :1], a.shape[:-1] + (fdp.ConsumeIntInRange(0, 9),))
    if how == 7:
        return a.reshape(-1) if a.ndim else a
    return a


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    name = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]
    fn, args, kwargs = CALLS[name](np.random.default_rng(fdp.ConsumeIntInRange(0, 3)),
                                   fdp.PickValueInList(["f4", "f8"]))
    args, kwargs = list(args), dict(kwargs)
    try:
        for _ in range(fdp.ConsumeIntInRange(0, 4)):
            what = fdp.ConsumeIntInRange(0, 2)
            if what == 0 and args:
                i = fdp.ConsumeIntInRange(0, len(args) - 1)
                args[i] = _array(fdp, args[i]) if isinstance(args[i], np.ndarray) else _value(fdp)
            elif what == 1:  # mostly the op's own keywords, sometimes any
                pool = OWN[name] if fdp.ConsumeIntInRange(0, 7) else KWARGS
                kwargs[fdp.PickValueInList(pool)] = _value(fdp)
            elif kwargs:
                kwargs[fdp.PickValueInList(sorted(kwargs))] = _value(fdp)
    except (ValueError, TypeError):
        return  # NumPy refused to build this rewrite: not a call worth making
    try:
        fn(*args, **kwargs)
        OUTCOMES["returned"] += 1
    except ALLOWED as exc:
        msg = str(exc)
        OUTCOMES["refused by the op" if msg.startswith(_base(name) + ":") else "refused by Python"] += 1
        # Python's own message for a wrong keyword or argument count is fine too.
        if not (msg.startswith(_base(name)) or "argument" in msg):
            raise AssertionError(f"{name}: a {type(exc).__name__} that does not name the op: {msg!r}")
    finally:
        if STATS and sum(OUTCOMES.values()) % 1000 == 0:
            with open(STATS, "w") as f:  # (libFuzzer exits without running atexit handlers)
                json.dump(dict(OUTCOMES, calls=sum(OUTCOMES.values())), f)


def main():
    np.seterr(all="ignore")
    warnings.simplefilter("ignore")  # NumPy's cast warnings while the fuzzer retypes arrays
    cnncore.set_memory_limit(64 * 2 ** 20)
    cnncore.set_num_threads(1)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
