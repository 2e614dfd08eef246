"""The page in a real browser: Debian's chromium driven by Playwright, against a real server.

Uploads two real films (a PNG and a DICOM) and one broken file, waits for the results, checks that the table
shows exactly the API's numbers, that clicking a finding lays its Grad-CAM over the film,
that the CSV download equals ``cxr predict``'s CSV, and saves a screenshot of every state
(1280x800) under build/test-artifacts/serve/ (``CXRKIT_ARTIFACTS`` moves it) for people to look at.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app as cli
from cxrkit.labels import PATHOLOGIES

CHROMIUM = Path("/usr/bin/chromium")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CXRKIT_ARTIFACTS", REPO / "build" / "test-artifacts")) / "serve"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Chromium under Playwright; the tests skip here (collected, marked ``browser``) without either."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, base_url):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    tab.goto(base_url + "/")
    tab.wait_for_function("() => document.querySelector('#model-name').textContent.includes('densenet121')")
    tab.problems = problems
    yield tab
    context.close()


@pytest.fixture(scope="module")
def inputs(example_images, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("page")
    broken = folder / "broken.png"
    data = example_images[0].read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    return [example_images[0], REPO / "examples" / "siim_chest_pa.dcm", broken]  # a PNG, a DICOM, a broken file


def shot(page, name: str, **options) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), **options)
    return path


@pytest.fixture(scope="module")
def analysed(page, inputs, client, files):
    """The page after uploading the three files, and the API's own answer for the same files."""
    shot(page, "01-empty.png")
    page.set_input_files("#file-input", [str(p) for p in inputs])
    page.wait_for_function("() => document.querySelectorAll('#results .card').length === 3")
    page.wait_for_function("() => [...document.querySelectorAll('.card[data-status=ok] .film')].every(i => i.naturalWidth > 0)")
    page.wait_for_function("() => [...document.querySelectorAll('.card[data-status=ok] .age-value')]"
                           ".every(p => p.textContent.includes('years'))")
    api = client.post("/v1/predict", files=files(*inputs)).json()
    return api


def test_table_shows_the_api_numbers_and_the_bad_file_its_error(page, analysed):
    by_name = {row["file"]: row for row in analysed["rows"]}
    cards = page.locator("#results .card")
    assert [cards.nth(i).locator(".file-name").inner_text() for i in range(3)] == list(by_name)
    for i, name in enumerate(by_name):
        row = by_name[name]
        card = cards.nth(i)
        assert card.get_attribute("data-status") == row["status"]
        if row["status"] == "error":
            assert row["error"] in card.inner_text()
            continue
        shown = card.locator("tr.finding").evaluate_all("rows => rows.map(r => [r.dataset.label, r.dataset.score])")
        assert [label for label, _ in shown] == list(PATHOLOGIES)
        for label, score in shown:
            if row[label] is None:
                assert score == ""
            else:
                assert float(score) == row[label]  # the exact number, not a re-rounded one
        texts = card.locator("tr.finding td.num").all_inner_texts()
        assert texts[PATHOLOGIES.index("Lung Lesion")] == "not predicted"  # never 0.5
        assert texts[PATHOLOGIES.index("Effusion")] == f"{row['Effusion']:.2f}"
        # the bundled demo model is not shown to beat chance: said beside its scores, no finding emphasised
        banner = card.locator(".findings .unproven").inner_text()
        assert "not shown to be better than chance" in banner and "0.546" in banner
        assert card.locator("tr.finding.high").count() == 0
    body = page.inner_text("body")
    assert "{" not in body and '"status"' not in body  # no raw JSON on screen
    shot(page, "02-results.png")
    shot(page, "02-results-full.png", full_page=True)


def test_age_shows_the_header_age_and_a_typed_one(page, analysed):
    cards = page.locator(".card[data-status=ok]")
    dicom_gap = cards.nth(1).locator(".age-gap").inner_text()
    assert "Known age 62 (from the DICOM header)" in dicom_gap and "gap" in dicom_gap
    assert cards.nth(0).locator(".age-gap").inner_text() == ""  # a PNG has no header age
    cards.nth(0).locator(".known-age").fill("70")
    cards.nth(0).locator(".known-age").dispatch_event("change")
    page.wait_for_function("() => document.querySelector('.card[data-status=ok] .age-gap').textContent.includes('typed')")
    assert "Known age 70 (typed)" in cards.nth(0).locator(".age-gap").inner_text()


def test_clicking_a_finding_overlays_its_map(page, analysed):
    card = page.locator(".card[data-status=ok]").first
    card.locator("tr.finding[data-label=Effusion]").click()
    overlay = card.locator("img.overlay")
    overlay.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('.card[data-status=ok] img.overlay').naturalWidth > 0")
    film = card.locator("img.film")
    assert overlay.evaluate("i => [i.naturalWidth, i.naturalHeight]") == film.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert "Effusion" in card.locator(".overlay-caption").inner_text()
    assert "score" in card.locator(".overlay-caption").inner_text()
    page.locator(".card[data-status=ok] .opacity").first.fill("80")
    assert overlay.evaluate("i => i.style.opacity") == "0.8"
    card.scroll_into_view_if_needed()
    shot(page, "03-overlay.png")
    card.locator(".toggle-overlay").click()
    assert overlay.is_hidden()
    card.locator(".toggle-overlay").click()
    assert overlay.is_visible()


def test_model_panel_shows_the_card(page, analysed):
    page.click("#open-model")
    dialog = page.locator("#model-dialog")
    dialog.wait_for(state="visible")
    text = dialog.inner_text()
    assert "densenet121.nih-demo" in text and "Mean validation AUC" in text and "Intended use" in text
    assert "densenet121.nih-age" in text and "mean absolute error" in text
    assert "Evidence on held-out patients" in text and "not shown to be better than chance" in text
    shot(page, "04-model-panel.png")
    page.click("#close-model")


def test_csv_download_equals_cxr_predict(page, analysed, inputs, tmp_path):
    with page.expect_download() as info:
        page.click("#download-csv")
    downloaded = tmp_path / "page.csv"
    info.value.save_as(downloaded)
    reference = tmp_path / "cli.csv"
    result = CliRunner().invoke(cli, ["predict", *map(str, inputs), "--precision", "fp32", "-o", str(reference)])
    assert result.exit_code == 3, result.output  # the broken file fails, in both
    page_rows = list(csv.reader(io.StringIO(downloaded.read_text())))
    cli_rows = list(csv.reader(io.StringIO(reference.read_text())))
    assert page_rows[0] == cli_rows[0]
    assert [[Path(r[0]).name, *r[1:]] for r in cli_rows[1:]] == page_rows[1:]


def test_printable_report(page, analysed):
    page.evaluate("window.print = () => { window.__printed = true; }")
    page.locator(".card[data-status=ok] button.print").first.click()
    assert page.evaluate("window.__printed") is True
    page.emulate_media(media="print")
    try:
        report = page.locator("#report")
        text = report.inner_text()
        assert "Research use only" in text and "densenet121.nih-demo" in text and "Effusion" in text
        assert report.locator("img.film").count() == 2 and report.locator("img.overlay").count() == 1
        assert "CXR-Age" in text and "years" in text
        shot(page, "05-report-print.png", full_page=True)
    finally:
        page.emulate_media(media="screen")
    assert page.problems == []
