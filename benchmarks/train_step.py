"""Training throughput: cxrkit's Lightning loop vs a plain hand-written PyTorch loop, in one run.

Both train the same DenseNet-121 (random init, same seed) on the same in-memory images
(the cxrkit data module's cache: NIH PNGs from ../shared/data when present, else synthetic),
same batch, same precision, channels_last, AdamW and masked BCE. The plain loop is
what a careful user would write by hand; cxrkit's loop is ``CxrModule`` run by the trainer
``cxrkit.train.fit`` builds (its sampler, augmentation hook, logging and callbacks). Rounds
alternate (plain, cxrkit, plain, cxrkit, ...) so a machine whose load changes treats both
alike; it prints the best round of each and the median overhead of the paired rounds
(on a shared machine the rounds vary by +-20 %; trust the median of several rounds).

    python benchmarks/train_step.py                      # 224 px, batch 16, bf16
    python benchmarks/train_step.py --precision fp32 --steps 6 --rounds 2

Prints images/s of each and cxrkit's overhead in percent (goal: <= 10 %).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


class StepTimer(Callback):
    """Wall time from the start of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.images = warmup, None, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup and self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.start is not None:
            self.images += len(batch[0])
            self.end = time.perf_counter()


def config(args: argparse.Namespace, out: Path):
    from cxrkit.train import config_from_dict

    nih = SHARED / "nih"
    n_images = args.batch * (args.warmup + args.steps)
    if (nih / "images").is_dir():
        data = {"dataset": "nih", "root": str(nih / "images"), "label_file": str(nih / "Data_Entry_2017_v2020.csv"),
                "max_images": int(n_images / 0.75) + args.batch}
    else:
        data = {"dataset": "csv", "root": str(out / "synthetic"), "label_file": str(out / "synthetic" / "labels.csv"),
                "csv": {"path_column": "path", "patient_column": "patient"}}
        _synthetic(out / "synthetic", int(n_images / 0.75) + args.batch)
    precision = {"bf16": "bf16-mixed", "fp32": "32-true"}[args.precision]
    return config_from_dict({
        "name": "bench", "output_dir": str(out / "run"),
        "model": {"architecture": "densenet121", "input_size": args.size},
        "data": {**data, "batch_size": args.batch, "split": {"train": 0.8, "valid": 0.2}, "cache": True},
        "optim": {"name": "adamw", "lr": 1e-3, "scheduler": "none"},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "precision": precision, "channels_last": True,
                    "early_stop_patience": None, "log_every_n_steps": 10,
                    "limit_train_batches": args.warmup + args.steps, "limit_val_batches": 0},
    })


def _synthetic(root: Path, n: int) -> None:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["path,patient,A,B,C"]
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (256, 256), dtype=np.uint8)).save(root / f"{i}.png")
        rows.append(f"{i}.png,{i},{i % 2},{(i // 2) % 2},{'' if i % 3 == 0 else (i // 3) % 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def plain_loop(cfg, dm, args) -> float:
    """The hand-written baseline: a DataLoader over the cached tensors, autocast, backward, step."""
    from cxrkit.train import build_model, masked_bce

    torch.manual_seed(0)
    model = build_model(cfg, dm.label_names).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=cfg.optim.weight_decay)
    images = dm.train_set.cache
    targets = dm.train_set.targets
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    bf16 = args.precision == "bf16"
    start, done = None, 0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start = time.perf_counter()
        idx = order[(step * args.batch) % len(order):][: args.batch]
        x = images[idx].float().contiguous(memory_format=torch.channels_last)
        y = targets[idx]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = masked_bce(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if start is not None:
            done += len(idx)
    return done / (time.perf_counter() - start)


def cxrkit_loop(cfg, dm, args) -> float:
    from cxrkit.train.fit import _loss, build_model, make_trainer, torch_flags
    from cxrkit.train.module import CxrModule

    torch.manual_seed(0)
    dm.seed = 0
    module = CxrModule(build_model(cfg, dm.label_names), cfg.task, dm.label_names, _loss(cfg, dm), cfg.optim,
                       cfg.trainer.channels_last, cfg.trainer.max_epochs)
    timer = StepTimer(args.warmup)
    from cxrkit.train.callbacks import build_callbacks

    _, callbacks = build_callbacks(cfg.trainer, Path(cfg.output_dir) / "checkpoints")
    with torch_flags():  # exactly as fit() runs it; the global flags are restored for the plain loop
        trainer = make_trainer(cfg, Path(cfg.output_dir), [*callbacks, timer])
        trainer.fit(module, datamodule=dm)
    return timer.images / (timer.end - timer.start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="measured steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    from cxrkit.train import prepare_data
    from cxrkit.train.fit import hardware

    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(args, Path(tmp))
        dm = prepare_data(cfg)
        plain, ours = [], []
        for r in range(args.rounds):
            plain.append(plain_loop(cfg, dm, args))
            ours.append(cxrkit_loop(cfg, dm, args))
            print(f"round {r + 1}: plain {plain[-1]:.2f} img/s, cxrkit {ours[-1]:.2f} img/s", flush=True)
    best_plain, best_ours = max(plain), max(ours)
    overhead = (best_plain / best_ours - 1.0) * 100.0
    paired = sorted((p / o - 1.0) * 100.0 for p, o in zip(plain, ours))
    median = float(np.median(paired))
    print(f"\nDenseNet-121, {args.size} px, batch {args.batch}, {args.precision}, channels_last, "
          f"{args.steps} steps x {args.rounds} rounds; {hardware()}")
    print(f"plain PyTorch loop : {best_plain:7.2f} img/s (best round)")
    print(f"cxrkit (Lightning) : {best_ours:7.2f} img/s (best round)")
    print(f"cxrkit overhead    : {overhead:+.1f} % best vs best; median of paired rounds {median:+.1f} % "
          f"(rounds: {', '.join(f'{x:+.1f}' for x in paired)}; time per image; goal <= 10 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
