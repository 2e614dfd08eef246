"""End-to-end prediction speed: cxrkit's `cxr predict` path vs TorchXRayVision's documented path.

Same weights, same real images, one run. TorchXRayVision's path is its README recipe,
one image at a time: ``skimage.io.imread`` -> ``normalize(img, 255)`` ->
``XRayCenterCrop`` -> ``XRayResizer(224)`` -> model, batch 1. cxrkit's path is
``cxrkit.predict.predict_files`` (what ``cxr predict`` runs): cv2/pydicom decoding in a
thread ahead of the model, area resize, batches, channels-last, inference mode, the heap
kept between batches (``keep_heap``, as ``cxr`` does at start), and the runtime the
defaults pick (``--backend auto --precision auto``: PyTorch bf16 where bf16 is native,
ONNX Runtime fp32 elsewhere); the explicit PyTorch fp32 / bf16 and ONNX Runtime rows
show each lever on its own.

Agreement is reported twice: against TorchXRayVision's default skimage resize (the two
resize methods differ by design, so scores differ slightly), and against its
``engine="cv2"`` resize, which computes the same area average as cxrkit — there the
difference isolates cxrkit's own arithmetic.

Usage (needs torchxrayvision and ../shared/data/nih):
    python benchmarks/predict_vs_torchxrayvision.py --images 200 --size 1024
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "nih" / "images"


def prepare_images(source: Path, count: int, size: int, folder: Path) -> list[Path]:
    """Copy ``count`` real radiographs, upscaled to ``size`` px as the original 1024 px files are."""
    files = sorted(source.glob("*.png"))[:count]
    if len(files) < count:
        sys.exit(f"need {count} images in {source}, found {len(files)}")
    out = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if size and img.shape[0] != size:
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
        target = folder / f.name
        cv2.imwrite(str(target), img)
        out.append(target)
    return out


def xrv_model_with_weights(model: torch.nn.Module):
    """A TorchXRayVision DenseNet carrying exactly the weights of cxrkit's ``model``."""
    import torchxrayvision as xrv

    twin = xrv.models.DenseNet(num_classes=len(model.card.labels), apply_sigmoid=True)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def run_xrv(files: list[Path], model, engine: str) -> tuple[np.ndarray, float]:
    import skimage.io
    import torchvision
    import torchxrayvision as xrv

    transform = torchvision.transforms.Compose([xrv.datasets.XRayCenterCrop(), xrv.datasets.XRayResizer(224, engine=engine)])
    outputs = []
    start = time.perf_counter()
    with torch.no_grad():
        for f in files:
            img = xrv.datasets.normalize(skimage.io.imread(str(f)), 255)
            if img.ndim == 3:
                img = img[:, :, 0]
            img = transform(img[None])
            outputs.append(model(torch.from_numpy(img)[None]).numpy()[0])
    return np.stack(outputs), time.perf_counter() - start


#: label -> (backend, precision) of each cxrkit row; "defaults" is what `cxr predict` runs with no flags
CONFIGS = {"defaults": ("auto", "auto"), "torch fp32": ("torch", "fp32"), "torch bf16": ("torch", "bf16"),
           "onnx fp32": ("onnx", "fp32")}


def run_cxrkit(files: list[Path], model, config: str, batch_size: int, workers: int) -> tuple[np.ndarray, float]:
    from cxrkit.predict import Predictor, predict_files

    backend, precision = CONFIGS[config]
    predictor = Predictor(model, precision=precision, backend=backend, calibrate=False)
    head = [predictor.columns.index(label) for label in model.card.labels if label]
    start = time.perf_counter()
    rows = list(predict_files(files, predictor, batch_size=batch_size, workers=workers))
    seconds = time.perf_counter() - start
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        sys.exit(f"cxrkit failed on {len(bad)} files, e.g. {bad[0]}")
    scores = np.array([[r[c] for c in predictor.columns] for r in rows])[:, head]
    return scores, seconds


