"""The ``cxr`` command line: a thin typer layer, one file per command group."""
