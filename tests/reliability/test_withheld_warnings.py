"""``cxrkit.warning_policy.withheld_warnings``: per thread, whatever the other threads do.

Why a deterministic interleaving: the readers run in a thread pool, and the earlier
``warnings.catch_warnings`` blocks let a warning's text out only when one thread left its
block while another was still decoding; a timing-driven test shows that once in many runs.
"""

from __future__ import annotations

import threading
import warnings

from cxrkit.warning_policy import withheld_warnings


def test_a_thread_leaving_its_block_does_not_expose_another():
    entered, leave = threading.Event(), threading.Event()

    def decoding_elsewhere():
        with withheld_warnings():
            entered.set()
            leave.wait(10)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        other = threading.Thread(target=decoding_elsewhere)
        other.start()
        assert entered.wait(10)
        with withheld_warnings():
            leave.set()
            other.join(10)  # the other thread has left its block; this one is still inside
            warnings.warn("Invalid value for VR UI: 'PATIENT^NAME'", UserWarning, stacklevel=1)
        warnings.warn("shown: raised outside any block", UserWarning, stacklevel=1)
    assert [str(w.message) for w in shown] == ["shown: raised outside any block"]


def test_other_threads_warnings_are_not_swallowed():
    """Only the decoding thread is quiet: a warning another thread raises meanwhile is shown."""
    inside, done = threading.Event(), threading.Event()

    def decoding():
        with withheld_warnings():
            inside.set()
            done.wait(10)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        worker = threading.Thread(target=decoding)
        worker.start()
        assert inside.wait(10)
        warnings.warn("from the main thread", UserWarning, stacklevel=1)
        done.set()
        worker.join(10)
    assert [str(w.message) for w in shown] == ["from the main thread"]


def test_the_withheld_warning_is_logged_by_category_only(caplog):
    caplog.set_level("DEBUG", logger="cxrkit.io")
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with withheld_warnings():
            warnings.warn("Invalid value for VR DA: 'PATIENT^NAME'", UserWarning, stacklevel=1)
    assert shown == []
    assert "UserWarning" in caplog.text and "PATIENT" not in caplog.text
