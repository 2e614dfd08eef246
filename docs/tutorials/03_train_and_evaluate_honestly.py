# %% [markdown]
# # Tutorial 3: train on your own folder + CSV, and evaluate honestly
#
# Your data is usually a folder of films and a spreadsheet. This tutorial writes such a CSV
# for 300 films of the NIH ChestX-ray14 sample in `../shared/data/nih` (set `CXRKIT_DATA` to
# move it; without the data the script says so and stops), trains a small ResNet-18 for two
# short epochs on a CPU, and evaluates it on patients it never saw: AUC with patient-level
# confidence intervals, the AUC per subgroup, and a check whether the model's features
# reveal which draw of the sample a film came from (a shortcut).
#
# The model is small and trained for seconds on about 200 films, so read its AUCs with their
# confidence intervals: on under 100 held-out films they are wide, and they say how little
# such a test can tell. The point is the workflow.

# %%
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(os.environ.get("CXRKIT_DATA", "../shared/data")) / "nih"
if not (DATA / "Data_Entry_2017_v2020.csv").is_file() or not (DATA / "images").is_dir():
    sys.exit(f"this tutorial needs the NIH sample in {DATA} (Data_Entry_2017_v2020.csv, images/, sources.csv)")

from cxrkit.evaluate import evaluate_predictions, evaluate_subgroups  # noqa: E402
from cxrkit.evaluate.model_eval import shortcut_check  # noqa: E402
from cxrkit.models import create  # noqa: E402
from cxrkit.predict import Predictor, predict_files  # noqa: E402
from cxrkit.train import config_from_dict, fit  # noqa: E402

# %% [markdown]
# ## Your folder and your CSV
# One row per film: the path (relative to the folder), a patient id (so splits never put one
# patient on both sides), the labels as 1/0 (empty = unknown), and whatever else you know.
# Patients are divided once, here: 70 % to train (and validate), 30 % held out for the end.

# %%
LABELS = ["Effusion", "Infiltration", "Atelectasis"]
entries = pd.read_csv(DATA / "Data_Entry_2017_v2020.csv")
entries = entries[entries["Image Index"].map(lambda name: (DATA / "images" / name).is_file())]
sources = pd.read_csv(DATA / "sources.csv").set_index("Image Index")["source"]
rng = np.random.default_rng(0)
films = entries.sample(n=300, random_state=0)
table = pd.DataFrame({
    "path": films["Image Index"].to_numpy(),
    "patient": films["Patient ID"].to_numpy(),
    "sex": films["Patient Gender"].to_numpy(),
    "source": films["Image Index"].map(sources).to_numpy(),
    **{label: films["Finding Labels"].str.split("|").map(lambda found, lab=label: int(lab in found)).to_numpy()
       for label in LABELS},
})
patients = table["patient"].unique()
held_out = set(rng.choice(patients, size=int(0.3 * len(patients)), replace=False))
test = table[table["patient"].isin(held_out)]
table[~table["patient"].isin(held_out)].to_csv("my_study.csv", index=False)
print(len(table) - len(test), "films to train and validate on,", len(test), "held out;",
      "positives per label:", table[LABELS].sum().to_dict())

# %% [markdown]
# ## Train
# The same settings `cxr train --config my.yaml` reads from a YAML file. `dataset: csv` is
# "my own folder + CSV"; the split inside it is again by patient.

# %%
config = config_from_dict({
    "name": "my-study.resnet18", "task": "multilabel", "seed": 0, "output_dir": "runs/my-study",
    "weights_out": "my-study.safetensors",
    "model": {"architecture": "resnet18", "input_size": 64},
    "data": {"dataset": "csv", "root": str(DATA / "images"), "label_file": "my_study.csv",
             "csv": {"path_column": "path", "patient_column": "patient", "label_columns": LABELS},
             "split": {"train": 0.8, "valid": 0.2}, "batch_size": 32, "cache": True},
    "loss": {"pos_weight": "balanced"},
    "optim": {"name": "adamw", "lr": 0.003},
    "trainer": {"max_epochs": 2, "accelerator": "cpu", "precision": "32", "progress": False, "log_every_n_steps": 1},
    "select": {"bootstrap": 0},
})
weights = fit(config)
model = create("resnet18", weights=weights)
print("wrote", weights.name, "- thresholds chosen on validation:",
      {k: round(v, 3) for k, v in model.card.thresholds.items()})

# %% [markdown]
# ## Evaluate on held-out patients
# Predict the held-out films, then score them. The bootstrap resamples *patients*, not
# films, because films of one patient are not independent.

# %%
rows = list(predict_files([DATA / "images" / p for p in test["path"]], Predictor(model, precision="fp32")))
scores = pd.DataFrame(rows).assign(id=lambda f: f["file"].map(lambda x: Path(x).name)).set_index("id")[LABELS]
truth = test.set_index("path")[LABELS]
truth.index.name = "id"
evaluation = evaluate_predictions(scores, truth, patients=test.set_index("path")["patient"], n_bootstrap=300)
print(evaluation.n_images, "held-out films")
print(evaluation.table[["label", "auc", "auc_ci_low", "auc_ci_high", "n_pos", "n_neg"]].round(3).to_string(index=False))

# %% [markdown]
# ## Subgroups
# The AUC per group of the `source` column (which of the sample's two draws a film came
# from) and per sex, with the gap to the rest of the films.

# %%
groups = test.set_index("path")[["source", "sex"]]
groups.index.name = "id"
subgroups = evaluate_subgroups(evaluation.scores, evaluation.labels, groups,
                               patients=test.set_index("path")["patient"], n_bootstrap=300)
mean_rows = subgroups.table[subgroups.table["label"] == "mean"]
print(mean_rows[["column", "group", "n_images", "auc", "auc_ci_low", "auc_ci_high"]].round(3).to_string(index=False))

# %% [markdown]
# ## Shortcut check
# Can a linear probe on the model's pooled features tell the two draws apart? If it can,
# and the draws' label rates differ, the model may score the draw rather than the disease.

# %%
probe = shortcut_check([DATA / "images" / p for p in test["path"]], groups["source"],
                       test.set_index("path")["patient"], subgroups.rates,
                       predictor=Predictor(model, precision="fp32"), n_bootstrap=300)
print(f"probe AUC for 'source' {probe.auc:.3f} (95 % CI {probe.ci_low:.3f}-{probe.ci_high:.3f}) "
      f"on {probe.n_images} films / {probe.n_patients} patients")
print("labels whose rate differs between the draws:", probe.differing_labels)
print("warning:", probe.warning)
