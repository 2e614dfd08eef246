"""Every registered marker marks at least one collected test: the fast loop deselects by
marker (CONTRIBUTING.md), so a marker that no longer matches anything would let slow tests
back into it without anyone noticing."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Collects the whole suite (imports every test module) and prints, per marker, how many
# collected tests carry it; nothing runs.
PROBE = """
import collections, json, sys, pytest

class Count:
    def __init__(self):
        self.counts = collections.Counter()

    def pytest_collection_finish(self, session):
        for item in session.items:
            self.counts.update({mark.name for mark in item.iter_markers()})

count = Count()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"], plugins=[count])
print("COUNTS", json.dumps(count.counts))
sys.exit(code)
"""


def _registered() -> list[str]:
    lines = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    return [line.split(":", 1)[0].strip() for line in lines]


@pytest.mark.subprocess
def test_every_registered_marker_marks_a_collected_test():
    markers = _registered()
    assert {"slow", "real_data", "subprocess", "browser", "pacs", "gpu"} <= set(markers)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    counts = json.loads(done.stdout.rsplit("COUNTS", 1)[1].strip().splitlines()[0])
    unused = [marker for marker in markers if not counts.get(marker)]
    assert not unused, f"registered markers that mark no collected test: {unused} (counts: {counts})"
