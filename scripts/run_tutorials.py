#!/usr/bin/env python3
"""Run docs/tutorials/*.md by hand: python3 scripts/run_tutorials.py OUT_DIR [PAGE...]
(the pictures stay in OUT_DIR)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from test_tutorials import PAGES, run_page  # noqa: E402

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial-output")
out.mkdir(parents=True, exist_ok=True)
for page in PAGES:
    if len(sys.argv) > 2 and page.stem not in sys.argv[2:]:
        continue
    print(f"== {page.name}")
    run_page(page, out)
print(f"pictures in {out}")
