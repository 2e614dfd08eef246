"""The model runs off the event loop behind a bounded queue: 503 + Retry-After when full, never a
hang, and /healthz answers quickly while the model is busy."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import httpx
import pytest

from cxrkit.serve.errors import ServerBusy
from cxrkit.serve.jobs import JobQueue


def test_full_queue_answers_503_with_retry_after(make_server, files, example_images):
    server = make_server(queue_size=1)
    release = threading.Event()
    blocker = server.app.state.jobs.submit(release.wait, 30)  # the one slot is taken
    try:
        with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as http:
            started = time.perf_counter()
            busy = http.post("/v1/predict", files=files(example_images[0]))
            assert time.perf_counter() - started < 5  # refused at once, not queued behind the blocker
            assert busy.status_code == 503
            assert int(busy.headers["retry-after"]) >= 1
            assert "busy" in busy.json()["detail"]
            health = http.get("/healthz").json()
            assert health["busy"] is True and health["queue"] == {"pending": 1, "capacity": 1}
            release.set()
            blocker.result(10)
            ok = http.post("/v1/predict", files=files(example_images[0]))
            assert ok.status_code == 200 and ok.json()["rows"][0]["status"] == "ok"
    finally:
        release.set()


@pytest.mark.slow
def test_healthz_is_fast_while_the_model_works(client, files, example_images):
    """A real batch (18 films through the DenseNet) keeps the worker busy for seconds; /healthz
    must keep answering within 100 ms (median) meanwhile."""
    batch = files(*(example_images * 3))
    result: dict = {}

    def work() -> None:
        result["answer"] = client.post("/v1/predict", files=batch)

    worker = threading.Thread(target=work)
    worker.start()
    latencies = []
    with httpx.Client(base_url=str(client.base_url), timeout=10, trust_env=False) as probe:
        deadline = time.monotonic() + 120
        while worker.is_alive() and time.monotonic() < deadline:
            started = time.perf_counter()
            health = probe.get("/healthz").json()
            took = time.perf_counter() - started
            if health["busy"]:
                latencies.append(took)
            time.sleep(0.05)
    worker.join(120)
    assert result["answer"].status_code == 200 and len(result["answer"].json()["rows"]) == 18
    assert len(latencies) >= 5, "the model was never seen busy: the batch was too short to test anything"
    assert statistics.median(latencies) < 0.1, latencies
    assert max(latencies) < 1.0, latencies


def test_queue_drops_jobs_whose_client_left_and_drains_on_close():
    queue = JobQueue(capacity=2)
    gate = threading.Event()
    ran: list[str] = []

    async def scenario() -> None:
        first = asyncio.ensure_future(queue.run(lambda: (gate.wait(10), ran.append("first"))))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(queue.run(lambda: ran.append("second")))
        await asyncio.sleep(0.05)
        with pytest.raises(ServerBusy):
            queue.submit(lambda: None)  # capacity 2: one running, one waiting
        second.cancel()  # its client went away before it started
        await asyncio.sleep(0.05)
        gate.set()
        await first

    asyncio.run(scenario())
    queue.close()
    assert ran == ["first"]
    assert queue.pending == 0
    with pytest.raises(ServerBusy, match="shutting down"):
        queue.submit(lambda: None)


def test_close_waits_for_the_running_job():
    queue = JobQueue(capacity=1)
    done = []
    queue.submit(lambda: (time.sleep(0.3), done.append(True)))
    queue.close()
    assert done == [True]
