"""How cnncore's OpenMP threads wait between parallel regions (see docs/threads.md).

OpenMP keeps its worker threads spinning for a while after each parallel region, so that
the next region starts without a wake-up. On an idle machine that is free; on a shared one
(more runnable threads than cores) a spinning worker burns the time slice that the thread
it waits for, or another program, needed: the README's training loop ran 5-50x slower
with two other CPU-bound processes on two cores. cnncore therefore bounds the spin before
its OpenMP runtime starts, unless the user chose a policy. This module must be imported
before ``cnncore._core`` (which loads the OpenMP runtime, and the runtime reads these
variables once, when it loads).
"""
import os

# libgomp's spin iterations before a waiting thread sleeps (its default is 300,000, about
# a millisecond): 300 is a few microseconds, enough to bridge back-to-back parallel regions
# of one op, short enough that a descheduled peer costs little. Measured with
# benchmarks/contention.py (docs/threads.md has the table): 0 (passive) is the best loaded
# and the worst idle; 300-1000 keep most of the idle speed.
SPIN_COUNT = 300
# The same bound for LLVM's OpenMP runtime (milliseconds; its default is 200).
BLOCK_TIME_MS = 1

# any of these set by the user: their choice stands
USER_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def bound_openmp_spinning(environ=os.environ):
    """Sets GOMP_SPINCOUNT and KMP_BLOCKTIME in `environ` unless the user set a wait policy;
    returns True when it set them."""
    if any(environ.get(name) for name in USER_POLICY_VARIABLES):
        return False
    environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    environ["KMP_BLOCKTIME"] = str(BLOCK_TIME_MS)
    return True


bound_openmp_spinning()
