"""Option definitions shared by several commands, written once."""

from __future__ import annotations

import typer

FORMAT = typer.Option("human", "--format", help="Output style: human or json.", case_sensitive=False)
DEVICE = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N.")
PRECISION = typer.Option("auto", "--precision", help="auto (bf16 where the CPU/GPU runs it natively, else fp32), fp32 (reference numbers), bf16 or fp16 (CUDA).")
WORKERS = typer.Option(1, "--workers", min=1, help="Decoding threads running ahead of the model.")
RESUME = typer.Option(False, "--resume", help="Skip files already in --output and append the rest.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing --output.")
FIX_ORIENTATION = typer.Option(False, "--fix-orientation", help="Turn films rotated by 90/180/270 degrees upright first (orientation model); adds orientation columns.")
FIX_MIRROR = typer.Option(False, "--fix-mirror", help="With --fix-orientation, also undo left-right mirroring (less reliable: see docs/age.md).")
ORIENTATION_MODEL = typer.Option("resnet18.nih-orientation", "--orientation-model", help="Orientation model id or .safetensors file.")
DICOM_SR = typer.Option(None, "--dicom-sr", help="Also write one DICOM structured report (TID 1500, as IHE AI Results asks) per DICOM input into this folder, filed in the film's study (pip install cxrkit[dicom]); the dicom_sr column gives its path or why none was written.")
CLEAN_FILM = typer.Option(False, "--clean-film", help="CXR-Age film clean-up first: trim uniform borders, auto-level, 8-bit, shortest side 512.")


def film_steps(clean: bool, fix_orientation: bool, fix_mirror: bool, orientation_model: str, device: str, **kwargs):
    """The FilmSteps the --clean-film / --fix-orientation / --fix-mirror flags ask for (:func:`cxrkit.predict.film_steps`)."""
    from ..errors import InvalidArgument
    from ..predict import film_steps as steps

    if fix_mirror and not fix_orientation:
        raise InvalidArgument("--fix-mirror needs --fix-orientation")
    return steps(clean=clean, orientation_model=orientation_model if fix_orientation else None, mirror=fix_mirror,
                 device=device, **kwargs)
