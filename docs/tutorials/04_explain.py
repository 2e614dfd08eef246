# %% [markdown]
# # Tutorial 4: explain a prediction
#
# Where does the model look? Grad-CAM maps the evidence for one label back onto the film,
# in the film's own pixel grid, and writes an overlay you can open. A map is only worth
# reading if it depends on what the model learned, so the tutorial ends with the
# weight-randomisation sanity check (Adebayo et al., 2018).
#
# Uses the bundled default model and one example film, on a CPU, in seconds.

# %%
import os
from pathlib import Path

import numpy as np
from PIL import Image

from cxrkit import explain
from cxrkit.explain.sanity import randomisation_test
from cxrkit.models import create

EXAMPLES = Path(os.environ.get("CXRKIT_EXAMPLES", "examples"))
film = EXAMPLES / "00001036_000.png"
model = create("densenet121.nih-demo")

# %% [markdown]
# ## Grad-CAM for the top label
# `label="top"` explains the label with the highest calibrated score; the map's shape is
# the film's, not the model's 224 x 224 input.

# %%
heat = explain.explain(model, film, label="top", method="gradcam")
print("label", heat.label, "score", round(heat.score, 3), "map", heat.array.shape, heat.array.dtype)
print("peak (row, col)", heat.peak(), "evidence present:", heat.has_evidence)

# %% [markdown]
# ## Save the overlay
# The overlay is drawn over the film the map lies on (`heat.film`).

# %%
out = explain.save_overlay(heat.film, heat, "gradcam_overlay.png")
with Image.open(out) as png:
    print("wrote", out.name, png.size, png.mode)

# %% [markdown]
# ![Grad-CAM overlay on an NIH film](../images/gradcam-overlay.png)
#
# (The picture above is the same overlay, written by `scripts/docs_screenshots.py` with
# `cxr explain`.) Look at where the warm colours are: the film's corners and edges, not the
# lungs. The bundled demonstration model scores no better than chance on held-out patients
# (its card says so), and its map shows why; a map is a question to ask, not an answer.
#
# ## Another label, another method
# Explain a label by name; plain saliency (input gradients) is the cheapest method.

# %%
for method in ("gradcam", "saliency"):
    h = explain.explain(model, film, label="Effusion", method=method)
    top = np.quantile(h.array, 0.95)
    print(f"{method:9s} Effusion score {h.score:.3f}  5% of pixels above {top:.3f}")

# %% [markdown]
# ## Sanity check: does the map depend on the weights?
# Explain the same output with a copy of the model whose weights are randomised. If the two
# maps are alike (high rank correlation), the map shows the film's edges, not the model's
# reasoning.

# %%
result = randomisation_test(model, film, label="top", method="gradcam")
print(f"rank correlation trained vs randomised {result.correlation:.3f} "
      f"(passes below {result.threshold}): passed={result.passed}")
