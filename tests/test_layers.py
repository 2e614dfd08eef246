"""The package's layering, checked on its source: each layer imports only layers to its left.

A radiograph travels one way through cxrkit (read -> preprocess -> model -> predict/train ->
serve/cli), and the imports must follow it, or a change in one stage drags the others
along. These tests read every module's imports with ``ast`` (nothing is imported), so a
new module in the wrong place fails here with the offending line.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cxrkit"

#: layer of each top-level module or package; a module may import only lower layers
#: (and itself). Equal layers are siblings: neither imports the other.
LAYERS = {
    "errors": 0,
    "__init__": 1, "labels": 1, "atomic": 1, "log_policy": 1, "warning_policy": 1, "allocator": 1,
    "io": 2,
    "preprocess": 3,
    "datasets": 4, "models": 4,
    "predict": 5, "survival": 5,
    "age": 6, "convert": 6, "dicom": 6, "explain": 6, "evaluate": 6, "embed": 6,
    "train": 7,
    "serve": 8,
    "cli": 9,
}

MAX_LINES = 350


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        out.append((".".join(("cxrkit",) + parts).removesuffix(".__init__"), path))
    return out


def _typing_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``: annotations only, never executed."""
    return {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
            and getattr(block.test, "id", getattr(block.test, "attr", "")) == "TYPE_CHECKING"
            for stmt in block.body for node in ast.walk(stmt)}


