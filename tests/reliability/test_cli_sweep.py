"""Bad input to every `cxr` command: one line on stderr, the README's exit code, never a traceback.

Why: the person at the terminal mistypes a flag, points at the wrong folder or hands over
last year's CSV. Every command must answer with a single ``error:`` line that names what
is wrong and exit with the documented code (1 error, 2 bad flags, 4 output), whatever the
path looks like (spaces, accents, bytes that are not UTF-8). The table runs in-process
through typer's runner; the cases that need real argv bytes run the real process.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app

from .conftest import ENV, cli, stderr_lines

COMMANDS = ("predict", "age", "convert", "train", "tune", "evaluate", "explain", "survival", "serve", "listen", "embed",
            "ood-fit", "similar", "export", "bench", "models", "datasets")
SUBCOMMANDS = (("models", "list"), ("models", "info"), ("models", "import"), ("models", "fetch"),
               ("datasets", "list"), ("datasets", "summary"), ("datasets", "shard"),
               ("evaluate", "predictions"), ("evaluate", "model"), ("evaluate", "compare"), ("evaluate", "localisation"))


@pytest.fixture(scope="module")
def place(tmp_path_factory, example_images) -> dict[str, Path]:
    """Paths with spaces and accents: an empty folder, a film, a CSV with the wrong columns, bad configs."""
    root = tmp_path_factory.mktemp("sweep") / "dossier à voir ✓"
    films = root / "films du lundi"
    films.mkdir(parents=True)
    film = films / "Ünï cødé film.png"
    shutil.copy(example_images[0], film)
    empty = root / "vide é"
    empty.mkdir()
    wrong = root / "wrong columns.csv"
    wrong.write_text("foo,bar\n1,2\n", encoding="utf-8")
    bad_yaml = root / "bad config.yaml"
    bad_yaml.write_text("name: x\nmodel: [1, 2\n", encoding="utf-8")
    bad_key = root / "typo.yaml"
    bad_key.write_text("nmae: x\n", encoding="utf-8")
    return {"root": root, "films": films, "film": film, "empty": empty, "wrong": wrong, "bad_yaml": bad_yaml,
            "bad_key": bad_key, "missing": root / "no such dir" / "absent film.png", "out": root / "out put"}


#: (case id, argv builder, expected exit code, words the error line must hold); ``{name}``
#: in a needle is replaced by that path of ``place``.
CASES = [
    # bad flags and bad values: exit 2 (typer's validation) in one line
    *[(f"{c}-bad-flag", lambda p, c=c: [c, "--no-such-flag"], 2, ("--no-such-flag",)) for c in COMMANDS],
    *[(f"{g}-{s}-bad-flag", lambda p, g=g, s=s: [g, s, "--no-such-flag"], 2, ("--no-such-flag",))
      for g, s in SUBCOMMANDS],
    ("top-unknown-command", lambda p: ["frobnicate"], 2, ("frobnicate",)),
    ("models-unknown-command", lambda p: ["models", "frobnicate"], 2, ("frobnicate",)),
    ("predict-batch-size-0", lambda p: ["predict", str(p["film"]), "--batch-size", "0"], 2, ("--batch-size",)),
    ("convert-missing-output", lambda p: ["convert", str(p["film"])], 2, ("--output",)),
    ("train-missing-config", lambda p: ["train", "--config", str(p["missing"])], 2, ("{missing}",)),
    ("tune-config-is-folder", lambda p: ["tune", "--config", str(p["empty"])], 2, ("{empty}",)),
    ("models-import-missing", lambda p: ["models", "import", str(p["missing"]), "-o", "x.safetensors"], 2,
     ("{missing}",)),
    ("ood-fit-missing", lambda p: ["ood-fit", "--train", str(p["missing"]), "--val", str(p["missing"])], 2,
     ("{missing}",)),
    ("serve-missing-token-file", lambda p: ["serve", "--token-file", str(p["missing"])], 2, ("{missing}",)),
    ("datasets-folder-without-root", lambda p: ["datasets", "summary", "folder"], 1, ("root",)),
    # bad values the command itself checks: exit 1
    ("predict-bad-format", lambda p: ["predict", str(p["film"]), "--format", "xml"], 1, ("xml",)),
    ("predict-bad-precision", lambda p: ["predict", str(p["film"]), "--precision", "fp8"], 1, ("fp8",)),
    ("predict-bad-device", lambda p: ["predict", str(p["film"]), "--device", "tpu"], 1, ("tpu",)),
    ("age-bad-saliency-method", lambda p: ["age", str(p["film"]), "--saliency-method", "x"], 1, ("saliency",)),
    ("bench-bad-batch-sizes", lambda p: ["bench", str(p["film"]), "--batch-sizes", "a,b"], 1, ("a,b",)),
    ("shard-size-0", lambda p: ["datasets", "shard", "folder", "--root", str(p["root"]), "--out",
                                str(p["out"]), "--size", "0"], 1, ("size",)),
    ("shard-per-shard-0", lambda p: ["datasets", "shard", "folder", "--root", str(p["root"]), "--out",
                                     str(p["out"]), "--per-shard", "0"], 1, ("per shard",)),
    ("train-not-yaml", lambda p: ["train", "--config", str(p["bad_yaml"])], 1, ("{bad_yaml}", "YAML")),
    ("tune-unknown-key", lambda p: ["tune", "--config", str(p["bad_key"])], 1, ("nmae",)),
    ("models-fetch-unknown", lambda p: ["models", "fetch", "no-such-model"], 1, ("no-such-model",)),
    ("datasets-unknown", lambda p: ["datasets", "summary", "no-such-set"], 1, ("no-such-set",)),
    # missing files and folders: exit 1, the path named
    *[(f"{c}-missing-input", lambda p, c=c, extra=extra: [c, str(p["missing"]), *extra], 1, ("{missing}",))
      for c, extra in (("predict", ()), ("age", ()), ("embed", ("-o", "e")), ("bench", ()), ("explain", ()))],
    ("convert-missing-input", lambda p: ["convert", str(p["missing"]), "-o", str(p["out"])], 1, ("{missing}",)),
    ("evaluate-missing", lambda p: ["evaluate", "predictions", str(p["missing"]), "-l", str(p["missing"]), "-o",
                                    str(p["out"])], 1, ("{missing}",)),
    ("survival-missing", lambda p: ["survival", str(p["missing"]), "--time", "t", "--event", "e",
                                    "--predicted-age", "p", "--age", "a", "-o", str(p["out"])], 1, ("{missing}",)),
    ("export-missing-model", lambda p: ["export", str(p["missing"]), "-o", str(p["out"] / "m.onnx")], 1,
     ("{missing}",)),
    ("similar-missing-index", lambda p: ["similar", str(p["film"]), "-i", str(p["missing"])], 1, ("{missing}",)),
    ("similar-missing-query", lambda p: ["similar", str(p["missing"]), "-i", str(p["empty"])], 2, ("{missing}",)),
    ("models-info-missing", lambda p: ["models", "info", str(p["missing"])], 1, ("{missing}",)),
    ("age-missing-metadata", lambda p: ["age", str(p["film"]), "--metadata", str(p["missing"])], 1,
     ("{missing}",)),
    ("datasets-missing-labels", lambda p: ["datasets", "summary", "nih", "--labels", str(p["missing"])], 1,
     ("{missing}",)),
    ("serve-missing-model", lambda p: ["serve", "--model", str(p["missing"])], 1, ("{missing}",)),
    # an empty folder: exit 1, the folder named
    *[(f"{c}-empty-folder", lambda p, c=c, extra=extra: [c, str(p["empty"]), *extra], 1, ("{empty}",))
      for c, extra in (("predict", ()), ("age", ()), ("embed", ("-o", "e")), ("convert", ("-o", "c")))],
    ("bench-empty-folder", lambda p: ["bench", str(p["empty"])], 1, ("no image files",)),
    ("explain-folder", lambda p: ["explain", str(p["empty"])], 1, ("{empty}",)),
    ("similar-empty-index", lambda p: ["similar", str(p["film"]), "-i", str(p["empty"])], 1, ("{empty}",)),
    ("ood-fit-empty", lambda p: ["ood-fit", "--train", str(p["empty"]), "--val", str(p["empty"])], 1,
     ("{empty}",)),
    ("survival-folder", lambda p: ["survival", str(p["empty"]), "--time", "t", "--event", "e",
                                   "--predicted-age", "p", "--age", "a", "-o", str(p["out"])], 1, ("{empty}",)),
    ("summary-empty-folder", lambda p: ["datasets", "summary", "folder", "--root", str(p["empty"])], 1,
     ("{empty}",)),
    ("shard-empty-folder", lambda p: ["datasets", "shard", "folder", "--root", str(p["empty"]), "--out",
                                      str(p["out"])], 1, ("{empty}",)),
    # a CSV with the wrong columns: exit 1, the file and what is missing named
    ("evaluate-wrong-columns", lambda p: ["evaluate", "predictions", str(p["wrong"]), "-l", str(p["wrong"]), "-o",
                                          str(p["out"])], 1, ("{wrong}",)),
    ("age-metadata-wrong-columns", lambda p: ["age", str(p["film"]), "--metadata", str(p["wrong"])], 1,
     ("{wrong}", "age")),
    ("survival-wrong-columns", lambda p: ["survival", str(p["wrong"]), "--time", "t", "--event", "e",
                                          "--predicted-age", "p", "--age", "a", "-o", str(p["out"])], 1,
     ("{wrong}", "--time")),
    ("datasets-nih-wrong-columns", lambda p: ["datasets", "summary", "nih", "--labels", str(p["wrong"]),
                                              "--no-images"], 1, ("{wrong}", "Image Index")),
    ("datasets-csv-wrong-columns", lambda p: ["datasets", "summary", "csv", "--labels", str(p["wrong"]),
                                              "--no-images"], 1, ("{wrong}", "path")),
    ("ood-fit-csv-not-embeddings", lambda p: ["ood-fit", "--train", str(p["wrong"]), "--val", str(p["wrong"])], 1,
     ("{wrong}",)),
    ("models-import-csv", lambda p: ["models", "import", str(p["wrong"]), "-o", str(p["out"] / "m.safetensors")], 1,
     ("{wrong}",)),
    # an output that cannot be written: exit 4, the path named
    ("shard-out-is-a-file", lambda p: ["datasets", "shard", "folder", "--root", str(p["root"]), "--out",
                                       str(p["wrong"])], 4, ("{wrong}",)),
]


def test_every_command_is_in_the_sweep():
    """A new command must join the table: compare with what `cxr --help` lists."""
    from cxrkit.cli.main import COMMANDS as LISTED

    assert set(LISTED) == set(COMMANDS)


@pytest.mark.parametrize(("args", "code", "needles"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_and_the_documented_code(place, args, code, needles, monkeypatch):
    monkeypatch.delenv("CXRKIT_DEBUG", raising=False)
    monkeypatch.chdir(place["root"])  # relative outputs ("-o e") land in the test's folder
    result = CliRunner().invoke(app, args(place))
    lines = stderr_lines(result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    assert result.exit_code == code, result.stderr
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert sum(line.startswith("error:") for line in lines) == 1, result.stderr
    for needle in needles:
        needle = str(place[needle[1:-1]]) if needle.startswith("{") else needle
        assert needle in lines[-1], (needle, lines[-1])


def test_debug_shows_the_traceback(place, monkeypatch):
    """CXRKIT_DEBUG=1 is the one way to see where an error came from."""
    monkeypatch.setenv("CXRKIT_DEBUG", "1")
    result = CliRunner().invoke(app, ["predict", str(place["empty"])])
    assert result.exit_code == 1 and result.exception is not None and "no image files" in str(result.exception)


def test_spaces_and_accents_in_paths_work(place, tiny_model_file):
    """The unhappy paths above are matched by a happy one: such names read and write normally."""
    out = place["root"] / "résultats ✓" / "prédictions du jour.csv"
    result = CliRunner().invoke(app, ["predict", str(place["films"]), "--model", str(tiny_model_file), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == [str(place["film"])] and rows[0]["status"] == "ok"


# --- names that are not UTF-8: real argv bytes --------------------------------------------------

@pytest.fixture(scope="module")
def latin1(tmp_path_factory, example_images) -> bytes:
    """A folder whose own name and one film's name hold Latin-1 bytes (what old NAS exports carry)."""
    base = os.fsencode(tmp_path_factory.mktemp("bytes")) + b"/export \xe9t\xe9"
    os.makedirs(base)
    for name in (b"caf\xe9 film.png", b"plain.png"):
        with open(base + b"/" + name, "wb") as handle:
            handle.write(example_images[0].read_bytes())
    return base


