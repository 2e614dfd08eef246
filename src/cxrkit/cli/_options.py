"""Option definitions shared by several commands, written once."""

from __future__ import annotations

import typer

FORMAT = typer.Option("human", "--format", help="Output style: human or json.", case_sensitive=False)
DEVICE = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N.")
PRECISION = typer.Option("fp32", "--precision", help="fp32, bf16 (fast on AMX CPUs and modern GPUs) or fp16 (CUDA).")
FIX_ORIENTATION = typer.Option(False, "--fix-orientation", help="Put rotated or mirrored films upright first (orientation model); adds orientation columns.")
ORIENTATION_MODEL = typer.Option("resnet18.nih-orientation", "--orientation-model", help="Orientation model id or .safetensors file.")
CLEAN_FILM = typer.Option(False, "--clean-film", help="CXR-Age film clean-up first: trim uniform borders, auto-level, 8-bit, shortest side 512.")


def film_steps(clean: bool, fix_orientation: bool, orientation_model: str, device: str):
    """The FilmSteps the --clean-film / --fix-orientation flags ask for."""
    from ..film import FilmSteps
    from ..orientation import OrientationFixer

    fixer = OrientationFixer(orientation_model, device=device) if fix_orientation else None
    return FilmSteps(clean=clean, orientation=fixer)
