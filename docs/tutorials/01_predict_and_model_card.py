# %% [markdown]
# # Tutorial 1: predict on a folder of films and read the model card
#
# Runs on the seven films committed in `examples/` (six NIH PNGs and one SIIM DICOM) with
# the bundled default model, on a CPU, in a few seconds. Every output below comes from
# running this file (the test suite runs it); nothing is pasted.
#
# Run it from the repository root, or point `CXRKIT_EXAMPLES` at the `examples/` folder.

# %%
import os
from pathlib import Path

import pandas as pd

from cxrkit.io import read_image
from cxrkit.models import create
from cxrkit.predict import OutputSpec, Predictor, run_files

EXAMPLES = Path(os.environ.get("CXRKIT_EXAMPLES", "examples"))

# %% [markdown]
# ## Read one film
# `read_image` gives the pixels (bright = dense), the file's true white level and a few
# metadata fields, whatever the format. A DICOM's window and photometric rules are applied.

# %%
image = read_image(EXAMPLES / "siim_chest_pa.dcm")
print("shape", image.pixels.shape, "maxval", image.maxval)
print("view", image.meta["view_position"], "modality", image.meta["modality"])

# %% [markdown]
# ## The model card
# A model is a safetensors file plus a JSON card. Read it before trusting a number: which
# labels the head has, where the operating thresholds come from, and how well it did on
# validation films it never saw.

# %%
model = create("densenet121.nih-demo")
card = model.card
print("architecture", card.architecture, "input", card.input_size, "px")
print("trained labels", len(card.trained_labels), card.trained_labels)
print("calibrated by", card.threshold_method, "- uncalibrated labels:", card.uncalibrated_labels)
print("intended use:", card.intended_use)

# %% [markdown]
# ## Predict on the folder
# `run_files` is what `cxr predict` runs: one row per file, calibrated scores (0.5 = the
# label's validated operating point), an empty cell for a label the model has no output for.

# %%
summary = run_files([EXAMPLES], Predictor(model, precision="fp32"), OutputSpec("predictions.csv", overwrite=True))
print(summary)
rows = pd.read_csv("predictions.csv")
print(len(rows), "rows;", (rows["status"] == "ok").sum(), "ok")
shown = rows.assign(file=rows["file"].map(lambda f: Path(f).name))
print(shown[["file", "status", "Cardiomegaly", "Effusion", "Pneumonia"]].round(3).to_string(index=False))

# %% [markdown]
# Labels the model was not trained on stay empty rather than a made-up 0.5:

# %%
untrained = [c for c in rows.columns[3:] if rows[c].isna().all()]
print("not predicted:", untrained)

# %% [markdown]
# The card says this model's validation AUC is near chance: it demonstrates the pipeline and
# does not read films. Tutorial 2 loads TorchXRayVision's published models the same way.
