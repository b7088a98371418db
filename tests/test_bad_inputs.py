"""The bad-input corpus (tests/bad_inputs.py): every case runs in a child process of its
own (tests/bad_input_worker.py forks one per case) and must end as it states, with a
clean exception of the stated type and message or a correct result; a crash, a hang, a
MemoryError from the child's address-space limit or a different exception fails it."""
import json
import os
import subprocess
import sys

import pytest

from bad_inputs import CASES
from op_catalogue import public_ops

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def outcomes():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "2")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "bad_input_worker.py")],
                          input="\n".join(CASES), capture_output=True, text=True, env=env,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = {}
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        got[row["id"]] = row
    return got


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input(case_id, outcomes):
    row = outcomes[case_id]
    assert row["status"] == "ok", f"{case_id}: {row['status']}: {row['detail']}"


def test_the_corpus_covers_every_op_and_is_large_enough():
    assert len(CASES) >= 150
    covered = {cid.split("/")[0] for cid in CASES}
    missing = set(public_ops()) - covered
    assert not missing, f"ops without a bad-input case: {sorted(missing)}"


def test_the_worker_reports_crashes_and_hangs(tmp_path):
    # The harness itself: a case that segfaults and one that sleeps must come back as
    # "crash" and "hang", not pass, and the worker must carry on after them.
    probe = tmp_path / "probe_cases.py"
    probe.write_text(
        "import ctypes, time\n"
        "import bad_inputs\n"
        "bad_inputs.CASES['probe/crash'] = (lambda: (ctypes.string_at, (0,), {}), ('returns', None))\n"
        "bad_inputs.CASES['probe/hang'] = (lambda: (time.sleep, (30,), {}), ('returns', None))\n")
    code = ("import sys, runpy; sys.path[:0] = [%r, %r]; import probe_cases; "
            "sys.argv = ['w', '--timeout', '2']; runpy.run_path(%r, run_name='__main__')"
            % (HERE, str(tmp_path), os.path.join(HERE, "bad_input_worker.py")))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", code], input="probe/crash\nprobe/hang\nrelu/text\n",
                          capture_output=True, text=True, env=env, timeout=120)
    rows = {r["id"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert rows["probe/crash"]["status"] == "crash"
    assert rows["probe/hang"]["status"] == "hang"
    assert rows["relu/text"]["status"] == "ok"
