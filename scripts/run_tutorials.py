"""Run the tutorials in docs/tutorials cell by cell and store each cell's printed output.

    python scripts/run_tutorials.py                  # all of them
    python scripts/run_tutorials.py 01 04            # those whose name starts so

Each tutorial runs in a fresh temporary working directory, with ``CXRKIT_EXAMPLES`` and
``CXRKIT_DATA`` pointing at the repository's ``examples/`` and ``../shared/data``. The
outputs go to ``docs/tutorials/output/NAME.json`` (one string per code cell, plus the run
time), which the documentation site shows under each cell, so what a reader sees is what
the code printed on its last run, never text pasted by hand. A tutorial that stops with
an error or ``sys.exit(message)`` is not written, and the script exits non-zero.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
OUTPUT = TUTORIALS / "output"


def run(script: Path) -> dict:
    """Execute the code cells of ``script`` in one namespace; return their outputs and the run time."""
    notebook = jupytext.read(script)
    namespace: dict = {"__name__": "__main__", "__file__": str(script)}
    outputs: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            for cell in notebook.cells:
                if cell.cell_type != "code":
                    continue
                buffer = io.StringIO()
                with contextlib.redirect_stdout(buffer):
                    exec(compile(cell.source, str(script), "exec"), namespace)  # the tutorial's own cells
                outputs.append(buffer.getvalue())
        finally:
            os.chdir(cwd)
    return {"script": script.name, "seconds": round(time.perf_counter() - start, 1),
            "python": platform.python_version(), "outputs": outputs}


def main(prefixes: list[str]) -> int:
    os.environ.setdefault("CXRKIT_EXAMPLES", str(ROOT / "examples"))
    os.environ.setdefault("CXRKIT_DATA", str(ROOT.parent / "shared" / "data"))
    OUTPUT.mkdir(exist_ok=True)
    failed = 0
    for script in sorted(TUTORIALS.glob("[0-9][0-9]_*.py")):
        if prefixes and not any(script.name.startswith(p) for p in prefixes):
            continue
        try:
            result = run(script)
        except SystemExit as exc:
            print(f"{script.name}: stopped: {exc}", file=sys.stderr)
            failed += 1
            continue
        (OUTPUT / f"{script.stem}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(f"{script.name}: {len(result['outputs'])} cells, {result['seconds']} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
