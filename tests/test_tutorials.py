"""Every code block of docs/tutorials/*.md runs, in order, in one namespace per page (with
OUT, a folder for the pictures); a failing assertion or error fails the page."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs" / "tutorials").glob("[0-9]*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def run_page(page, out):
    namespace = {"OUT": out, "__name__": f"tutorial_{page.stem}"}
    for i, code in enumerate(BLOCK.findall(page.read_text())):
        exec(compile(code, f"{page.name} block {i + 1}", "exec"), namespace)


def test_there_are_tutorials():
    assert len(PAGES) >= 6


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_tutorial_runs(page, tmp_path, capsys):
    run_page(page, tmp_path)
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
