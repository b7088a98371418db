"""The fuzz harness (fuzz/fuzz_ops.py) runs a short, seeded session without a finding.
The long run and how to replay a finding are in the harness's docstring."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("atheris")

from helpers import child_env  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_fuzz_smoke_run(tmp_path):
    env = child_env()
    runs = 5000
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "fuzz", "fuzz_ops.py"), f"-runs={runs}", "-seed=1",
         "-max_len=128", "-len_control=0", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert f"Done {runs} runs" in out
    assert not list(tmp_path.glob("crash-*"))
