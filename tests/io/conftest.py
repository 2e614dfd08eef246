"""Print the fuzz tests' case counts in pytest's summary (issue #12 asks for them in every run)."""

from __future__ import annotations

import sys


def pytest_terminal_summary(terminalreporter) -> None:
    fuzzlib = sys.modules.get("cxrkit_fuzzlib")
    tally = getattr(fuzzlib, "TALLY", None)
    if not tally or not tally["cases"]:
        return
    bad = tally["cases"] - tally["ok"] - tally["error"]
    terminalreporter.write_line(
        f"fuzz: {tally['cases']} mutated files read in a worker process: {tally['ok']} read, "
        f"{tally['error']} refused with a typed error, {bad} contract violations "
        f"(peak worker RSS {tally['peak_rss_mib']} MiB)"
    )
