"""Does `cxr similar` find a film's altered copy? Plain cosine vs centred vs whitened, in one run.

Claim to check: with the bundled default model (``densenet121.nih-demo``), a film's altered
copy is its nearest neighbour for at least 9 of 10 films per alteration once the vectors are
centred and whitened (mirroring excepted: a mirrored film is a different picture to a CNN, and
is reported too). Four transforms side by side: none (plain cosine, before), centred, whitened
on the index, and the learned whitening ``cxr embed`` stores (after).

Films: NIH films the model never trained on: its validation patients (the seeded patient split
of ``configs/nih-demo.yaml``, reproduced with the training code: 239 films of 176 patients)
plus the 7 films of the 6 patients excluded from training (those of ``examples/``). Each film
gets one copy per alteration:

* rotation: turned by 3 degrees about its centre (black corners)
* crop: 4 % cut off every side, then resized back by the model's preprocessing
* contrast: +15 % about the film's mean grey level
* noise: Gaussian, sigma 5 grey levels of 255
* jpeg: re-saved as JPEG, quality 85
* mirror: left-right flipped
* combined: rotation, crop and contrast, saved as JPEG q85

``--copies`` films (100, a seeded draw) get the altered copies. Two settings: a small archive
(an index of 30 films, the copies of 10 of them queried) and an index of all held-out films,
the copies of the 100 queried. The transform is fitted on the index (the originals) and the
copies are queries, as ``cxr similar`` does; the learned one takes its altered copies from 48
other held-out films (none of the 100), 4 random alterations each (``cxrkit.embed.alter``).

Then the near-duplicate threshold of ``cxr datasets duplicates``: the index holds all originals
*and* the copies of one alteration (the learned transform fitted on it); for each threshold, the
copies whose score against their original reaches it, and the pairs of different patients' films
that reach it (score: cosine minus both films' mean cosine to their 5 nearest films, with the
cosine floor ``near_pairs`` applies). Finally exact search time against index size.

Usage:
    python benchmarks/similar_altered_copies.py [--cache vectors/] [--no-timing]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
NIH = REPO.parent / "shared" / "data" / "nih"
MODEL = "densenet121.nih-demo"
#: the view cxr embed and cxr datasets duplicates use (cxrkit.embed.RETRIEVAL_TRIM); --trim 0 for the whole film
TRIM = 0.08
ALTERATIONS = ("rotation", "crop", "contrast", "noise", "jpeg", "combined", "mirror")


def rotate(image: np.ndarray, degrees: float = 3.0) -> np.ndarray:
    h, w = image.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop(image: np.ndarray, fraction: float = 0.04) -> np.ndarray:
    h, w = image.shape
    dy, dx = round(h * fraction), round(w * fraction)
    return image[dy:h - dy, dx:w - dx]


def contrast(image: np.ndarray, gain: float = 1.15) -> np.ndarray:
    pixels = image.astype(np.float32)
    return np.clip((pixels - pixels.mean()) * gain + pixels.mean(), 0, 255).astype(np.uint8)


def noise(image: np.ndarray, sigma: float = 5.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image.astype(np.float32) + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def altered_copy(source: Path, alteration: str, folder: Path, seed: int = 0) -> Path:
    """Write ``source`` altered by ``alteration`` under ``folder``; returns the new file."""
    image = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    jpeg = alteration in ("jpeg", "combined")
    image = {"rotation": rotate, "crop": crop, "contrast": contrast, "noise": lambda x: noise(x, seed=seed),
             "jpeg": lambda x: x, "mirror": lambda x: np.ascontiguousarray(x[:, ::-1]),
             "combined": lambda x: contrast(crop(rotate(x)))}[alteration](image)
    target = folder / alteration / (source.stem + (".jpg" if jpeg else ".png"))
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 85] if jpeg else [])
    return target


def held_out_films() -> tuple[list[Path], list[str]]:
    """The default model's validation films and its excluded patients' films, with their patient ids."""
    import pandas as pd

    from cxrkit.train.config import load_config
    from cxrkit.train.data import build_dataset, split_train_valid

    cfg = load_config(REPO / "configs" / "nih-demo.yaml")
    cfg.data.root = NIH / "images"
    cfg.data.label_file = NIH / "Data_Entry_2017_v2020.csv"
    cfg.data.metadata = [NIH / "sources.csv"]
    valid = split_train_valid(build_dataset(cfg.data), cfg.data)["valid"]
    files = [valid.image_path(i) for i in range(len(valid))]
    patients = [str(p) for p in valid.patients]
    table = pd.read_csv(NIH / "Data_Entry_2017_v2020.csv", dtype=str)
    excluded = table[table["Patient ID"].isin([str(p) for p in cfg.data.exclude_patients])]
    files += [NIH / "images" / name for name in excluded["Image Index"]]
    patients += list(excluded["Patient ID"])
    return files, patients


def embed_all(files: list[Path], chosen: np.ndarray, cache: Path | None, trim: float = TRIM) -> dict[str, np.ndarray]:
    """Vectors of all films, and of the altered copies of the ``chosen`` ones (rows in ``chosen`` order);
    with ``cache`` (a folder), one .npy per set is kept and reused."""
    from cxrkit.embed import Embedder

    embedder = None
    vectors = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("original", *ALTERATIONS):
            stored = cache / f"{name}.npy" if cache is not None else None
            if stored is not None and stored.exists():
                found = np.load(stored)
                vectors[name] = found[chosen] if name != "original" and len(found) == len(files) != len(chosen) else found
                continue
            embedder = embedder or Embedder(MODEL, precision="fp32", trim=trim)
            copies = files if name == "original" else [altered_copy(files[i], name, Path(tmp), seed=int(i)) for i in chosen]
            vectors[name] = embedder.embed_files(copies, batch_size=16)
            print(f"  embedded {len(copies)} films ({name})", flush=True)
            if stored is not None:
                stored.parent.mkdir(parents=True, exist_ok=True)
                np.save(stored, vectors[name])
    return vectors


def learning_pairs(files: list[Path], chosen: np.ndarray, cache: Path | None, trim: float = TRIM) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of 48 films that get no benchmark copy and of 4 random alterations each
    (cxrkit.embed.alter, as cxr embed makes them): what the learned transform is fitted on."""
    from cxrkit.embed import Embedder
    from cxrkit.embed.alter import altered_inputs

    rest = np.setdiff1d(np.arange(len(files)), chosen)
    fit = np.sort(np.random.default_rng(1).choice(rest, 48, replace=False))
    stored = cache / "learn.npz" if cache is not None else None
    if stored is not None and stored.exists():
        found = np.load(stored)
        return found["originals"], found["altered"]
    owners, images = altered_inputs([str(files[i]) for i in fit], 4, seed=0)
    embedder = Embedder(MODEL, precision="fp32", trim=trim)
    altered = np.concatenate([embedder.predict_batch(np.stack([embedder.prepare(im)[0] for im in images[k:k + 16]]))
                              for k in range(0, len(images), 16)])
    originals = fit[np.asarray(owners)]
    if stored is not None:
        np.savez(stored, originals=originals, altered=altered)
    return originals, altered


