"""On a CUDA device the films get the CPU's scores: the same model, preprocessing and head,
within the kernels' float noise (cuDNN sums in another order, and may use TF32 for
convolutions). Skips without a GPU, so the ``gpu`` marker selects it where one is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrkit.io import read_image
from cxrkit.predict import Predictor

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("precision, tolerance", [("fp32", 0.01), ("bf16", 0.03)])
def test_cuda_scores_equal_the_cpu_ones(example_images, tiny_model_file, precision, tolerance):
    images = [read_image(p) for p in example_images]
    cpu = Predictor(str(tiny_model_file), precision="fp32", calibrate=False)
    gpu = Predictor(str(tiny_model_file), device="cuda", precision=precision, calibrate=False)
    assert gpu.device.type == "cuda" and gpu.precision == precision
    batch = np.stack([cpu.preprocess(i.pixels, i.maxval) for i in images])
    want, got = cpu.predict_batch(batch), gpu.predict_batch(batch)
    assert np.array_equal(np.isnan(want), np.isnan(got))  # the untrained labels stay empty
    assert np.nanmax(np.abs(want - got)) < tolerance, np.nanmax(np.abs(want - got))
