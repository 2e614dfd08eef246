import numpy as np
import pytest

from cxrkit.errors import CxrkitError
from cxrkit.io import read_image
from cxrkit.predict import Predictor, predict_files


def test_bf16_close_to_fp32_on_real_images(example_images, tiny_model_file):
    images = [read_image(p) for p in example_images]
    fp32 = Predictor(str(tiny_model_file), precision="fp32", calibrate=False)
    bf16 = Predictor(str(tiny_model_file), precision="bf16", calibrate=False)
    batch = np.stack([fp32.preprocess(i.pixels, i.maxval) for i in images])
    a, b = fp32.predict_batch(batch), bf16.predict_batch(batch)
    # A random 64 px network is a harsher case than a trained 224 px one (the benchmark checks
    # < 0.01 on the real model); bf16 must still stay close and keep the ranking of the images.
    assert np.nanmax(np.abs(a - b)) < 0.02
    assert np.abs(a - b).mean(where=~np.isnan(a)) < 0.005
    assert np.isnan(a[:, 14:]).all() and not np.isnan(a[:, :14]).any()


def test_calibration_switch(example_images, tiny_model_file):
    calibrated = Predictor(str(tiny_model_file), precision="fp32")
    raw = Predictor(str(tiny_model_file), precision="fp32", calibrate=False)
    assert calibrated.calibrated and not raw.calibrated
    image = read_image(example_images[0])
    x = calibrated.preprocess(image.pixels, image.maxval)[None]
    c, r = calibrated.predict_batch(x)[0], raw.predict_batch(x)[0]
    eff = calibrated.columns.index("Effusion")
    expected = r[eff] / 0.8 if r[eff] < 0.4 else 1 - (1 - r[eff]) / 1.2
    assert c[eff] == pytest.approx(expected, abs=1e-6)
    assert not np.isnan(c[:14]).any()


def test_trained_label_without_threshold_keeps_its_raw_probability(example_images, tiny_model_file):
    """A trained output is never dropped: no threshold means the raw probability, and the card says so."""
    from cxrkit.models import create

    model = create(str(tiny_model_file))
    del model.card.thresholds["Atelectasis"]
    assert model.card.uncalibrated_labels == ["Atelectasis"]
    image = read_image(example_images[0])
    x = Predictor(model).preprocess(image.pixels, image.maxval)[None]
    calibrated = Predictor(model, precision="fp32").predict_batch(x)[0]
    raw = Predictor(model, precision="fp32", calibrate=False).predict_batch(x)[0]
    columns = Predictor(model).columns
    at, eff = columns.index("Atelectasis"), columns.index("Effusion")
    assert calibrated[at] == pytest.approx(raw[at], abs=1e-7)
    assert calibrated[eff] != pytest.approx(raw[eff], abs=1e-7)  # Effusion keeps its operating point


def test_rows_stay_in_input_order_with_errors_interleaved(example_images, tiny_model_file, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    files = [example_images[0], bad, example_images[1], example_images[2]]
    rows = list(predict_files(files, Predictor(str(tiny_model_file)), batch_size=2, workers=2))
    assert [r["file"] for r in rows] == [str(f) for f in files]
    assert [r["status"] for r in rows] == ["ok", "error", "ok", "ok"]


def test_bad_options_are_clear(tiny_model_file):
    with pytest.raises(CxrkitError, match="precision"):
        Predictor(str(tiny_model_file), precision="int4")
    with pytest.raises(CxrkitError, match="fp16"):
        Predictor(str(tiny_model_file), precision="fp16")
