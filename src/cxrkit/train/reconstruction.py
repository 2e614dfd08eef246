"""The reconstruction task (autoencoders): per-image error measures, the start of training, and a card's
validation numbers, always beside two trivial baselines.

A reconstruction error means little on its own: any film is reconstructed fairly well by
the average film, and very well by a blurred copy of itself. The card therefore reports
MSE and SSIM of the model next to those of the training-set mean image and of the input
under a Gaussian blur, all on the same held-out validation films, with patient-level
bootstrap intervals for the model's lead (or lag) over each. ``beats_baselines`` is true
only when the model has the lower MSE *and* the higher SSIM than both.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["SSIM_DATA_RANGE", "image_errors", "blurred", "mean_image", "reconstruct", "set_output_scale",
           "reconstruction_validation"]

#: Width of the [-1024, 1024] pixel scale every cxrkit model reads: SSIM's ``data_range``.
SSIM_DATA_RANGE = 2048.0


def image_errors(recon: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image MSE (per pixel, on the [-1024, 1024] scale) and SSIM (Gaussian window 11, sigma 1.5)
    of reconstructions ``(N, 1, H, W)`` against their films, computed in float32."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    with torch.autocast(images.device.type, enabled=False):
        recon, images = recon.float(), images.float()
        mse = ((recon - images) ** 2).mean(dim=(1, 2, 3))
        ssim = structural_similarity_index_measure(recon, images, data_range=SSIM_DATA_RANGE, reduction="none")
    assert isinstance(ssim, torch.Tensor)  # the full SSIM image comes back only when asked for
    return mse, ssim.reshape(-1)


def blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """The films under a Gaussian blur of ``sigma`` pixels (edges reflected): the blurred-input baseline."""
    from scipy.ndimage import gaussian_filter

    array = images.detach().cpu().float().numpy()
    return torch.from_numpy(gaussian_filter(array, sigma=(0, 0, sigma, sigma), mode="reflect"))


def _stack(images: Any, rows: range) -> torch.Tensor:
    return torch.stack([images.image(i) for i in rows])


def mean_image(images: Any, batch: int = 64) -> torch.Tensor:
    """Pixel-wise mean ``(1, H, W)`` of a split's films (no augmentation): the mean-image baseline."""
    total: torch.Tensor | None = None
    for start in range(0, len(images), batch):
        part = _stack(images, range(start, min(start + batch, len(images)))).double().sum(0)
        total = part if total is None else total + part
    assert total is not None, "a split to average holds films"
    return (total / len(images)).float()


@torch.no_grad()
def reconstruct(model: nn.Module, images: Any, device: str = "cpu", batch: int = 32) -> torch.Tensor:
    """fp32 reconstructions of every film of a split, in order (eval mode, as users run the model)."""
    model = model.to(device).eval()
    out = [model(_stack(images, range(s, min(s + batch, len(images)))).to(device)).float().cpu()
           for s in range(0, len(images), batch)]
    return torch.cat(out)


@torch.no_grad()
def set_output_scale(model: nn.Module, images: Any, n: int = 16) -> float:
    """Scale the last convolution of a freshly initialised autoencoder so its output spread matches the films'.

    The decoder ends in a bias-free convolution whose default initialisation gives outputs near
    +-1; the films span +-1024. With Adam's per-step updates of about the learning rate,
    growing those weights a thousandfold would take most of a short run, during which the
    model reconstructs nothing. Matching the spread at the start (as the regression head's
    bias starts at the mean target) lets training spend its steps on the features. BatchNorm
    running statistics touched by the measuring pass are reset. Returns the factor applied.
    """
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    batch = _stack(images, range(min(n, len(images))))
    was_training = model.training
    model.train()
    output = model(batch).float()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
    model.train(was_training)
    factor = float(batch.float().std() / output.std().clamp(min=1e-6))
    convs[-1].weight.mul_(factor)
    return factor


def _ci(values: np.ndarray, resamples: list[np.ndarray]) -> list[float | None]:
    from ..evaluate import bootstrap_mean_ci

    low, high = bootstrap_mean_ci(values, resamples)
    return [None, None] if math.isnan(low) else [low, high]


def reconstruction_validation(model: nn.Module, dm: Any, cfg: Any, device: str = "cpu") -> dict[str, Any]:
    """The card's validation numbers of an autoencoder and of the two baselines on the same films.

    ``dm`` is the :class:`~cxrkit.train.data.XrayDataModule` (training films give the mean image,
    validation films are scored); ``cfg`` the :class:`~cxrkit.train.config.TrainConfig`.
    """
    from ..evaluate import bootstrap_indices

    valid = dm.valid_set
    images = _stack(valid, range(len(valid)))
    candidates = {
        "model": reconstruct(model, valid, device),
        "training_mean_image": mean_image(dm.train_set).expand_as(images),
        "blurred_input": blurred(images, cfg.select.blur_sigma),
    }
    model.cpu()
    errors = {name: [e.double().numpy() for e in image_errors(recon, images)] for name, recon in candidates.items()}
    patients = [str(p) for p in valid.patients]
    resamples = list(bootstrap_indices(len(images), patients, n_boot=cfg.select.bootstrap, seed=cfg.seed))
    mse, ssim = errors.pop("model")
    out: dict[str, Any] = {
        "mse": float(mse.mean()), "mse_ci": _ci(mse, resamples),
        "ssim": float(ssim.mean()), "ssim_ci": _ci(ssim, resamples),
        "n": int(len(images)), "patients": int(len(set(patients))),
        "definitions": (f"MSE per pixel on the [-1024, 1024] input scale; SSIM with data range {SSIM_DATA_RANGE:g} "
                        "(Gaussian window 11, sigma 1.5); the model's output is not clipped"),
        "baselines": {},
    }
    beats = True
    for name, (b_mse, b_ssim) in errors.items():
        entry: dict[str, Any] = {"mse": float(b_mse.mean()), "ssim": float(b_ssim.mean()),
                 "model_minus_baseline_mse": float((mse - b_mse).mean()),
                 "model_minus_baseline_mse_ci": _ci(mse - b_mse, resamples),
                 "model_minus_baseline_ssim": float((ssim - b_ssim).mean()),
                 "model_minus_baseline_ssim_ci": _ci(ssim - b_ssim, resamples)}
        if name == "blurred_input":
            entry["sigma_px"] = float(cfg.select.blur_sigma)
        else:
            entry["images"] = len(dm.train_set)
        out["baselines"][name] = entry
        beats = beats and entry["model_minus_baseline_mse"] < 0 and entry["model_minus_baseline_ssim"] > 0
    out["beats_baselines"] = bool(beats)
    return out
