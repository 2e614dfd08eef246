"""Prediction requests that meet in the model queue share batches, and each still gets exactly
its own answer: the rows a request gets alone, films of a client that left in nobody's answer,
and a lone request delayed by no more than the collection window."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from cxrkit.serve.errors import ClientGone
from cxrkit.serve.jobs import JobQueue
from cxrkit.serve.service import RowsJob
from cxrkit.serve.uploads import Upload

TOLERANCE = 1e-6  # fp32 scores move ~1e-7 with batch composition


def _same_rows(together: list[dict], alone: list[dict]) -> None:
    assert [r["file"] for r in together] == [r["file"] for r in alone]
    for a, b in zip(together, alone, strict=True):
        assert a.keys() == b.keys()
        for key, value in b.items():
            if isinstance(value, float) and not math.isnan(value):
                assert abs(a[key] - value) <= TOLERANCE, (key, a[key], value)
            elif isinstance(value, float):
                assert isinstance(a[key], float) and math.isnan(a[key]), key
            else:
                assert a[key] == value, key


@pytest.mark.slow
def test_concurrent_requests_get_the_rows_each_gets_alone(make_server, files, example_images):
    server = make_server(batch_window_ms=50.0)
    jobs = server.app.state.jobs
    requests = [files(path) for path in example_images[:5]]
    requests.append(files(example_images[5], example_images[0]))  # two films in one request
    requests.append(files(("notes.txt", b"not an image at all")))  # an error row among them
    with httpx.Client(base_url=server.url, timeout=300, trust_env=False) as http:
        alone = [http.post("/v1/predict", files=body).json() for body in requests]
        assert jobs.batches == 0  # one at a time: nothing to merge
        release = threading.Event()
        blocker = jobs.submit(release.wait, 60)  # hold the model so every request below queues up
        try:
            with ThreadPoolExecutor(len(requests)) as pool:
                answers = [pool.submit(http.post, "/v1/predict", files=body) for body in requests]
                deadline = time.monotonic() + 60
                while jobs.pending < len(requests) + 1 and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert jobs.pending == len(requests) + 1
                release.set()
                together = [answer.result(300) for answer in answers]
        finally:
            release.set()
        blocker.result(10)
    assert jobs.batches >= 2, "the queued requests were not scored together"
    for answer, single in zip(together, alone, strict=True):
        assert answer.status_code == 200
        body = answer.json()
        assert body["columns"] == single["columns"] and body["model"] == single["model"]
        _same_rows(body["rows"], single["rows"])
    assert together[-1].json()["rows"][0]["status"] == "error"
    assert [r["status"] for r in together[5].json()["rows"]] == ["ok", "ok"]


def test_a_cancelled_request_is_left_out_of_the_shared_batch(service, example_images):
    uploads = [Upload(path.name, path.read_bytes()) for path in example_images[:4]]
    left = threading.Event()
    left.set()  # its client went away
    jobs = [RowsJob(uploads[:2]), RowsJob([Upload("gone.png", uploads[2].data)], left), RowsJob(uploads[3:4])]
    first, gone, last = service.predict_many(jobs)
    assert isinstance(gone, ClientGone)
    assert [r["file"] for r in first.rows] == [u.name for u in uploads[:2]]
    assert [r["file"] for r in last.rows] == [uploads[3].name]
    _same_rows(first.rows, service.predict(uploads[:2]).rows)
    _same_rows(last.rows, service.predict(uploads[3:4]).rows)


def _blocked_queue(window: float, max_films: int = 8) -> tuple[JobQueue, threading.Event]:
    queue = JobQueue(capacity=16, window=window, max_films=max_films)
    gate = threading.Event()
    queue.submit(gate.wait, 30)
    return queue, gate


def test_queue_merges_waiting_items_and_skips_cancelled_ones():
    queue, gate = _blocked_queue(window=0.0)
    calls: list[list[str]] = []

    def run_many(items):
        calls.append(list(items))
        return [item.upper() for item in items]

    a = queue.submit_batch("k", "a", run_many)
    b = queue.submit_batch("k", "b", run_many)
    other = queue.submit_batch("other", "x", run_many)
    c = queue.submit_batch("k", "c", run_many)
    assert b.cancel()  # its client left while it waited
    gate.set()
    assert (a.result(10), c.result(10), other.result(10)) == ("A", "C", "X")
    queue.close()
    assert calls == [["a", "c"], ["x"]]  # same key merged (b dropped), another key alone
    assert queue.pending == 0


def test_queue_keeps_exclusive_jobs_alone_and_reports_each_failure():
    queue, gate = _blocked_queue(window=0.0)
    order: list[str] = []

    def run_many(items):
        order.append("+".join(items))
        return [ValueError(item) if item == "bad" else item for item in items]

    good = queue.submit_batch("k", "good", run_many)
    bad = queue.submit_batch("k", "bad", run_many)
    alone = queue.submit(lambda: order.append("explain") or "done")
    gate.set()
    assert good.result(10) == "good" and alone.result(10) == "done"
    with pytest.raises(ValueError, match="bad"):
        bad.result(10)
    queue.close()
    assert order == ["good+bad", "explain"]


def test_a_lone_request_waits_no_longer_than_the_window():
    window = 0.3
    queue = JobQueue(capacity=4, window=window)
    started: list[float] = []
    begin = time.monotonic()
    future = queue.submit_batch("k", 1, lambda items: started.append(time.monotonic()) or list(items))
    assert future.result(30) == 1
    waited = started[0] - begin
    assert window * 0.9 <= waited < window + 1.0, waited  # it did wait for company, and not much longer
    queue.close()


def test_a_full_batch_does_not_wait_for_the_window():
    queue, gate = _blocked_queue(window=30.0, max_films=4)
    futures = [queue.submit_batch("k", i, list, films=2) for i in range(3)]
    begin = time.monotonic()
    gate.set()
    assert [f.result(10) for f in futures[:2]] == [0, 1]  # 4 films: full, ran at once
    assert time.monotonic() - begin < 5
    queue.close()  # the one left over waits for company until shutdown ends its window
    assert futures[2].result(10) == 2


def test_a_job_cancelled_before_its_batch_starts_never_runs():
    queue, gate = _blocked_queue(window=0.0)
    ran: list[int] = []

    async def scenario() -> None:
        waiting = asyncio.ensure_future(queue.run_batch("k", 1, lambda items: ran.extend(items) or list(items)))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.sleep(0.05)
        gate.set()

    asyncio.run(scenario())
    queue.close()
    assert ran == [] and queue.pending == 0
