"""Cost of a Grad-CAM explanation vs the prediction itself, one 224 px image, CPU.

Claim (issue 5): Grad-CAM for one image adds at most 1.5x the cost of predicting it.
Both sides start from the same decoded radiograph and include preprocessing:

* predict:  ``Predictor.preprocess`` + ``Predictor.predict_batch`` (fp32, batch 1), what
  ``cxr predict`` runs per image;
* gradcam:  ``cxrkit.explain.explain(model, pixels, "top", "gradcam")``: preprocessing,
  the forward pass (whose logits also give the label and the caption's probability),
  the gradient of that logit w.r.t. the last feature map, and the map resized back to
  the film's geometry;
* gradcam, full backward (for reference): the same through a named layer
  (``layer="features.norm5"``), which is how grad-cam is usually wired and makes autograd run
  through the whole network.

Medians over ``--repeats`` after a warm-up (the first call pays library imports).

Usage:
    python benchmarks/explain_cost.py [--model densenet121.nih-demo] [--threads 1] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: imports, allocator, oneDNN primitive caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model id (default: the bundled default, else random DenseNet-121)")
    parser.add_argument("--image", type=Path, default=None, help="radiograph (default: the first examples/*.png)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from cxrkit.explain import explain
    from cxrkit.io import read_image
    from cxrkit.models import DEFAULT_MODEL, create, list_models
    from cxrkit.predict import Predictor

    name = args.model or (DEFAULT_MODEL if any(c.name == DEFAULT_MODEL for c in list_models()) else "densenet121")
    image = read_image(args.image or sorted((REPO / "examples").glob("*.png"))[0])
    model = create(name)
    if model.card.input_size != 224:
        raise SystemExit(f"{name} takes {model.card.input_size} px; this benchmark is about 224 px models")
    predictor = Predictor(model, precision="fp32", calibrate=True)

    def predict() -> None:
        predictor.predict_batch(predictor.preprocess(image.pixels, image.maxval)[None])

    def gradcam() -> None:
        explain(model, image, "top", "gradcam")

    def gradcam_full() -> None:
        explain(model, image, "top", "gradcam", layer="features.norm5")

    t_predict = median_seconds(predict, args.repeats)
    t_gradcam = median_seconds(gradcam, args.repeats)
    t_full = median_seconds(gradcam_full, args.repeats)
    print(f"model {name}, image {image.pixels.shape[1]}x{image.pixels.shape[0]} -> 224 px, {args.threads} thread(s), "
          f"median of {args.repeats}")
    print(f"predict                  {t_predict * 1000:8.1f} ms")
    print(f"gradcam                  {t_gradcam * 1000:8.1f} ms   ratio {t_gradcam / t_predict:.2f}x the prediction")
    print(f"gradcam (full backward)  {t_full * 1000:8.1f} ms   ratio {t_full / t_predict:.2f}x the prediction")
    verdict = "meets" if t_gradcam <= 1.5 * t_predict else "misses"
    print(f"claim: Grad-CAM <= 1.5x the prediction: {verdict} ({t_gradcam / t_predict:.2f}x)")


if __name__ == "__main__":
    main()
