"""Option definitions shared by several commands, written once."""

from __future__ import annotations

import typer

FORMAT = typer.Option("human", "--format", help="Output style: human or json.", case_sensitive=False)
DEVICE = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N.")
PRECISION = typer.Option("fp32", "--precision", help="fp32, bf16 (fast on AMX CPUs and modern GPUs) or fp16 (CUDA).")
