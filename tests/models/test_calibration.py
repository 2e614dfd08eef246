import math

import pytest
import torch

from cxrkit.models import apply_operating_points, threshold_vector


def test_threshold_maps_to_one_half_and_is_monotone():
    t = torch.tensor([0.1, 0.7])
    p = torch.tensor([[0.1, 0.7], [0.05, 0.35], [0.55, 0.85], [0.0, 1.0]])
    out = apply_operating_points(p, t)
    assert torch.allclose(out[0], torch.tensor([0.5, 0.5]))
    assert torch.allclose(out[1], torch.tensor([0.25, 0.25]))
    assert torch.allclose(out[2], torch.tensor([0.75, 0.75]))
    assert torch.allclose(out[3], torch.tensor([0.0, 1.0]))


def test_matches_torchxrayvision_op_norm_and_keeps_the_raw_probability_without_threshold():
    xrv = pytest.importorskip("torchxrayvision")
    torch.manual_seed(0)
    probs = torch.rand(64, 4)
    thresholds = threshold_vector(["A", "B", None, "D"], {"A": 0.2, "B": 0.03, "D": 0.9})
    ours = apply_operating_points(probs, thresholds)
    theirs = xrv.models.op_norm(probs, thresholds)
    assert torch.allclose(ours[:, [0, 1, 3]], theirs[:, [0, 1, 3]], atol=1e-7)
    # torchxrayvision reports a fake 0.5 where there is no threshold; cxrkit keeps the raw probability
    assert torch.all(theirs[:, 2] == 0.5)
    assert torch.equal(ours[:, 2], probs[:, 2])
    assert math.isnan(threshold_vector(["A"], {})[0])


def test_one_activation_per_task():
    from cxrkit.models import activate

    logits = torch.tensor([[0.0, 2.0, -1.0]])
    assert torch.allclose(activate(logits, "multilabel"), torch.sigmoid(logits))
    assert torch.allclose(activate(logits, "multiclass"), torch.softmax(logits, 1))
    assert activate(logits, "multiclass").sum() == pytest.approx(1.0)
    assert torch.equal(activate(logits, "regression"), logits)
    with pytest.raises(ValueError, match="unknown task"):
        activate(logits, "segmentation")
