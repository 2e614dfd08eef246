# %% [markdown]
# # Tutorial 6: serve a model and call its REST API
#
# `cxr serve` puts the models behind a web page and a REST API. This tutorial starts it the
# way you would in a terminal, calls it from Python with `httpx` as any other language would
# over HTTP, checks that `/v1/predict` gives the same numbers as `cxr predict`, and stops it
# with Ctrl-C. Needs the `serve` extra.

# %%
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

EXAMPLES = Path(os.environ.get("CXRKIT_EXAMPLES", "examples"))

# %% [markdown]
# Opened in a browser, the same server shows this page (two example films dropped on it, a
# finding clicked for its Grad-CAM overlay), and prints a one-page report per film:
#
# ![The page of cxr serve](../images/serve-page.png)
#
# ![The printable report](../images/serve-report.png)
#
# (Both pictures are taken by `scripts/docs_screenshots.py` in headless chromium.)
#
# ## Start the server
# `--port 0` takes any free port; the URL it prints says which. `--precision fp32` gives the
# reference numbers (the default `auto` may pick bf16). The age and orientation models are
# skipped here to start faster.

# %%
cmd = [sys.executable, "-m", "cxrkit.cli.main", "serve", "--port", "0", "--threads", "1", "--precision", "fp32",
       "--age-model", "none", "--orientation-model", "none"]
server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
log: list[str] = []
threading.Thread(target=lambda: log.extend(server.stderr), daemon=True).start()
url = None
deadline = time.monotonic() + 120
while url is None and time.monotonic() < deadline and server.poll() is None:
    url = next((m.group(1) for m in (re.search(r"open (http://\S+/) in a browser", line) for line in list(log)) if m),
               None)
    time.sleep(0.1)
if url is None:
    sys.exit("the server did not start:\n" + "".join(log))
print("serving at", url)

# %% [markdown]
# ## Ask what it serves

# %%
http = httpx.Client(base_url=url, timeout=120, trust_env=False)
print(http.get("/healthz").json())
for model in http.get("/v1/models").json()["models"]:
    print(model["name"], model["task"], len(model["labels"]), "labels")

# %% [markdown]
# ## Predict on films
# Upload files as multipart form data; the rows are those of `cxr predict --format jsonl`.

# %%
films = sorted(EXAMPLES.glob("*.png")) + [EXAMPLES / "siim_chest_pa.dcm"]
answer = http.post("/v1/predict", files=[("files", (f.name, f.read_bytes())) for f in films])
rows = answer.json()["rows"]
for row in rows:
    print(f'{row["file"]:18s} {row["status"]}  Cardiomegaly {row["Cardiomegaly"]:.3f}  Effusion {row["Effusion"]:.3f}')

# %% [markdown]
# ## The same numbers as `cxr predict`
# Run the command line on the same films with the server's runtime (PyTorch, fp32) and compare.

# %%
subprocess.run([sys.executable, "-m", "cxrkit.cli.main", "predict", *map(str, films), "-o", "cli.jsonl",
                "--format", "jsonl", "--precision", "fp32", "--backend", "torch", "--overwrite"],
               check=True)
import json  # noqa: E402  (kept next to its use in a tutorial)

cli_rows = [json.loads(line) for line in open("cli.jsonl")]
worst = max((abs(a[k] - b[k]), a["file"], k) for a, b in zip(rows, cli_rows, strict=True) for k in a
            if isinstance(a[k], float) and isinstance(b[k], float))
print(f"{len(rows)} films, largest difference between API and CLI: {worst[0]:.2e} ({worst[1]}, {worst[2]})")

# %% [markdown]
# ## A Grad-CAM overlay over HTTP
# `/v1/explain` returns a PNG (the page shows it when you click a label).

# %%
png = http.post("/v1/explain", params={"label": "Effusion"}, files={"file": (films[0].name, films[0].read_bytes())})
print(png.status_code, png.headers["content-type"], len(png.content), "bytes")

# %% [markdown]
# ## Stop it like Ctrl-C

# %%
http.close()
server.send_signal(signal.SIGINT)
print("server exited with", server.wait(60))
