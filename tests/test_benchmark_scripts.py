"""The benchmark scripts run with benchmarks/ first on sys.path (Python puts a script's own
folder there), so none of their module names may shadow a package they or the rival import:
a benchmarks/cuda.py once hid CUDA's Python bindings from ``import torch``, and every
benchmark script failed at its first line."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
# top-level names the benchmarks and torch import (torch imports cuda.bindings when present)
GUARDED = {"cuda", "torch", "numpy", "scipy", "cnncore", "triton", "onnx", "mpi4py", "psutil"}


def test_no_benchmark_module_shadows_an_imported_package():
    names = {os.path.splitext(f)[0] for f in os.listdir(BENCH) if f.endswith(".py")}
    names |= {d for d in os.listdir(BENCH) if os.path.isdir(os.path.join(BENCH, d))}
    assert not names & GUARDED, sorted(names & GUARDED)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_imports_with_benchmarks_first_on_the_path():
    code = f"import sys; sys.path.insert(0, {BENCH!r}); import torch; import torch_models"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "python")})
    assert r.returncode == 0, r.stderr[-2000:]


def _ab(*args):
    return subprocess.run([sys.executable, os.path.join(BENCH, "ab.py"), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "python")})


def test_ab_alternates_builds_and_reports_each():
    # the core this test session imports (installed, or built into python/cnncore)
    from cnncore import _core
    core = [_core.__file__]
    r = _ab("--workload", "conv", "--args", "2", "8", "6", "8", "data", "auto", "1", "--rounds", "3",
            "--", core[0], core[0])
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [line.split() for line in r.stdout.splitlines()[2:]]
    assert len(rows) == 2 and all(len(row) == 4 for row in rows), r.stdout
    assert float(rows[0][3]) == 1.0 and float(rows[1][1]) > 0 and float(rows[1][2]) <= float(rows[1][1])
    bad = _ab("--workload", "conv", "--args", "2", "8", "6", "8", "sideways", "auto", "1", "--", core[0], core[0])
    assert bad.returncode != 0 and "PASS must be fwd, data or weight" in bad.stderr
    one = _ab("--args", "x", "--", core[0])
    assert one.returncode != 0 and "two or more builds" in one.stderr
