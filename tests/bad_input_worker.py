"""Runs bad-input cases (tests/bad_inputs.py), each in a forked child of its own, and
prints one JSON line per case: {"id", "status": "ok" | "fail" | "crash" | "hang", "detail"}.

Usage: python tests/bad_input_worker.py [--timeout S] < ids (one per line)

This process imports cnncore but never runs an op, so no OpenMP thread pool exists when
it forks (forking after one is unsafe with GNU OpenMP). Each child gets an address-space
limit (unless running under ASan, which reserves terabytes up front), so a runaway
allocation is a MemoryError in that case, not the machine's memory."""
import json
import os
import resource
import select
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bad_inputs  # noqa: E402

ADDRESS_SPACE = 16 * 2 ** 30


def run_in_child(case_id, timeout):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(r)
        try:
            if os.environ.get("CNNCORE_SANITIZED") != "1":
                resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
            status, detail = bad_inputs.run_case(case_id)
        except BaseException as exc:  # noqa: BLE001 - a broken case is a failure, reported
            status, detail = "fail", f"the case itself raised {type(exc).__name__}: {exc}"
        os.write(w, json.dumps({"status": status, "detail": detail}).encode())
        os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            return {"status": "hang", "detail": f"no answer within {timeout} s"}
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, code = os.waitpid(pid, 0)
    if os.WIFSIGNALED(code):
        return {"status": "crash", "detail": f"killed by signal {os.WTERMSIG(code)}"}
    if not chunks:
        return {"status": "crash", "detail": f"exited with status {os.WEXITSTATUS(code)} and no answer"}
    return json.loads(b"".join(chunks))


def main():
    timeout = 60.0
    if len(sys.argv) == 3 and sys.argv[1] == "--timeout":
        timeout = float(sys.argv[2])
    for line in sys.stdin:
        case_id = line.strip()
        if case_id:
            print(json.dumps(dict(run_in_child(case_id, timeout), id=case_id)), flush=True)


if __name__ == "__main__":
    main()
