# %% [markdown]
# # Tutorial 2: TorchXRayVision models in cxrkit
#
# cxrkit keeps TorchXRayVision's layer layout, so its published weights load unchanged.
# `cxr models fetch densenet121-res224-all` downloads, verifies and converts one; `cxr models
# import FILE.pt` converts a file you already have. Conversion never unpickles code: a
# restricted reader rebuilds only tensors.
#
# **This tutorial runs without internet.** If a TorchXRayVision weight file exists locally
# (set `CXRKIT_XRV_FILE` to its path) it imports that file. Otherwise it says so and builds a
# TorchXRayVision DenseNet **with random weights** from the pip-installed `torchxrayvision`
# package, saved the way its releases are, and imports that. Random weights make the scores
# meaningless; what the tutorial shows is the path and that cxrkit gives the same
# probabilities as TorchXRayVision itself on the same films.

# %%
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torchxrayvision as xrv

from cxrkit.io import read_image
from cxrkit.models import create
from cxrkit.predict import Predictor, predict_files
from cxrkit.preprocess import model_input

EXAMPLES = Path(os.environ.get("CXRKIT_EXAMPLES", "examples"))
films = sorted(EXAMPLES.glob("*.png"))

# %% [markdown]
# ## A TorchXRayVision weight file

# %%
local = os.environ.get("CXRKIT_XRV_FILE")
if local and Path(local).is_file():
    source = Path(local)
    xrv_model = torch.load(source, weights_only=False).eval()  # your own file, trusted by you
    print("importing the local file", source.name)
else:
    print("no TorchXRayVision weight file here (and no internet to fetch one):")
    print(f"using torchxrayvision {xrv.__version__}'s DenseNet-121 with RANDOM weights")
    torch.manual_seed(0)
    xrv_model = xrv.models.DenseNet(num_classes=18).eval()
    with torch.no_grad():  # shrink the random head so the probabilities are not all 0 or 1
        xrv_model.classifier.weight.mul_(1e-3)
    source = Path("xrv-densenet121-random.pt")
    torch.save(xrv_model, source)  # a whole pickled module, as TorchXRayVision's releases are
print("file", source.name, f"{source.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# ## Import it: `cxr models import`

# %%
done = subprocess.run([sys.executable, "-m", "cxrkit.cli.main", "models", "import", str(source),
                       "--format", "torchxrayvision", "-o", "xrv-densenet121.safetensors"],
                      capture_output=True, text=True)
print(" ".join(done.stderr.split()))
assert done.returncode == 0

# %% [markdown]
# The output is a safetensors file and its model card, loadable like any other model:

# %%
imported = create("densenet121", weights="xrv-densenet121.safetensors")
print(imported.card.architecture, imported.card.input_size, "px,", len(imported.card.trained_labels), "labels")
print("labels:", imported.card.trained_labels[:6], "...")

# %% [markdown]
# ## Same probabilities as TorchXRayVision
# TorchXRayVision's own forward pass on cxrkit's input tensors, against cxrkit's predictor
# with calibration off (raw sigmoid), in fp32.

# %%
images = [read_image(f) for f in films]
inputs = torch.from_numpy(np.stack([model_input(im.pixels, im.maxval, 224) for im in images]))
with torch.inference_mode():
    theirs = xrv_model(inputs)
if not getattr(xrv_model, "apply_sigmoid", False):  # built without published weights: it returns logits
    theirs = torch.sigmoid(theirs)
theirs = theirs.numpy()
rows = list(predict_files(films, Predictor(imported, precision="fp32", calibrate=False)))
labels = imported.card.trained_labels
ours = np.array([[row[label] for label in labels] for row in rows])
head = getattr(xrv_model, "pathologies", None) or xrv.datasets.default_pathologies  # its 18-wide head order
index = [list(head).index(label) for label in labels]
print(f"{len(films)} films x {len(labels)} labels, probabilities {ours.min():.3f} to {ours.max():.3f}, "
      f"largest |difference| {np.abs(ours - theirs[:, index]).max():.1e}")

# %% [markdown]
# ## Compared with the bundled model
# The bundled default was trained by cxrkit on 954 NIH films: same architecture, a
# 14-label head, and operating thresholds chosen on validation films. Its card says what
# it is; a published TorchXRayVision model's card carries the thresholds of its release.

# %%
bundled = create("densenet121.nih-demo")
for model in (bundled, imported):
    card = model.card
    print(f"{card.name:28s} {card.architecture}  labels {len(card.trained_labels):2d}  "
          f"thresholds {len(card.thresholds):2d}  parameters {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M")
shared = [label for label in bundled.card.trained_labels if label in labels]
print(len(shared), "labels in common:", shared[:5], "...")
