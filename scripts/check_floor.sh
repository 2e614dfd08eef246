#!/usr/bin/env bash
# Proves the dependency floors in pyproject.toml: installs the oldest supported releases
# (constraints/floor.txt: torch 2.9.1 + torchvision 0.24.1, typer 0.16, numpy 2.0, ...) into a
# separate venv and runs the smoke subset there: read, predict on examples/, train one step,
# export to ONNX, and the same through the `cxr` command.
#
#   scripts/check_floor.sh [VENV_DIR]        (default: /tmp/cxrkit-floor; reused if present)
#
# The first run downloads torch 2.9.1 (a CUDA build on Linux x86-64: 6.8 GB in the venv) and
# takes about 15 minutes on two busy cores; a rerun reuses the venv and takes about 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
venv=${1:-/tmp/cxrkit-floor}
export PIP_DISABLE_PIP_VERSION_CHECK=1 OMP_NUM_THREADS=1

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
pip install -q -c constraints/floor.txt -e ".[train,onnx]" pytest hypothesis

# every pin of the floor file must be what got installed (pip would not say if a floor was skipped)
python - <<'EOF'
import importlib.metadata as m, pathlib, re
wrong = []
for line in pathlib.Path("constraints/floor.txt").read_text().splitlines():
    line = line.split("#")[0].strip()
    if line:
        name, want = re.split(r"==", line)
        got = m.version(name).split("+")[0]
        if got != want:
            wrong.append(f"{name}: {got} installed, floor {want}")
print("floor versions installed:", "all" if not wrong else wrong)
raise SystemExit(1 if wrong else 0)
EOF

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"  # the CLI runs from elsewhere: examples/ are found by path, not by the cwd
cxr --version
cxr predict "$repo/examples" -o preds.csv
python - <<'EOF'
import pandas as pd
rows = pd.read_csv("preds.csv")
ok = int((rows["status"] == "ok").sum())
print(f"cxr predict examples/: {ok} ok rows of {len(rows)}")
raise SystemExit(0 if ok == 7 else 1)
EOF
cd "$repo"
python -m pytest -q -p no:cacheprovider \
  tests/io/test_io_raster.py \
  tests/predict/test_predictor.py \
  "tests/train/test_cli_train.py::test_cli_train_with_overrides" \
  tests/predict/test_export_onnx.py \
  tests/test_cli_errors.py
python -c "import torch, torchvision, typer; print('floor smoke passed with torch', torch.__version__, 'torchvision', torchvision.__version__, 'typer', typer.__version__)"