def _index(vectors: np.ndarray, method: str, pairs: tuple[np.ndarray, np.ndarray]):
    from cxrkit.embed import EmbeddingIndex, VectorTransform

    transform = VectorTransform.fit(vectors, "learned", pairs=pairs) if method == "learned" else method
    return EmbeddingIndex([str(i) for i in range(len(vectors))], vectors, transform=transform)


def top1(vectors: dict[str, np.ndarray], chosen: np.ndarray, archive: np.ndarray, queried: np.ndarray,
         method: str, pairs: tuple[np.ndarray, np.ndarray]) -> dict[str, int]:
    """How many ``queried`` films' copies have their original as nearest film of the ``archive``
    (``queried`` are positions in ``chosen``, the films that have copies; ``archive`` are film rows)."""
    index = _index(vectors["original"][archive], method, pairs)
    out = {}
    for alteration in ALTERATIONS:
        best = index.similarity(vectors[alteration][queried]).argmax(axis=1)
        out[alteration] = int((archive[best] == chosen[queried]).sum())
    return out


def calibration(vectors: dict[str, np.ndarray], chosen: np.ndarray, patients: np.ndarray,
                pairs: tuple[np.ndarray, np.ndarray], thresholds=(0.1, 0.15, 0.22, 0.3)) -> None:
    """Scores (cxrkit.embed.duplicates.near_pairs) of copies against those of different patients' films."""
    from cxrkit.embed.duplicates import MIN_SIMILARITY, neighbourhood

    n, m = len(patients), len(chosen)
    other = np.triu(patients[:, None] != patients[None, :], 1)
    print(f"\nnear-duplicate threshold: index = all {n} originals + the {m} copies of one alteration, learned transform "
          f"fitted on it; score = cosine - mean cosine of both films to their 5 nearest films (and cosine >= 0.7). Copies at or above the "
          f"threshold (of {m}), and pairs of different patients' films at or above it (of {int(other.sum())})")
    print("| threshold | " + " | ".join(ALTERATIONS) + " | unrelated pairs |")
    print("|---|" + "---|" * len(ALTERATIONS) + "---|")
    found = {}
    for alteration in ALTERATIONS:
        index = _index(np.concatenate([vectors["original"], vectors[alteration]]), "learned", pairs)
        crowd = neighbourhood(index)
        similarity = index.vectors @ index.vectors.T
        score = similarity - (crowd[:, None] + crowd[None, :]) / 2
        score[similarity < MIN_SIMILARITY] = -np.inf  # what near_pairs requires as well
        found[alteration] = (score[chosen, n + np.arange(m)], score[:n, :n][other])
    for threshold in thresholds:
        unrelated = max(int((found[a][1] >= threshold).sum()) for a in ALTERATIONS)
        print(f"| {threshold} | " + " | ".join(f"{int((found[a][0] >= threshold).sum())}" for a in ALTERATIONS)
              + f" | {unrelated} |", flush=True)


