"""DDP by configuration: two CPU processes (gloo) train the tiny model and rank 0 writes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from .conftest import tiny_config

SCRIPT = """
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
import train.conftest  # registers the tiny architecture in every process
from cxrkit.train import fit, load_config
print("WROTE", fit(load_config({config!r})))
"""


def test_ddp_two_cpu_processes(tiny_csv, tmp_path):
    raw = tiny_config(tiny_csv, tmp_path, trainer={"max_epochs": 1, "accelerator": "cpu", "devices": 2,
                                                   "strategy": "ddp", "precision": "32-true"})
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(raw))
    script = tmp_path / "run_ddp.py"
    tests = str(Path(__file__).resolve().parents[1])
    script.write_text(textwrap.dedent(SCRIPT.format(tests=tests, config=str(config))))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29517"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MEMBER: 2/2" in done.stderr + done.stdout  # Lightning started a second (gloo) process
    card = json.loads((tmp_path / "run" / "test.tiny.json").read_text())
    split = card["training"]["split"]
    assert card["training"]["epochs_run"] == 1 and split["train"]["images"] > 0
