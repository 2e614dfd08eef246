"""Run every benchmark with its peer in one go and write one markdown table into docs/performance.md.

Each benchmark in this folder measures cxrkit against a peer (TorchXRayVision, a plain
PyTorch loop, the prediction it explains, in-process scoring) in the same run; this script
runs them one after the other with small counts, so the whole table takes a few minutes
on a shared 2-core machine, reads the numbers each one prints, adds ONNX Runtime vs
PyTorch (``cxrkit.predict.bench``), and replaces the section between the markers

    <!-- run_all:begin -->  ...  <!-- run_all:end -->

of ``docs/performance.md`` with the table, the machine (CPU model, cores, CPU flags,
library versions) and the counts used. A benchmark that cannot run here (peer library
or data missing) gets a row saying why; the others still run.

    python benchmarks/run_all.py                  # all, writes docs/performance.md
    python benchmarks/run_all.py --only onnx,explain --print
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NIH = REPO.parent / "shared" / "data" / "nih" / "images"
DOC = REPO / "docs" / "performance.md"
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"

Row = tuple[str, str, str, str, str]  # benchmark, cxrkit path, cxrkit value, peer (path: value), ratio


@dataclass
class Bench:
    name: str
    script: str
    args: list[str]
    parse: Callable[[str], list[Row]]
    counts: str


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text, re.MULTILINE)
    if not found:
        raise ValueError(f"output has no line matching {pattern!r}")
    return float(found.group(1))


def _predict(out: str) -> list[Row]:
    xrv = _number(r"^torchxrayvision README path.*?\s([\d.]+)\s+1\.00", out)
    rows = []
    for config in ("defaults", "torch fp32", "torch bf16", "onnx fp32"):
        found = re.search(rf"^cxrkit predict {config}(?: = (\S+ \S+))? \(bs(\d+)\)\s+([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\S+)",
                          out, re.MULTILINE)
        bound = re.search(rf"^cxrkit {config}: model only ([\d.]+) img/s, bound ([\d.]+) img/s, .*= (\d+)% of bound",
                          out, re.MULTILINE)
        parts = (f"; model only {bound.group(1)}, {bound.group(3)} % of the decode + model bound {bound.group(2)}"
                 if bound else "")
        if found:
            what = f"defaults ({found.group(1)})" if found.group(1) else f"`--backend {config.replace(' ', ' --precision ')}`"
            path = f"`cxr predict` {what}, batch {found.group(2)} (max abs. Δp vs xrv cv2 {found.group(6)})"
            rows.append(("predict, 1024 px PNGs", path, f"{float(found.group(3)):.1f} img/s{parts}",
                         f"TorchXRayVision README path: {xrv:.1f} img/s", f"{float(found.group(4)):.2f}x"))
    if not rows:
        raise ValueError("no cxrkit rows in the output")
    return rows


def _dataloader(out: str) -> list[Row]:
    xrv = _number(r"^\(a\).*?:\s*([\d.]+) samples/s", out)
    png = _number(r"^\(b\).*?:\s*([\d.]+) samples/s", out)
    shards = _number(r"^\(c\).*?:\s*([\d.]+) samples/s", out)
    peer = f"TorchXRayVision NIH_Dataset: {xrv:.1f} samples/s"
    return [("data loading, 1 thread", "dataset from PNG", f"{png:.1f} samples/s", peer, f"{png / xrv:.1f}x"),
            ("data loading, 1 thread", "uint8 shards", f"{shards:.1f} samples/s", peer, f"{shards / xrv:.1f}x")]


def _train(out: str) -> list[Row]:
    plain = _number(r"^plain PyTorch loop\s*:\s*([\d.]+)", out)
    ours = _number(r"^cxrkit \(Lightning\)\s*:\s*([\d.]+)", out)
    setup = re.search(r"^DenseNet-121, (\d+) px, batch (\d+), (\w+)", out, re.MULTILINE)
    what = f"{setup.group(1)} px, batch {setup.group(2)}, {setup.group(3)}" if setup else ""
    return [("training step", f"Lightning loop ({what})", f"{ours:.2f} img/s", f"plain PyTorch loop: {plain:.2f} img/s",
             f"{ours / plain:.2f}x")]


def _explain(out: str) -> list[Row]:
    predict = _number(r"^predict\s+([\d.]+) ms", out)
    cam = _number(r"^gradcam\s+([\d.]+) ms", out)
    return [("explanation, 1 film", "Grad-CAM", f"{cam:.0f} ms", f"the prediction itself: {predict:.0f} ms",
             f"{cam / predict:.2f}x the time")]


def _serve(out: str) -> list[Row]:
    served = _number(r"^\| throughput \| ([\d.]+) films/s", out)
    local = _number(r"^\| in-process reference, 1 film per call \| ([\d.]+) films/s", out)
    answered = re.search(r"^\| requests answered 200 \| (\d+ of \d+)", out, re.MULTILINE)
    return [("serving, 8 clients", f"`cxr serve` ({answered.group(1) if answered else '?'} answered)",
             f"{served:.2f} films/s", f"in-process, 1 film per call: {local:.2f} films/s", f"{served / local:.2f}x")]


def benchmarks(images: int) -> list[Bench]:
    return [
        Bench("predict", "predict_vs_torchxrayvision.py", ["--images", str(images), "--size", "1024"], _predict,
              f"{images} NIH films upscaled to 1024 px"),
        Bench("dataloader", "dataloader.py", ["--n-png", str(images), "--epochs", "1"], _dataloader,
              f"{images} samples per PNG path, 1 pass over the shards"),
        Bench("train", "train_step.py", ["--steps", "4", "--warmup", "1", "--rounds", "1", "--precision", "fp32"],
              _train, "4 measured steps of batch 16, 1 round"),
        Bench("explain", "explain_cost.py", ["--repeats", "5"], _explain, "median of 5"),
        Bench("serve", "serve_load.py", ["--requests", str(images)], _serve, f"{images} requests"),
    ]


def run_script(bench: Bench, timeout: float) -> tuple[list[Row], float]:
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(REPO / "benchmarks" / bench.script), *bench.args], cwd=REPO,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return [(bench.name, "not run", f"timed out after {timeout:.0f} s", "", "")], time.perf_counter() - started
    seconds = time.perf_counter() - started
    try:
        return bench.parse(done.stdout), seconds
    except ValueError as exc:
        tail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        return [(bench.name, "not run", f"exit {done.returncode}: {tail[:120]}", "", str(exc)[:60])], seconds


def run_onnx(images: int) -> tuple[list[Row], dict, float]:
    """ONNX Runtime vs PyTorch eager, fp32, batch 8, end to end over real films."""
    sys.path.insert(0, str(REPO / "src"))
    from cxrkit.predict.bench import machine, run_bench

    started = time.perf_counter()
    films = sorted(NIH.glob("*.png"))[:images] or sorted((REPO / "examples").glob("*.png"))
    report = run_bench(films, None, backends=("torch", "onnx"), precisions=("fp32",), batch_sizes=(8,))
    by = {r.backend: r for r in report.results if r.skipped is None}
    rows: list[Row] = []
    if "onnx" in by and "torch" in by:
        onnx, eager = by["onnx"], by["torch"]
        rows.append(("ONNX Runtime, 512 px PNGs", "`cxr predict --backend onnx`, fp32, batch 8",
                     f"{onnx.end_to_end:.1f} img/s (model only {onnx.model_only:.1f})",
                     f"PyTorch eager fp32: {eager.end_to_end:.1f} img/s (model only {eager.model_only:.1f})",
                     f"{onnx.end_to_end / eager.end_to_end:.2f}x"))
    else:
        reason = next((r.skipped for r in report.results if r.skipped), "unknown")
        rows.append(("ONNX Runtime", "not run", reason, "", ""))
    return rows, machine(), time.perf_counter() - started


def markdown(rows: list[Row], machine: dict, counts: list[str], seconds: float) -> str:
    lines = [BEGIN, "", "| benchmark | cxrkit path | cxrkit | peer (same run) | ratio |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    flags = ", ".join(machine["cpu_flags"]) or "none of avx2/avx512/amx"
    runtime = f", onnxruntime {machine['onnxruntime']}" if "onnxruntime" in machine else ""
    lines += ["", (f"Machine: {machine['cpu']}, {machine['cores']} cores; CPU flags: {flags}; "
                   f"{machine['system']}, Python {machine['python']}, torch {machine['torch']}{runtime}."),
              (f"Counts (kept small: the machine is shared): {'; '.join(counts)}. Whole run {seconds / 60:.1f} min; "
               "regenerate with `python benchmarks/run_all.py`."), "", END]
    return "\n".join(lines)


def write_section(text: str, doc: Path = DOC) -> None:
    current = doc.read_text(encoding="utf-8")
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        current = head + text + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n## All benchmarks in one run: `benchmarks/run_all.py`\n\n" + text + "\n"
    doc.write_text(current, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64, help="films (or requests, samples) per benchmark")
    parser.add_argument("--only", default="", help="names separated by commas: predict,dataloader,train,explain,serve,onnx")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed to each benchmark")
    parser.add_argument("--print", dest="print_only", action="store_true", help="print the table; leave the docs alone")
    args = parser.parse_args()
    chosen = {n.strip() for n in args.only.split(",") if n.strip()}
    started = time.perf_counter()
    rows: list[Row] = []
    counts: list[str] = []
    for bench in benchmarks(args.images):
        if chosen and bench.name not in chosen:
            continue
        found, seconds = run_script(bench, args.timeout)
        print(f"{bench.name}: {seconds:.0f} s", file=sys.stderr, flush=True)
        rows += found
        counts.append(f"{bench.name} {bench.counts}")
    if not chosen or "onnx" in chosen:
        found, machine, seconds = run_onnx(args.images)
        print(f"onnx: {seconds:.0f} s", file=sys.stderr, flush=True)
        rows += found
        counts.append(f"onnx {args.images} NIH films at 512 px")
    else:
        sys.path.insert(0, str(REPO / "src"))
        from cxrkit.predict.bench import machine as describe

        machine = describe()
    text = markdown(rows, machine, counts, time.perf_counter() - started)
    print(text)
    if not args.print_only:
        write_section(text)
    return 1 if any(row[1] == "not run" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
