"""The test helpers can fail: a batch of bad calls in a subprocess rejects a call raising
the wrong type, a message that does not name the op or lacks the stated reason, a call
that does not raise, and an entry that states no reason; expect_error likewise."""
import pytest

from helpers import bad_calls_in_subprocess, expect_error

SETUP = """
def fail(exc, msg):
    def call():
        raise exc(msg)
    return call
alive = lambda: 1
bad = [{entry}]
"""


def run(entry):
    return bad_calls_in_subprocess(SETUP.format(entry=entry), timeout=60)


def test_a_clean_rejection_passes():
    assert run('(ValueError, fail(ValueError, "op: x must be 4-D, got 3"), r"4-D, got 3")') == \
        (1, 1)
    assert run('((ValueError, TypeError), fail(TypeError, "op: bad dtype"), "dtype")') == (1, 1)


@pytest.mark.parametrize("entry", [
    '(ValueError, fail(ValueError, "op: padding must be non-negative"), "stride")',   # reason
    '(ValueError, fail(ValueError, "x must be 4-D"), "4-D")',                    # no op name
    '(ValueError, fail(TypeError, "op: x must be 4-D"), "4-D")',                 # wrong type
    '(ValueError, fail(KeyError, "op: x"), "x")',                                # other error
    '(ValueError, lambda: None, "x")',                                           # no raise
    'fail(ValueError, "op: x must be 4-D")',                                     # no reason
    '(ValueError, fail(ValueError, "op: x must be 4-D"))',                       # no reason
])
def test_every_kind_of_wrong_rejection_is_reported(entry):
    with pytest.raises(AssertionError):
        run(entry)


def test_expect_error_reads_the_message():
    def call():
        raise ValueError("conv2d: stride must be positive")

    expect_error(ValueError, call, "conv2d:", "stride", alive=lambda: None)
    for prefix, pattern in (("pool2d:", "stride"), ("conv2d:", "padding")):
        with pytest.raises(AssertionError):
            expect_error(ValueError, call, prefix, pattern, alive=lambda: None)