def _run(*args: bytes | str) -> subprocess.CompletedProcess:
    argv = [os.fsencode(a) for a in cli(*[a if isinstance(a, str) else os.fsdecode(a) for a in args])]
    return subprocess.run(argv, env=ENV, capture_output=True, timeout=300)


@pytest.mark.subprocess
def test_non_utf8_names_are_scored_kept_byte_exact_and_resumed(latin1, tiny_model_file):
    """Rows name the files with their exact bytes (the CSV carries them through), and --resume
    recognises them: nothing is scored twice."""
    out = latin1 + b"/pr\xe9d.csv"
    done = _run("predict", latin1, "--model", str(tiny_model_file), "-o", out)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    lines = open(out, "rb").read().splitlines()
    assert sorted(line.split(b",")[0] for line in lines[1:]) == [latin1 + b"/caf\xe9 film.png", latin1 + b"/plain.png"]
    again = _run("predict", latin1, "--model", str(tiny_model_file), "-o", out, "--resume")
    assert again.returncode == 0 and b"0 ok, 0 failed, 2 already done" in again.stderr, again.stderr
    assert open(out, "rb").read().splitlines() == lines


@pytest.mark.subprocess
def test_non_utf8_names_convert_to_the_same_bytes(latin1):
    out = latin1 + b"/png \xff"
    done = _run("convert", latin1 + b"/caf\xe9 film.png", "-o", out, "--size", "64")
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    assert b"caf\xe9 film.png" in os.listdir(out)


def test_missing_non_utf8_path_is_one_line(latin1, monkeypatch):
    """In-process: the str Python makes of such argv bytes (surrogate escapes) is what the command sees."""
    monkeypatch.delenv("CXRKIT_DEBUG", raising=False)
    result = CliRunner().invoke(app, ["age", os.fsdecode(latin1 + b"/abs\xe9nt.png")])
    lines = stderr_lines(result.stderr)
    assert result.exit_code == 1 and "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no such file or folder") and "abs" in lines[0]