def _imports(name: str, path: Path, top_level_only: bool = False,
             runtime_only: bool = False) -> list[tuple[int, str, str]]:
    """``(line, imported module, imported name)`` for every cxrkit import in the file; ``runtime_only``
    leaves out those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    nodes = tree.body if top_level_only else ast.walk(tree)
    skip = _typing_only(tree) if runtime_only else set()
    found = []
    for node in nodes:
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            found += [(node.lineno, target, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, "") for alias in node.names]
    return [item for item in found if item[1] == "cxrkit" or item[1].startswith("cxrkit.")]


def _top(module: str, imported_name: str = "") -> str:
    parts = module.split(".")
    if len(parts) > 1:
        return parts[1]
    return imported_name if imported_name in LAYERS else "__init__"


def test_every_top_level_module_has_a_layer():
    tops = {_top(name) for name, _ in _modules() if name != "cxrkit"}
    missing = sorted(tops - LAYERS.keys())
    assert not missing, f"add these modules to LAYERS in {Path(__file__).name}: {missing}"


def test_imports_point_only_to_lower_layers():
    wrong = []
    for name, path in _modules():
        here = _top(name)
        for line, target, imported in _imports(name, path):
            there = _top(target, imported)
            if there != here and LAYERS.get(there, 99) >= LAYERS.get(here, -1):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {there} (layer {LAYERS.get(there)}) "
                             f"from {here} (layer {LAYERS.get(here)})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_only_cli_imports_typer():
    offenders = []
    for name, path in _modules():
        if _top(name) == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "typer" or n.startswith("typer.") for n in names):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, f"typer imported outside cli/: {offenders}"


def _cycles(top_level_only: bool) -> list[list[str]]:
    """Import cycles between cxrkit's modules, through module-level imports only or through every
    import (those deferred inside functions too)."""
    known = {name for name, _ in _modules()}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in _modules():
        for _, target, imported in _imports(name, path, top_level_only=top_level_only, runtime_only=True):
            candidate = f"{target}.{imported}"
            dependency = candidate if candidate in known else target
            if dependency in known and dependency != name:
                graph[name].add(dependency)
    # a package's __init__ re-exporting its own modules is not a cycle of meaning: drop parent edges
    for name in list(graph):
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(known):
        if node not in state:
            visit(node)
    return cycles


def test_no_import_cycle_between_modules():
    """Module-level imports (not those deferred inside functions) form no cycle."""
    cycles = _cycles(top_level_only=True)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


#: cycles through deferred imports in modules being reworked elsewhere; shrink it, never grow it
DEFERRED_CYCLES_ALLOWED: set[frozenset[str]] = set()


def test_no_import_cycle_through_deferred_imports():
    """An import deferred into a function still couples two modules: a cycle through one is a
    cycle (two modules that each need the other are one module split by size, not by job).
    Imports under ``if TYPE_CHECKING:`` are annotations and run nowhere; they are left out."""
    cycles = [c for c in _cycles(top_level_only=False) if frozenset(c) not in DEFERRED_CYCLES_ALLOWED]
    assert not cycles, "import cycles through deferred imports: " + "; ".join(" -> ".join(c) for c in cycles)


#: files importing another module's private names, in modules being reworked elsewhere (a path
#: absent from this tree is not checked); shrink it, never grow it
PRIVATE_IMPORTS_ALLOWED: set[str] = set()


def private_imports(name: str, path: Path, known: set[str]) -> list[tuple[int, str, str]]:
    """``from .x import _y`` where ``.x`` is another module and ``_y`` is not a module of it
    (importing a private *module* of one's own package is how a package uses its parts)."""
    return [(line, target, imported) for line, target, imported in _imports(name, path)
            if imported.startswith("_") and not imported.startswith("__") and target != name
            and f"{target}.{imported}" not in known]


def test_no_private_name_imported_across_modules():
    """A private name is private to its module; another module that needs it needs a public name
    (in a module split by job), or the code belongs with it."""
    known = {name for name, _ in _modules()}
    found = [f"{path.relative_to(PACKAGE)}:{line} imports {imported} from {target}"
             for name, path in _modules() if path.relative_to(PACKAGE).as_posix() not in PRIVATE_IMPORTS_ALLOWED
             for line, target, imported in private_imports(name, path, known)]
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def private_module_imports(name: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """Imports of a private module (``_x``) from outside the package that holds it: a module
    shared across packages is part of the library's surface and needs a name that says so."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for line, target, imported in _imports(name, path):
        module = f"{target}.{imported}" if f"{target}.{imported}" in known else target
        holder, _, last = module.rpartition(".")
        if last.startswith("_") and not last.startswith("__") and holder != package:
            found.append((line, module))
    return found


def test_no_private_module_used_outside_its_package():
    known = {name for name, _ in _modules()}
    found = [f"{path.relative_to(PACKAGE)}:{line} imports {module}"
             for name, path in _modules() for line, module in private_module_imports(name, path, known)]
    assert not found, "private modules used outside their package:\n" + "\n".join(found)


def test_the_import_checks_see_what_they_are_for(tmp_path):
    """The detectors themselves: a sibling's private name is found, a private module and one's own
    names are not; a deferred import closes a cycle, one under TYPE_CHECKING does not."""
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nfrom ._http_attempt import _attempt\nfrom . import _registry\n"
                      "from .m import _own\nif TYPE_CHECKING:\n    from .card import ModelCard\n"
                      "def f():\n    from .card import _x\n")
    known = {"cxrkit.models.m", "cxrkit.models._registry", "cxrkit.models._http_attempt", "cxrkit.models.card"}
    found = private_imports("cxrkit.models.m", module, known)
    assert [(t, i) for _, t, i in found] == [("cxrkit.models._http_attempt", "_attempt"), ("cxrkit.models.card", "_x")]
    outside = tmp_path / "n.py"
    outside.write_text("from .._atomic import write\nfrom ..models import _registry\nfrom ._own import x\n")
    known |= {"cxrkit._atomic", "cxrkit.io.n", "cxrkit.io._own"}
    assert [m for _, m in private_module_imports("cxrkit.io.n", outside, known)] == [
        "cxrkit._atomic", "cxrkit.models._registry"]
    runtime = {(t, i) for _, t, i in _imports("cxrkit.models.m", module, runtime_only=True)}
    assert ("cxrkit.models.card", "_x") in runtime and ("cxrkit.models.card", "ModelCard") not in runtime
    assert ("cxrkit.models.card", "_x") not in {(t, i) for _, t, i in _imports("cxrkit.models.m", module, top_level_only=True)}


@pytest.mark.parametrize("name,path", _modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_module_size(name, path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (> {MAX_LINES}): split it by job"


def _message_strings(node: ast.AST) -> list[ast.Constant]:
    """The string constants (f-string parts included) anywhere inside ``node``."""
    return [n for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_library_messages_name_no_cli_flag():
    """Errors raised by library code name Python parameters (`age_bands`); only cli/ speaks in flags.

    Checked: the arguments of every ``raise X(...)`` and of ``super().__init__(...)`` in a class
    (where the typed errors build their messages)."""
    flag = re.compile(r"(?<![\w-])--[a-z]")
    offenders = []
    for name, path in _modules():
        if _top(name) == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        messages = [n.exc for n in ast.walk(tree) if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)]
        messages += [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                     and n.func.attr == "__init__" and isinstance(n.func.value, ast.Call)
                     and getattr(n.func.value.func, "id", "") == "super"]
        for call in messages:
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                offenders += [f"{path.relative_to(PACKAGE)}:{c.lineno}: {c.value!r}"
                              for c in _message_strings(arg) if flag.search(c.value)]
    assert not offenders, "library messages naming CLI flags (name the parameter in backticks):\n" + "\n".join(
        offenders)
