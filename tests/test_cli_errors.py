"""Library errors name Python parameters; the CLI prints the same advice with its flags.

``group_table`` says "cut them into bands with `age_bands`" to a Python caller; through
``cxr evaluate`` the one-line error must say ``--age-bands`` instead, because that is what
the user can type.
"""

from __future__ import annotations

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cxrkit.cli._output import flag_names
from cxrkit.cli.main import app

runner = CliRunner()


@pytest.fixture()
def many_doses(tmp_path):
    """Predictions, labels and a sidecar whose 'dose' column has too many values to be groups."""
    files = [f"{i}.png" for i in range(30)]
    pd.DataFrame({"file": files, "status": "ok", "error": "", "Effusion": [i / 30 for i in range(30)]}).to_csv(
        tmp_path / "predictions.csv", index=False)
    pd.DataFrame({"file": files, "Effusion": [i % 2 for i in range(30)]}).to_csv(tmp_path / "labels.csv", index=False)
    pd.DataFrame({"file": files, "dose": range(30)}).to_csv(tmp_path / "doses.csv", index=False)
    return tmp_path


def test_library_error_names_the_parameter(many_doses):
    pytest.importorskip("sklearn", reason="the evaluate extra is not installed")
    from cxrkit.evaluate import InputFileError, group_table

    with pytest.raises(InputFileError) as info:
        group_table(["dose"], metadata=[many_doses / "doses.csv"])
    message = str(info.value)
    assert "cut them into bands with `age_bands`" in message and "'dose' in `group_by`" in message
    assert "--" not in message


def test_cli_prints_the_same_error_with_its_flags(many_doses):
    pytest.importorskip("sklearn", reason="the evaluate extra is not installed")
    result = runner.invoke(app, [
        "evaluate", "predictions", str(many_doses / "predictions.csv"), "--labels", str(many_doses / "labels.csv"),
        "--dataset", "csv", "--output", str(many_doses / "out"), "--group-by", "dose",
        "--metadata", str(many_doses / "doses.csv"), "--bootstrap", "0", "--no-plots"])
    assert result.exit_code == 1, result.output
    line = " ".join(result.output.split())  # one line, whatever the terminal width
    assert line.startswith("error: ") and "cut them into bands with --age-bands, e.g. 0,40,60,80" in line, line
    assert "'dose' in --group-by" in line and "`" not in line, line


def _command() -> typer.main.TyperCommand:
    def cmd(cohort: str = typer.Argument(...), age_bands: str = typer.Option("", "--age-bands", "-a"),
            label: str = typer.Option("", "-l", "--label"), plots: bool = typer.Option(True, "--plots/--no-plots")):
        """Only its parameters matter."""

    sub = typer.Typer()
    sub.command()(cmd)
    return typer.main.get_command(sub)


def test_flag_names_spells_options_arguments_and_aliases():
    params = _command().params
    text = "use `age_bands`, `label_names` or `plots` on `cohort`; `model` and `cxr predict` stay"
    assert flag_names(text, params, {"label_names": "label"}) == (
        "use --age-bands, --label or --plots on COHORT; `model` and `cxr predict` stay")
    assert flag_names(text, params) == "use --age-bands, `label_names` or --plots on COHORT; `model` and `cxr predict` stay"


def test_every_command_speaks_in_flags():
    """A command added without ``@speaks_flags`` would print Python names at the command line."""

    def leaves(command, path=()):
        if not hasattr(command, "list_commands"):
            return [(" ".join(path), command)]
        return [leaf for name in command.list_commands(None)
                for leaf in leaves(command.get_command(None, name), (*path, name))]

    found = leaves(typer.main.get_command(app))
    assert len(found) > 10
    plain = [name for name, command in found if not getattr(command.callback, "speaks_flags", False)]
    assert not plain, f"commands without @speaks_flags: {plain}"


@pytest.mark.subprocess
def test_the_command_list_matches_each_command_and_imports_none():
    """`cxr --help` lists one-line helps from a table, without importing any command (that import
    was most of its start-up): each line must equal its command's own, and the list must be whole."""
    import subprocess
    import sys

    from cxrkit.cli.main import COMMANDS, load_command

    for name, (_, _, line) in COMMANDS.items():
        command = load_command(name)
        if hasattr(command, "list_commands"):  # a group: its line names every sub-command
            assert all(sub in line for sub in command.list_commands(None)), (name, line)
        else:
            assert (command.help or "").strip().split("\n")[0] == line, name
    probe = ("import sys; from cxrkit.cli.main import main; sys.argv = ['cxr', '--help']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "heavy = sorted(m for m in ('torch', 'torchvision', 'fastapi', 'lightning', 'pydicom') if m in sys.modules)\n"
             "print('IMPORTED', heavy)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "IMPORTED []" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert all(name in done.stdout for name in COMMANDS)
