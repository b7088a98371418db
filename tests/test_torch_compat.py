"""docs/torch-compat.md is generated from cnncore/_compat.py and must match the code."""
import pathlib

from cnncore import _compat

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "torch-compat.md"


def test_the_page_is_up_to_date():
    assert DOC.read_text() == _compat.markdown(), (
        "docs/torch-compat.md is stale: regenerate it with "
        "python -m cnncore._compat > docs/torch-compat.md")


def test_every_row_claimed_resolves_and_no_asked_for_idiom_is_missing():
    claimed = [row[1] for row in _compat.ROWS if row[0] != "section" and row[1] is not None]
    missing = [name for name in claimed if not _compat.resolve(name)]
    assert not missing, missing
    assert set(_compat.REQUIRED) <= set(claimed)
    assert "**missing**" not in _compat.markdown()


def test_resolve_tells_present_from_absent():
    assert _compat.resolve("nn.Conv2d(padding_mode)")
    assert not _compat.resolve("nn.Conv2d(no_such_keyword)")
    assert not _compat.resolve("nn.NoSuchLayer")
    assert not _compat.resolve("optim.lr_scheduler.NoSuchSchedule")
