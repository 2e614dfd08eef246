"""Films of the NIH sample that the bundled default model never trained on."""

import pytest

#: 20 films of 20 different patients of the bundled model's validation split (configs/nih-demo.yaml:
#: seeded patient split, seed 0, the training code's build_dataset + split_train_valid)
HELD_OUT = ["00002550_000.png", "00011472_001.png", "00002846_011.png", "00002555_000.png", "00008008_046.png",
            "00005067_000.png", "00000924_000.png", "00014250_000.png", "00009245_001.png", "00003828_000.png",
            "00010311_002.png", "00010604_005.png", "00000831_001.png", "00004808_003.png", "00017936_000.png",
            "00004342_054.png", "00001913_001.png", "00001529_002.png", "00002819_000.png", "00002497_000.png"]


@pytest.fixture()
def held_out_films(shared_data):
    """Paths of :data:`HELD_OUT` in the shared NIH sample (skips when they are not there)."""
    images = shared_data / "nih" / "images"
    films = [images / name for name in HELD_OUT]
    if not all(f.exists() for f in films):
        pytest.skip("the NIH sample is not there")
    return films