def cxrkit_parts(files: list[Path], model, batch_size: int) -> dict[str, float]:
    """The two halves of cxrkit's path timed apart: decoding + preprocessing, and the model per precision."""
    from cxrkit.predict import Predictor
    from cxrkit.predict.bench import decode_rate, model_rate

    inputs, decode = decode_rate(files, model.card)
    parts = {"decode": decode}
    for config, (backend, precision) in CONFIGS.items():
        predictor = Predictor(model, precision=precision, backend=backend, calibrate=False)
        parts[config] = model_rate(predictor, inputs, batch_size)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=1024, help="upscale the 512 px NIH subset to this size (0 = keep)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--model", default=None, help="cxrkit model (default: the bundled model, else random weights)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    from cxrkit.allocator import keep_heap
    from cxrkit.errors import ModelNotFound
    from cxrkit.models import DEFAULT_MODEL, create
    from cxrkit.predict import choose_backend
    from cxrkit.models.precision import resolve_precision

    keep_heap()

    try:
        model = create(args.model or DEFAULT_MODEL)
    except ModelNotFound:
        torch.manual_seed(0)
        model = create("densenet121")
    if model.card.architecture != "densenet121":
        sys.exit("this benchmark compares DenseNet-121 models")
    twin = xrv_model_with_weights(model)

    with tempfile.TemporaryDirectory() as tmp:
        files = prepare_images(args.source, args.images, args.size, Path(tmp))
        print(f"{len(files)} real NIH radiographs at {args.size or 512} px; model {model.card.name}; "
              f"torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}")
        for config in CONFIGS:  # warm-up (allocator, oneDNN kernels, the ONNX graph cache)
            run_cxrkit(files[:16], model, config, args.batch_size, args.workers)
        xrv_scores, xrv_s = run_xrv(files, twin, "skimage")
        xrv_cv2_scores, xrv_cv2_s = run_xrv(files, twin, "cv2")
        results = {}
        for config in CONFIGS:
            results[config] = run_cxrkit(files, model, config, args.batch_size, args.workers)
        parts = cxrkit_parts(files, model, args.batch_size)

    n = len(files)
    base = n / xrv_s
    print(f"\n{'path':44s} {'img/s':>8s} {'ratio':>7s} {'max|dp| vs xrv':>16s} {'vs xrv cv2':>11s}")
    print(f"{'torchxrayvision README path (skimage, bs1)':44s} {base:8.1f} {1.0:7.2f} {'-':>16s} {'-':>11s}")
    print(f"{'torchxrayvision engine=cv2 (bs1)':44s} {n / xrv_cv2_s:8.1f} {xrv_s / xrv_cv2_s:7.2f} "
          f"{np.abs(xrv_cv2_scores - xrv_scores).max():16.2e} {'-':>11s}")
    chosen = f"{choose_backend('cpu', 'auto')[0]} {resolve_precision('auto', 'cpu')}"
    for config, (scores, seconds) in results.items():
        label = f"cxrkit predict {config}" + (f" = {chosen}" if config == "defaults" else "") + f" (bs{args.batch_size})"
        print(f"{label:44s} {n / seconds:8.1f} {xrv_s / seconds:7.2f} "
              f"{np.abs(scores - xrv_scores).max():16.2e} {np.abs(scores - xrv_cv2_scores).max():11.2e}")
    print("\nratio = images/s relative to torchxrayvision's README path, measured in this run.")
    print(f"\ncxrkit's own bound (decode only {parts['decode']:.1f} img/s, one thread; bound = 1/(1/decode + 1/model)):")
    for config, (_, seconds) in results.items():
        model_only = parts[config]
        bound = 1.0 / (1.0 / parts["decode"] + 1.0 / model_only)
        print(f"cxrkit {config}: model only {model_only:.1f} img/s, bound {bound:.1f} img/s, "
              f"end to end {n / seconds:.1f} img/s = {n / seconds / bound:.0%} of bound")


if __name__ == "__main__":
    main()
