"""Regenerate the pictures of the documentation site (docs/images/) from the real program.

    python scripts/docs_screenshots.py

- ``gradcam-overlay.png``: ``cxr explain`` on an example film (Grad-CAM of its top label).
- ``serve-page.png``: the page of ``cxr serve`` in Debian's headless chromium (driven by
  Playwright, as tests/serve/test_page_browser.py does) after dropping two example films
  and clicking a finding (Pneumonia, the top score of the first film) for its Grad-CAM overlay.
- ``serve-report.png``: the same page in print layout, the one-page report it prints.

Screenshots are reduced to a 256-colour palette so each PNG stays small (< 300 KB).
Needs the ``serve`` extra, playwright and /usr/bin/chromium.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


def _cxr(*args: str) -> list[str]:
    return [sys.executable, "-m", "cxrkit.cli.main", *args]


def shrink(path: Path, width: int | None = None) -> Path:
    """Palette-quantise (and optionally narrow) a PNG in place; screenshots are flat colours and films."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        if width and img.width > width:
            img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def gradcam(out: Path) -> Path:
    subprocess.run(_cxr("explain", str(EXAMPLES / "00001036_000.png"), "--method", "gradcam", "--height", "512",
                        "-o", str(out)), check=True)
    return shrink(out)


def serve_pages(page_png: Path, report_png: Path) -> None:
    from playwright.sync_api import sync_playwright

    server = subprocess.Popen(_cxr("serve", "--port", "0", "--threads", "1", "--orientation-model", "none"),
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(server.stderr), daemon=True).start()
    try:
        url, deadline = None, time.monotonic() + 180
        while url is None and time.monotonic() < deadline and server.poll() is None:
            url = next((m.group(1) for m in (re.search(r"open (http://\S+/) in a browser", s) for s in list(log)) if m),
                       None)
            time.sleep(0.1)
        if url is None:
            raise RuntimeError("cxr serve did not start:\n" + "".join(log))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            tab = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            tab.goto(url)
            tab.wait_for_function("() => document.querySelector('#model-name').textContent.includes('densenet121')")
            tab.set_input_files("#file-input", [str(EXAMPLES / "00001036_000.png"), str(EXAMPLES / "siim_chest_pa.dcm")])
            tab.wait_for_function("() => document.querySelectorAll('#results .card[data-status=ok]').length === 2")
            tab.wait_for_function("() => [...document.querySelectorAll('.card .film')].every(i => i.naturalWidth > 0)")
            tab.wait_for_function("() => [...document.querySelectorAll('.card .age-value')]"
                                  ".every(p => p.textContent.includes('years'))", timeout=120_000)
            card = tab.locator(".card[data-status=ok]").first
            card.locator("tr.finding[data-label=Pneumonia]").click()
            tab.wait_for_function("() => document.querySelector('.card[data-status=ok] img.overlay').naturalWidth > 0",
                                  timeout=120_000)
            tab.evaluate("window.scrollTo(0, 0)")
            tab.screenshot(path=str(page_png))
            tab.evaluate("window.print = () => {}")
            card.locator("button.print").click()
            tab.emulate_media(media="print")
            tab.locator("#report").screenshot(path=str(report_png))
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    shrink(page_png, width=1100)
    shrink(report_png, width=900)


def main() -> int:
    images = ROOT / "docs" / "images"
    images.mkdir(exist_ok=True)
    gradcam(images / "gradcam-overlay.png")
    serve_pages(images / "serve-page.png", images / "serve-report.png")
    for png in sorted(images.glob("*.png")):
        print(f"{png.name}: {png.stat().st_size / 1024:.0f} KB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
