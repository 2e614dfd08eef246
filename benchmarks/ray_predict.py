"""Prediction on a local Ray cluster with 1 and 2 model actors, next to the single-process engine.

    OMP_NUM_THREADS=1 python benchmarks/ray_predict.py ../shared/data/nih/images -n 200

Each configuration writes the same CSV; the script checks that they agree and prints
images/s. Ray runs get a fresh local cluster each (``num_cpus`` of this machine, no
dashboard), and the time of ``ray.init`` and of starting the actors is reported apart
from the steady rate, because on a cluster it is paid once per job.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import torch

from cxrkit.predict import OutputSpec, Predictor, run_files, scan_inputs
from cxrkit.predict.ray_run import RayEngine


def _scores(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("-n", type=int, default=200, help="films (the first n, sorted)")
    parser.add_argument("--model", default="densenet121.nih-demo")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs the local Ray cluster gets")
    args = parser.parse_args()
    torch.set_num_threads(1)
    files = scan_inputs([args.folder])[: args.n]
    import ray

    results = []
    with tempfile.TemporaryDirectory(prefix="cxr-bench-") as scratch:
        out = Path(scratch)
        predictor = Predictor(args.model, precision="fp32")
        started = time.perf_counter()
        summary = run_files(files, predictor, OutputSpec(out / "one.csv"), batch_size=args.batch_size)
        results.append(("one process (engine, 1 thread)", time.perf_counter() - started, 0.0, summary))
        for actors in (1, 2):
            started = time.perf_counter()
            ray.init(num_cpus=args.cpus, include_dashboard=False, _temp_dir=tempfile.mkdtemp(prefix="r", dir=scratch),
                     configure_logging=False, log_to_driver=False)
            booted = time.perf_counter() - started
            # half a logical CPU per actor, so that read tasks keep a slot of their own on a 2-CPU machine
            engine = RayEngine(actors=actors, cpus_per_actor=0.5)
            summary = run_files(files, predictor, OutputSpec(out / f"ray{actors}.csv"), batch_size=args.batch_size,
                                engine=engine)
            total = time.perf_counter() - started
            ray.shutdown()
            results.append((f"Ray, {args.cpus} CPUs, {actors} model actor(s)", total, booted, summary))
            one, other = _scores(out / "one.csv"), _scores(out / f"ray{actors}.csv")
            assert [r[:3] for r in one] == [r[:3] for r in other], "rows differ from the single-process run"
    print(f"{len(files)} films, {args.model}, batch {args.batch_size}, fp32, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| run | wall s | of which ray.init s | img/s (run_files, actor start included) | img/s (wall) |")
    print("|---|---|---|---|---|")
    for name, total, booted, summary in results:
        print(f"| {name} | {total:.1f} | {booted:.1f} | {summary.images_per_second:.1f} | "
              f"{(summary.ok + summary.failed) / total:.1f} |")


if __name__ == "__main__":
    main()
