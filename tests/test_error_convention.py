"""One error convention, checked on the source: every raise is a typed ``CxrkitError`` that is also
the matching built-in exception.

A caller catches ``ValueError`` or ``FileNotFoundError`` as Python taught them, or
``CxrkitError`` to get every error cxrkit raises on purpose; the CLI prints either in one
line. A bare ``CxrkitError`` is neither (it is caught by nothing but itself), so it is refused
here, read with ``ast`` like tests/test_layers.py, with the offending file and line.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cxrkit"

#: files that still raise a bare CxrkitError, to be given typed errors (a path absent from this
#: tree is not checked); shrink it, never grow it
BARE_RAISE_ALLOWED: set[str] = set()
#: error classes that are not yet also a built-in exception (a package's base class)
NO_BUILTIN_ALLOWED = {"ServeError"}

BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                  if isinstance(value, type) and issubclass(value, BaseException) and value is not Exception
                  and value is not BaseException}


def _trees() -> dict[str, ast.Module]:
    return {path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
            for path in sorted(PACKAGE.rglob("*.py"))}


def _name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def bare_raises(trees: dict[str, ast.Module]) -> list[str]:
    return [f"{file}:{node.lineno}" for file, tree in trees.items() for node in ast.walk(tree)
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _name(node.exc.func) == "CxrkitError"]


def error_classes(trees: dict[str, ast.Module]) -> dict[str, tuple[str, list[str]]]:
    """Every class deriving from CxrkitError, however indirectly: name -> (file, base names)."""
    classes = {node.name: (file, [_name(b) for b in node.bases])
               for file, tree in trees.items() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found: dict[str, tuple[str, list[str]]] = {}
    grew = True
    while grew:
        grew = False
        for name, (file, bases) in classes.items():
            if name not in found and any(b == "CxrkitError" or b in found for b in bases):
                found[name] = (file, bases)
                grew = True
    return found


def without_builtin(classes: dict[str, tuple[str, list[str]]]) -> list[str]:
    def has_builtin(name: str) -> bool:
        return any(b in BUILTIN_ERRORS or (b in classes and has_builtin(b)) for b in classes[name][1])

    return [f"{file}: {name}" for name, (file, _) in classes.items() if not has_builtin(name)]


def test_no_bare_cxrkit_error_is_raised():
    found = [where for where in bare_raises(_trees()) if where.split(":")[0] not in BARE_RAISE_ALLOWED]
    assert not found, f"raise a typed error from cxrkit.errors (also a built-in) instead of CxrkitError: {found}"


def test_the_allow_list_only_shrinks():
    """A file cleaned up must leave the allow-list, so it cannot slip back."""
    still = {where.split(":")[0] for where in bare_raises(_trees())}
    present = {f for f in BARE_RAISE_ALLOWED if (PACKAGE / f).is_file()}
    assert present <= still, f"no bare raise left in {sorted(present - still)}: drop them"


def test_every_error_is_also_a_builtin():
    classes = error_classes(_trees())
    assert {"InvalidArgument", "MissingFile", "OutputExists", "EvaluationError", "InputFileError"} <= set(classes)
    plain = [c for c in without_builtin(classes) if c.split(": ")[1] not in NO_BUILTIN_ALLOWED]
    assert not plain, f"each CxrkitError subclass must also derive from a built-in exception: {plain}"


def test_the_checks_catch_what_they_are_for():
    """The detectors themselves: a bare raise and an error without a built-in are found."""
    tree = ast.parse("class A(CxrkitError):\n    pass\nclass B(A, ValueError):\n    pass\n"
                     "class C(B):\n    pass\ndef f():\n    raise CxrkitError('x')\n")
    assert bare_raises({"m.py": tree}) == ["m.py:8"]
    assert without_builtin(error_classes({"m.py": tree})) == ["m.py: A"]


def test_typed_errors_are_both_at_run_time():
    from cxrkit import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.CxrkitError)
        assert cls is errors.CxrkitError or any(b.__module__ == "builtins" and b is not Exception
                                                for b in cls.__mro__), name
    assert issubclass(errors.InvalidArgument, ValueError) and issubclass(errors.MissingFile, FileNotFoundError)
    assert issubclass(errors.OutputExists, FileExistsError) and issubclass(errors.Unavailable, RuntimeError)
