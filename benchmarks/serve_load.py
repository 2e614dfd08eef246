"""Load test of ``cxr serve`` on loopback: concurrent clients posting real films, /healthz probed meanwhile.

Claim (issue 10): under a bounded load (8 concurrent clients, 200 requests of real films)
the server answers every request (0 errors, 0 hangs), and ``/healthz`` answers in under
100 ms while the model is busy, because inference runs in a worker thread behind a
bounded queue and never on the event loop.

What runs:

* a real ``cxr serve`` process (``python -m cxrkit.cli.main serve --port 0``) bound to
  127.0.0.1 only, with the bundled models; it is stopped (Ctrl-C) at the end;
* ``--clients`` threads, each posting one film per request to ``/v1/predict`` (what the
  page does per film), until ``--requests`` requests were sent or ``--max-seconds``
  passed; a request with no answer within ``--timeout`` counts as a hang;
* one prober calling ``/healthz`` every 50 ms; its latencies while the model is busy are reported;
* one warm-up request before the clock starts (the first one builds the model's runtime),
  as the in-process reference warms up too;
* for reference (the peer of this claim: the same work without HTTP), the films scored
  in this process with ``Predictor`` + ``predict_files``, one film per call, sequentially,
  as many films as requests were sent.

Films: ``examples/*.png`` (six 512 px NIH films) unless ``--films DIR`` names a folder.
Everything stays on 127.0.0.1; the script stops by itself.

Usage:
    python benchmarks/serve_load.py [--clients 8] [--requests 200] [--max-seconds 300] [--threads 1] [--films DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def start_server(threads: int, queue_size: int) -> tuple[subprocess.Popen, str, list[str]]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cxrkit.cli.main", "serve", "--host", "127.0.0.1", "--port", "0",
           "--threads", str(threads), "--queue-size", str(queue_size)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        for line in list(lines):
            found = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
            if found:
                return proc, found.group(1), lines
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("cxr serve did not start:\n" + "".join(lines))


def reference_rate(films: list[Path], threads: int, count: int) -> float:
    """Films per second scored in-process, one film per call (what each request asks for), over
    ``count`` films (the folder's films cycled, as the clients cycle them): a handful of films
    timed once is mostly noise on a shared machine."""
    import torch

    from cxrkit.predict import Predictor, predict_files

    torch.set_num_threads(threads)
    predictor = Predictor()
    list(predict_files(films[:1], predictor))  # warm-up
    started = time.perf_counter()
    for index in range(count):
        list(predict_files([films[index % len(films)]], predictor, batch_size=1))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop sending new requests after this")
    parser.add_argument("--timeout", type=float, default=120.0, help="a request unanswered this long is a hang")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server (2 shared cores here)")
    parser.add_argument("--queue-size", type=int, default=16)
    parser.add_argument("--films", type=Path, default=None, help="folder of PNG films (default: examples/)")
    args = parser.parse_args()

    folder = args.films or REPO / "examples"
    films = sorted(folder.glob("*.png"))[:64]
    if not films:
        raise SystemExit(f"no PNG films in {folder}")
    payloads = [(f.name, f.read_bytes()) for f in films]

    proc, url, server_log = start_server(args.threads, args.queue_size)
    with httpx.Client(base_url=url, timeout=600, trust_env=False) as http:  # warm-up, as the reference has
        http.post("/v1/predict", files=[("files", payloads[0])]).raise_for_status()
    latencies: list[float] = []
    health_busy: list[float] = []
    health_all: list[float] = []
    errors: list[str] = []
    hangs = 0
    sent = 0
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()

    def next_index() -> int | None:
        nonlocal sent
        with lock:
            if sent >= args.requests or time.monotonic() - started > args.max_seconds:
                return None
            sent += 1
            return sent - 1

    def client() -> None:
        nonlocal hangs
        with httpx.Client(base_url=url, timeout=args.timeout, trust_env=False) as http:
            while (index := next_index()) is not None:
                name, data = payloads[index % len(payloads)]
                begin = time.perf_counter()
                try:
                    answer = http.post("/v1/predict", files=[("files", (name, data))])
                except httpx.TimeoutException:
                    with lock:
                        hangs += 1
                    continue
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                took = time.perf_counter() - begin
                with lock:
                    if answer.status_code == 200 and answer.json()["rows"][0]["status"] == "ok":
                        latencies.append(took)
                    else:
                        errors.append(f"HTTP {answer.status_code}: {answer.text[:120]}")

    def prober() -> None:
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
            while not stop.is_set():
                begin = time.perf_counter()
                health = http.get("/healthz").json()
                took = time.perf_counter() - begin
                health_all.append(took)
                if health["busy"]:
                    health_busy.append(took)
                time.sleep(0.05)

    probe = threading.Thread(target=prober, daemon=True)
    probe.start()
    workers = [threading.Thread(target=client) for _ in range(args.clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.monotonic() - started
    stop.set()
    probe.join(10)
    proc.send_signal(signal.SIGINT)
    exit_code = proc.wait(60)

    rate = reference_rate(films, args.threads, max(len(films), sent))
    done = len(latencies)
    print(f"cxr serve load test: {args.clients} clients, {sent} requests sent "
          f"({'all' if sent == args.requests else f'stopped at {args.max_seconds:.0f} s'}), "
          f"films from {folder}, server torch threads {args.threads}, CPU count {os.cpu_count()}")
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| requests answered 200 | {done} of {sent} |")
    print(f"| errors / hangs (> {args.timeout:.0f} s) | {len(errors)} / {hangs} |")
    print(f"| wall time | {wall:.1f} s |")
    print(f"| throughput | {done / wall:.2f} films/s |")
    print(f"| latency p50 / p95 / max | {percentile(latencies, 50):.2f} / {percentile(latencies, 95):.2f} / "
          f"{max(latencies, default=float('nan')):.2f} s |")
    print(f"| /healthz while busy: p50 / p95 / max (n={len(health_busy)}) | {1000 * percentile(health_busy, 50):.1f} / "
          f"{1000 * percentile(health_busy, 95):.1f} / {1000 * max(health_busy, default=float('nan')):.1f} ms |")
    print(f"| in-process reference, 1 film per call | {rate:.2f} films/s (server/in-process = {done / wall / rate:.2f}) |")
    print(f"| server exit after Ctrl-C | {exit_code} |")
    for error in errors[:5]:
        print("error:", error)
    leaked = [line for line in server_log if any(name in line for name, _ in payloads)]
    print(f"server log lines naming an uploaded file: {len(leaked)}")
    ok = not errors and not hangs and percentile(health_busy, 50) < 0.1 and not leaked
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
