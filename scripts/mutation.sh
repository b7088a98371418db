#!/usr/bin/env bash
# Mutation testing (mutmut 3.x) of the pure-Python layer that issue 7 reshapes:
# cnncore/optim/, cnncore/data/, cnncore/summary.py, cnncore/io.py and the losses of
# cnncore/functional.py, against the fast test subset named in pyproject.toml
# ([tool.mutmut] pytest_add_cli_args_test_selection).
#
#   scripts/mutation.sh [STAGE] [WORK] [TREE]
#
# STAGE: a staged package (a folder holding cnncore/ with its compiled _core*.so, as
# scripts/dev-build.sh makes; default build/dev-me/stage). WORK: a scratch folder
# (default /tmp/cnncore-mutation), emptied first. TREE: where tests/ and pyproject.toml
# come from (default this checkout; e.g. an exported older commit to measure its tests).
# Package, tests and pyproject.toml are copied to WORK and mutmut runs there, so nothing
# is written into this tree.
# One worker, niced, one OpenMP thread (the workers are forked). Prints the counts per
# module and overall and the survivors; `cd WORK && python3 -m mutmut show NAME` shows one.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
stage=$(cd "${1:-$repo/build/dev-me/stage}" && pwd)
work=${2:-/tmp/cnncore-mutation}
tree=$(cd "${3:-$repo}" && pwd)
[[ -f $stage/cnncore/__init__.py ]] || { echo "no staged package in $stage" >&2; exit 1; }
ls "$stage"/cnncore/_core*.so >/dev/null

rm -rf "$work" && mkdir -p "$work"
cp -r "$stage/cnncore" "$work/"
find "$work/cnncore" -name __pycache__ -prune -exec rm -rf {} +
cp -r "$tree/tests" "$work/"
find "$work/tests" -name __pycache__ -prune -exec rm -rf {} +
# pyproject.toml without the entries of the test selection this checkout lacks (so the
# same script measures older test suites too)
python3 - "$tree/pyproject.toml" "$work" > "$work/pyproject.toml" <<'EOF'
import os, re, sys, tomllib
text = open(sys.argv[1]).read()
sel = tomllib.loads(text)["tool"]["mutmut"]["pytest_add_cli_args_test_selection"]
keep = [s for s in sel if os.path.exists(os.path.join(sys.argv[2], s.split("::")[0]))]
new = "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{s}"' for s in keep) + "]\n"
text = re.sub(r"pytest_add_cli_args_test_selection = \[.*?\]\n", lambda m: new, text,
              flags=re.S)
sys.stdout.write(text)
EOF

# Mutants to run: every function of these modules, and in functional.py the losses only
# (the rest of it forwards to the C++ kernels, whose own tests are the C++ and op suites).
names=("cnncore.optim.*" "cnncore.data.*" "cnncore.summary.*" "cnncore.io.*"
       "cnncore.functional.x_cross_entropy*" "cnncore.functional.x_nll_loss*"
       "cnncore.functional.x_mse_loss*" "cnncore.functional.x_l1_loss*"
       "cnncore.functional.x__reduce*"
       "cnncore.functional.xǁCrossEntropyǁ*" "cnncore.functional.xǁNLLLossǁ*")

cd "$work"
export OMP_NUM_THREADS=1 PYTHONPATH= PYTHONHASHSEED=0
start=$(date +%s)
# mutmut prints a progress line per mutant; keep the log, show its tail
nice -n 19 python3 -m mutmut run --max-children 1 "${names[@]}" > run.log 2>&1 || {
  tail -40 run.log; echo "mutmut run failed (log: $work/run.log)" >&2; exit 1; }
echo "mutmut run: $(( $(date +%s) - start )) s (log: $work/run.log)"

python3 -m mutmut results --all true > results.txt
python3 - "${names[@]}" <<'EOF'
import collections, fnmatch, sys
pats = sys.argv[1:]
by_mod = collections.defaultdict(collections.Counter)
survivors = []
for line in open("results.txt"):
    name, _, status = line.strip().rpartition(": ")
    if not name or not any(fnmatch.fnmatchcase(name, p) for p in pats):
        continue
    mod = name.split(".x")[0]
    by_mod[mod][status] += 1
    if status != "killed":
        survivors.append(f"{status:>10}  {name}")
total = collections.Counter()
print(f"{'module':<28}{'killed':>8}{'survived':>10}{'other':>7}{'score':>8}")
for mod in sorted(by_mod):
    c = by_mod[mod]
    total.update(c)
    n = sum(c.values())
    print(f"{mod:<28}{c['killed']:>8}{c['survived']:>10}{n - c['killed'] - c['survived']:>7}"
          f"{100 * c['killed'] / n:>7.1f}%")
n = sum(total.values())
print(f"{'all':<28}{total['killed']:>8}{total['survived']:>10}"
      f"{n - total['killed'] - total['survived']:>7}{100 * total['killed'] / max(n, 1):>7.1f}%")
print(dict(total))
print("\nnot killed:")
print("\n".join(sorted(survivors)))
EOF
