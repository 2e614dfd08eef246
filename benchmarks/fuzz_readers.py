"""Long-running mutation fuzzer for ``cxrkit.io.read_image``: leave it going, read the summary.

Draws cases from the same mutation table as the CI fuzz tests (``tests/io/fuzzlib.py``):
seeds (the committed tiny files in ``tests/io/fuzz_seeds``, ``examples/`` and the real DICOMs
in ``../shared/data/dicom`` when present) mutated by byte flips, truncation, splices and
structure-aware header edits; each case runs in an isolated worker process under a memory
limit and a timeout, and is judged against the reader's contract (a finite 2-D array in
``[0, maxval]``, or a typed one-line error naming the file; never another exception, a hang,
a crash, NaN/inf pixels or memory beyond the bound).

    python benchmarks/fuzz_readers.py                       # 10 minutes, 1 worker
    python benchmarks/fuzz_readers.py --minutes 480 --workers 2 --out fuzz-findings/
    python benchmarks/fuzz_readers.py --cases 100000 --seed 7 --seeds committed,examples,shared
    python benchmarks/fuzz_readers.py --replay fuzz-findings/violation-*.json
    python benchmarks/fuzz_readers.py --write-seeds         # regenerate tests/io/fuzz_seeds

Every violation is saved under ``--out`` as the failing bytes plus a JSON file with the case
(seed and ops) that ``--replay`` re-runs. Ctrl-C stops early and still prints the summary.
Exit status 0 when no violation was found, 1 otherwise. Run it under ``nice`` on a shared box.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
FUZZLIB = HERE.parent / "tests" / "io" / "fuzzlib.py"


def load_fuzzlib():
    spec = importlib.util.spec_from_file_location("cxrkit_fuzzlib", FUZZLIB)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cxrkit_fuzzlib"] = module
    spec.loader.exec_module(module)
    return module


def _signature(outcome) -> str:
    """Group violations by what went wrong, not by the exact numbers in the message."""
    text = outcome.detail.split(" (at ")[0] if outcome.kind == "violation" else outcome.detail
    head = re.sub(r"[0-9][0-9.e+]*", "N", text.split(":")[0])
    where = outcome.detail.split(" (at ")[1].rstrip(")") if " (at " in outcome.detail else ""
    return f"{outcome.kind}: {head} {where}".strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=0, help="stop after this many cases (0 = no limit)")
    parser.add_argument("--minutes", type=float, default=10.0, help="stop after this long (0 = no limit)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the run is reproducible per worker)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (cases run in parallel)")
    parser.add_argument("--seeds", default="committed,examples,shared",
                        help="seed sets, comma-separated: committed, examples, shared")
    parser.add_argument("--kinds", default="", help="only seeds of these formats, e.g. png,jpeg,tiff,bmp")
    parser.add_argument("--max-ops", type=int, default=3, help="mutations stacked per case")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit per worker")
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="folder for violating inputs")
    parser.add_argument("--replay", nargs="*", type=Path, help="re-run saved violation JSON files and exit")
    parser.add_argument("--write-seeds", action="store_true", help="regenerate the committed seeds and exit")
    args = parser.parse_args(argv)
    fz = load_fuzzlib()

    if args.write_seeds:
        fz.SEED_DIR.mkdir(exist_ok=True)
        for name, data in fz.make_seeds().items():
            (fz.SEED_DIR / name).write_bytes(data)
            print(f"{len(data):7d}  {fz.SEED_DIR / name}")
        return 0

    sets = set(args.seeds.split(","))
    seeds = fz.load_seeds(committed="committed" in sets, examples="examples" in sets, shared="shared" in sets)
    kinds = {name: fz.seed_kind(data) for name, data in seeds.items()}
    if args.kinds:
        wanted = set(args.kinds.split(","))
        seeds = {name: data for name, data in seeds.items() if kinds[name] in wanted}
        kinds = {name: kinds[name] for name in seeds}
    memory = int(args.memory_gb * (1 << 30))

    if args.replay is not None:
        failed = 0
        with fz.Runner(timeout=args.timeout, memory=memory) as runner:
            for path in args.replay:
                record = json.loads(path.read_text())
                case = (record["seed"], tuple(tuple(step) for step in record["ops"]))
                saved = path.with_suffix(".bin")  # the exact bytes (JSON cannot round-trip every op parameter)
                data = saved.read_bytes() if saved.exists() else fz.apply(case, seeds)
                outcome = runner.run(data, fz.SUFFIX.get(kinds.get(record["seed"], ""), ".bin"))
                failed += not outcome.passed
                print(f"{outcome.kind:9s} {fz.describe(case)}\n          {outcome.detail}")
        return 1 if failed else 0

    print(f"{len(seeds)} seeds ({', '.join(f'{k} {v}' for k, v in sorted(Counter(kinds.values()).items()))}), "
          f"{len(fz.OPS)} mutation ops, {args.workers} worker(s), timeout {args.timeout:g} s, "
          f"memory {args.memory_gb:g} GiB, seed {args.seed}", flush=True)
    lock = threading.Lock()
    stop = threading.Event()
    counts: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    signatures: Counter[str] = Counter()
    examples: dict[str, str] = {}
    slowest: list[tuple[float, str]] = []
    peak = [0]
    started = time.monotonic()
    deadline = started + args.minutes * 60 if args.minutes > 0 else float("inf")

    def work(index: int) -> None:
        rng = random.Random(f"{args.seed}-{index}")
        with fz.Runner(timeout=args.timeout, memory=memory) as runner:
            while not stop.is_set():
                with lock:
                    if (args.cases and sum(counts.values()) >= args.cases) or time.monotonic() > deadline:
                        stop.set()
                        break
                    counts["started"] += 1
                case = fz.random_case(rng, seeds, kinds, args.max_ops)
                data = fz.apply(case, seeds)
                outcome = runner.run(data, fz.SUFFIX.get(kinds[case[0]], ".bin"))
                with lock:
                    counts["started"] -= 1
                    counts[outcome.kind] += 1
                    by_kind[kinds[case[0]]] += 1
                    peak[0] = max(peak[0], runner.peak_rss)
                    slowest.append((outcome.seconds, fz.describe(case)))
                    slowest.sort(reverse=True)
                    del slowest[3:]
                    if not outcome.passed:
                        sig = _signature(outcome)
                        signatures[sig] += 1
                        digest = hashlib.sha1(data).hexdigest()[:12]
                        args.out.mkdir(parents=True, exist_ok=True)
                        stem = args.out / f"{outcome.kind}-{digest}"
                        stem.with_suffix(".bin").write_bytes(data)
                        stem.with_suffix(".json").write_text(json.dumps(
                            {"seed": case[0], "ops": case[1], "kind": outcome.kind, "detail": outcome.detail},
                            indent=1, default=lambda v: v.hex() if isinstance(v, bytes) else str(v)))
                        if sig not in examples:
                            examples[sig] = f"{fz.describe(case)} -> {stem}.bin"
                            print(f"\n[{outcome.kind}] {outcome.detail}\n    {examples[sig]}", flush=True)

    def progress() -> None:
        while not stop.wait(30):
            with lock:
                done = sum(v for k, v in counts.items() if k != "started")
                bad = sum(signatures.values())
            rate = done / max(1e-9, time.monotonic() - started)
            print(f"  {done} cases, {rate:.0f}/s, {bad} violations", flush=True)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(max(1, args.workers))]
    reporter = threading.Thread(target=progress, daemon=True)
    for t in threads:
        t.start()
    reporter.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.5)
    except KeyboardInterrupt:
        print("\ninterrupted: finishing the cases in flight", flush=True)
        stop.set()
        for t in threads:
            t.join(args.timeout + 5)
    stop.set()
    elapsed = time.monotonic() - started
    total = sum(v for k, v in counts.items() if k != "started")
    print(f"\n=== {total} cases in {elapsed:.0f} s ({total / max(elapsed, 1e-9):.0f}/s) ===")
    print("outcomes:   " + ", ".join(f"{k} {counts[k]}" for k in ("ok", "error", "violation", "hang", "crash")))
    print("seed kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    print(f"peak worker RSS: {peak[0] / (1 << 20):.0f} MiB (limit {args.memory_gb:g} GiB of address space)")
    print("slowest:    " + "; ".join(f"{s:.2f} s {d[:90]}" for s, d in slowest))
    if signatures:
        print(f"{sum(signatures.values())} violations, {len(signatures)} distinct (saved under {args.out}/):")
        for sig, n in signatures.most_common():
            print(f"  {n:6d}  {sig}\n          e.g. {examples[sig]}")
    else:
        print("no violations")
    return 1 if signatures else 0


if __name__ == "__main__":
    sys.exit(main())
