"""The card's verdict on held-out patients, and the surfaces that must say it where it is false."""

from __future__ import annotations

import copy

import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.models import resolve_card
from cxrkit.models.evidence import assess


def _card(name: str):
    return copy.deepcopy(resolve_card(name)[0])


def test_the_bundled_models_verdicts_come_from_their_own_numbers():
    demo = _card("densenet121.nih-demo").evidence
    # the less selected draw (43 patients) decides, not the pooled split the selection rewards
    assert demo is not None and not demo.beats_chance and demo.metric == "mean AUC"
    assert demo.value == pytest.approx(0.5457, abs=1e-4) and demo.ci == pytest.approx((0.4726, 0.6141), abs=1e-4)
    assert "43 validation patients with source == reproduce-chexnet-starter" in demo.measured_on
    age = _card("densenet121.nih-age").evidence
    assert age is not None and not age.beats_chance and age.chance == pytest.approx(12.629, abs=1e-3)
    assert age.ci[1] > age.chance  # the interval of its MAE reaches the no-skill MAE
    orientation = _card("resnet18.nih-orientation").evidence
    assert orientation is not None and orientation.beats_chance and orientation.ci[0] > 0.99
    assert demo.sentence().startswith("not shown to be better than chance")
    assert orientation.sentence().startswith("better than chance")


def test_the_rule_needs_the_whole_interval_past_no_skill():
    card = _card("densenet121.nih-demo")
    group = card.metrics["validation"]["subgroups"]["source"]["reproduce-chexnet-starter"]
    group["auc_mean_ci"] = [0.51, 0.70]
    assert assess(card).beats_chance
    del card.training["split"]["selected_on"]  # no selection subgroup: the pooled numbers decide
    card.metrics["validation"]["auc_mean_ci"] = [0.49, 0.60]
    verdict = assess(card)
    assert not verdict.beats_chance and verdict.ci == (0.49, 0.60)
    age = _card("densenet121.nih-age")
    age.metrics["validation"]["subgroups"]["source"]["reproduce-chexnet-starter"]["mae_ci_high"] = 12.0
    assert assess(age).beats_chance and assess(age).metric == "MAE (years)"
    age.metrics = {}
    assert assess(age) is None  # imported weights with no held-out numbers: no verdict, no warning


@pytest.mark.slow
def test_cli_says_it_once_before_the_scores(example_images, tiny_model_file, tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["predict", str(example_images[0]), "-o", str(tmp_path / "a.csv")])
    assert done.exit_code == 0, done.output
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "not shown to be better than chance" in warnings[0] and "0.546" in warnings[0]
    quiet = runner.invoke(app, ["predict", str(example_images[0]), "-m", str(tiny_model_file), "-o",
                                str(tmp_path / "b.csv")])
    assert quiet.exit_code == 0 and "warning:" not in quiet.stderr  # a card without held-out numbers
    age = runner.invoke(app, ["age", str(example_images[0]), "-o", str(tmp_path / "c.csv")])
    assert age.exit_code == 0 and "densenet121.nih-age is not shown to be better than chance" in age.stderr
    info = runner.invoke(app, ["models", "info", "densenet121.nih-demo", "--format", "json"])
    assert '"beats_chance": false' in info.stdout
