"""How cnncore's OpenMP threads wait between parallel regions (see docs/threads.md).

OpenMP keeps its worker threads spinning for a while after each parallel region, so that
the next region starts without a wake-up. On an idle machine that saves a few
microseconds a region; on a shared one (more runnable threads than cores) a spinning
worker burns the time slice that the thread it waits for, or another program, needed, and
the scheduler then ranks it behind the other programs when the next region starts: the
README's training loop ran 3-24x slower beside one to four CPU-bound processes on two
cores, even with the spin bounded to a few thousand iterations. Passive waiting (a worker
sleeps at once) kept it within 1.1-1.4x, at a cost of 15-50% on an idle machine for
networks of small ops. cnncore chooses the robust behaviour by default, before its OpenMP
runtime starts, unless the user chose a policy. This module must be imported before
``cnncore._core`` (which loads the OpenMP runtime; the runtime reads these variables once,
when it loads).
"""
import os

# what cnncore sets when the user set none of USER_POLICY_VARIABLES
DEFAULT_POLICY = {"OMP_WAIT_POLICY": "passive"}

# any of these set by the user: their choice stands
USER_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def choose_wait_policy(environ=os.environ):
    """Sets DEFAULT_POLICY in `environ` unless the user set a wait policy; returns True
    when it did."""
    if any(environ.get(name) for name in USER_POLICY_VARIABLES):
        return False
    environ.update(DEFAULT_POLICY)
    return True


choose_wait_policy()
