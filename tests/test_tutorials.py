"""The tutorials in docs/tutorials run, start to finish, and print real results.

Each jupytext script runs as a user would run it (``python NN_name.py``) in a fresh temporary
working directory, with the repository's examples/ and ../shared/data passed by environment
variable. Beyond exiting 0, each must print the numbers the page promises: seven rows for
the seven example films, a model card's labels, parity with TorchXRayVision, a Grad-CAM
map in the film's geometry, a fitted Cox model, and the API agreeing with ``cxr predict``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED = Path(os.environ.get("CXRKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
TUTORIALS = REPO / "docs" / "tutorials"
TIMEOUT_S = 240  # each takes < 60 s on two idle cores; the margin is for a loaded CI machine

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def run_tutorial(name: str, tmp_path: Path) -> str:
    env = {**os.environ, "CXRKIT_EXAMPLES": str(EXAMPLES), "CXRKIT_DATA": str(SHARED), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(TUTORIALS / name)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    print(f"{name}: {time.perf_counter() - start:.1f} s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_every_tutorial_is_tested_and_has_a_page():
    scripts = sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))
    tested = sorted(n.removeprefix("test_") for n in globals() if n.startswith("test_0"))
    assert [s[:2] for s in scripts] == [t[:2] for t in tested] == ["01", "02", "03", "04", "05", "06"]
    for script in scripts:
        page = TUTORIALS / script.replace(".py", ".md")
        assert page.read_text().strip() == f"<!-- tutorial: {script} -->"


def test_01_predict_and_model_card(tmp_path):
    out = run_tutorial("01_predict_and_model_card.py", tmp_path)
    assert "7 rows; 7 ok" in out
    assert "trained labels 14 ['Atelectasis'" in out and "calibrated by youden" in out
    assert re.search(r"^siim_chest_pa\.dcm\s+ok\s+0\.\d{3}", out, re.M)
    assert "not predicted: ['Lung Lesion', 'Fracture', 'Lung Opacity', 'Enlarged Cardiomediastinum']" in out
    assert (tmp_path / "predictions.csv").read_text().count("\n") == 8  # header + 7 films


def test_02_torchxrayvision_models(tmp_path):
    pytest.importorskip("torchxrayvision", reason="the tutorial compares against the torchxrayvision package")
    out = run_tutorial("02_torchxrayvision_models.py", tmp_path)
    assert "densenet121, 18 labels" in out
    low, high, diff = map(float, re.search(r"probabilities ([\d.]+) to ([\d.]+), largest \|difference\| (\S+)",
                                           out).groups())
    assert 0.05 < low < high < 0.95  # not saturated, so the parity below means something
    assert diff < 1e-4
    assert "14 labels in common" in out


@pytest.mark.real_data
def test_03_train_and_evaluate_honestly(tmp_path):
    pytest.importorskip("lightning", reason="needs the train extra")
    if not (SHARED / "nih" / "Data_Entry_2017_v2020.csv").is_file():
        pytest.skip(f"the NIH sample is not in {SHARED / 'nih'}")
    out = run_tutorial("03_train_and_evaluate_honestly.py", tmp_path)
    assert re.search(r"^\d+ films to train and validate on, \d+ held out", out, re.M)
    assert (tmp_path / "my-study.safetensors").is_file() and (tmp_path / "my-study.json").is_file()
    mean = re.search(r"^\s+mean (0\.\d+)\s+(0\.\d+)\s+(0\.\d+)", out, re.M)
    assert mean and float(mean[2]) <= float(mean[1]) <= float(mean[3])  # the AUC lies inside its CI
    assert re.search(r"^source\s+reproduce-chexnet-starter\s+\d+", out, re.M)
    assert re.search(r"probe AUC for 'source' 0\.\d+ \(95 % CI", out)


def test_04_explain(tmp_path):
    pytest.importorskip("pytorch_grad_cam", reason="needs the explain extra")
    out = run_tutorial("04_explain.py", tmp_path)
    assert "map (512, 512) float32" in out and "evidence present: True" in out  # the film's own geometry
    assert "wrote gradcam_overlay.png (512, 5" in out and (tmp_path / "gradcam_overlay.png").stat().st_size > 10_000
    corr = float(re.search(r"rank correlation trained vs randomised (-?[\d.]+)", out)[1])
    assert -1 <= corr <= 1


def test_05_age_and_survival(tmp_path):
    pytest.importorskip("lifelines", reason="needs the survival extra")
    out = run_tutorial("05_age_and_survival.py", tmp_path)
    ages = re.findall(r"^\d{8}_000\.png\s+(\d+)\s+([\d.]+)", out, re.M)
    assert len(ages) == 6 and all(10 < float(cxr_age) < 100 for _, cxr_age in ages)
    assert re.search(r"^400 people, \d+ deaths", out, re.M)
    # the simulation builds in HR 1.5 per 5 years of age gap: the adjusted model must find more than 1
    hr = re.search(r"^cxr_age_adjusted cxr_age\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.M)
    assert hr and 1.0 < float(hr[2]) < float(hr[1]) < float(hr[3])


def test_06_serve_api(tmp_path):
    pytest.importorskip("fastapi", reason="needs the serve extra")
    pytest.importorskip("httpx")
    out = run_tutorial("06_serve_api.py", tmp_path)
    assert re.search(r"^serving at http://127\.0\.0\.1:\d+/", out, re.M)
    assert "densenet121.nih-demo multilabel 14 labels" in out
    assert len(re.findall(r"^\S+\.(png|dcm)\s+ok\s+Cardiomegaly 0\.\d{3}", out, re.M)) == 7
    diff = float(re.search(r"7 films, largest difference between API and CLI: (\S+)", out)[1])
    assert diff < 1e-4
    assert re.search(r"^200 image/png \d+ bytes", out, re.M)
    assert "server exited with 0" in out