def timing() -> None:
    from cxrkit.embed import EmbeddingIndex
    from cxrkit.embed.duplicates import near_pairs

    rng = np.random.default_rng(0)
    print("\nexact search, random 1024-d vectors (median of 5): one query / 100 queries, k=10; all pairs (duplicates)")
    print("| films | fit transform | 1 query | 100 queries | all pairs |")
    print("|---|---|---|---|---|")
    for n in (1_000, 10_000, 100_000):
        vectors = rng.standard_normal((n, 1024), dtype=np.float32)
        start = time.perf_counter()
        index = EmbeddingIndex([str(i) for i in range(n)], vectors)
        fit = time.perf_counter() - start
        del vectors
        cells = []
        for q in (1, 100):
            queries = rng.standard_normal((q, 1024), dtype=np.float32)
            runs = []
            for _ in range(5):
                start = time.perf_counter()
                index.search(queries, k=10)
                runs.append(time.perf_counter() - start)
            cells.append(f"{np.median(runs) * 1000:.1f} ms")
        if n <= 10_000:
            start = time.perf_counter()
            near_pairs(index, 0.5)
            cells.append(f"{time.perf_counter() - start:.1f} s")
        else:
            cells.append("(quadratic: ~100x the 10k time)")
        print(f"| {n:,} | {fit:.2f} s | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, help="folder keeping the vectors (one .npy per set): written on the first run, read on later ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--copies", type=int, default=100, help="films that get altered copies (seeded draw)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--trim", type=float, default=TRIM, help="fraction of each side left out of the embedding (0: whole film)")
    args = parser.parse_args()
    if not (NIH / "images").is_dir():
        raise SystemExit(f"needs the NIH sample in {NIH}")
    files, patients = held_out_films()
    print(f"{len(files)} held-out films of {len(set(patients))} patients; model {MODEL}, fp32, trim {args.trim:g} of each side")
    rng = np.random.default_rng(args.seed)
    n = len(files)
    chosen = np.sort(rng.choice(n, min(args.copies, n), replace=False))  # the films that get altered copies
    vectors = embed_all(files, chosen, args.cache, args.trim)
    pairs = learning_pairs(files, chosen, args.cache, args.trim)
    pairs = (vectors["original"][pairs[0]], pairs[1])
    pick = np.sort(rng.choice(len(chosen), 10, replace=False))  # positions in chosen
    small = np.sort(np.r_[chosen[pick], rng.choice(np.setdiff1d(np.arange(n), chosen[pick]), 20, replace=False)])
    settings = {"30-film index, the copies of 10 of its films queried": (small, pick),
                f"{n}-film index, the copies of {len(chosen)} of its films queried": (np.arange(n), np.arange(len(chosen)))}
    for title, (archive, queried) in settings.items():
        print(f"\ntop-1 on altered copies: {title}")
        print("| transform | " + " | ".join(ALTERATIONS) + " |")
        print("|---|" + "---|" * len(ALTERATIONS))
        for method, name in (("none", "plain cosine (before)"), ("centre", "centred"), ("whiten", "centred + whitened"),
                             ("learned", "centred + learned whitening (after)")):
            counts = top1(vectors, chosen, archive, queried, method, pairs)
            print(f"| {name} | " + " | ".join(f"{counts[a]}/{len(queried)}" for a in ALTERATIONS) + " |", flush=True)
    calibration(vectors, chosen, np.asarray(patients), pairs)
    if not args.no_timing:
        timing()


if __name__ == "__main__":
    main()
