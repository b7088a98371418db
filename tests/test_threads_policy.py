"""import cnncore makes OpenMP's workers wait passively unless the user chose a policy
(python/cnncore/_threads.py, docs/threads.md). Each case runs in a fresh interpreter:
the OpenMP runtime reads the variables once, when it loads."""
import json
import os
import subprocess
import sys

import pytest

from helpers import child_env

POLICY = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
PROBE = ("import json, os, cnncore; "
         "print(json.dumps({k: os.environ.get(k) for k in %r}))" % (POLICY,))


def run_child(**env_vars):
    env = child_env()
    for k in POLICY:
        env.pop(k, None)
    env.update(env_vars)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_workers_wait_passively_by_default():
    got = run_child()
    assert got == {"OMP_WAIT_POLICY": "passive", "GOMP_SPINCOUNT": None, "KMP_BLOCKTIME": None}


@pytest.mark.parametrize("name,value", [("OMP_WAIT_POLICY", "active"), ("OMP_WAIT_POLICY", "passive"),
                                        ("GOMP_SPINCOUNT", "123456"), ("KMP_BLOCKTIME", "50")])
def test_a_users_policy_stands(name, value):
    got = run_child(**{name: value})
    assert got == {k: (value if k == name else None) for k in POLICY}


def test_bound_runs_before_the_core_loads():
    # the policy module is imported first in the package, before _core (which loads OpenMP)
    import cnncore
    with open(os.path.join(os.path.dirname(cnncore.__file__), "__init__.py")) as f:
        init = f.read()
    assert init.index("from . import _threads") < init.index("from . import _core,")
