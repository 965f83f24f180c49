"""The layers of the code base and the direction of their imports.

``synthscenes`` (the dataset) and ``methods`` (the models) are the bottom, ``downstream`` (the protocols) and
``tables`` (the records and what renders them) sit on ``methods``, and ``reproduce`` (the scripts that run
everything) sits on top. A layer never imports one above it, not even inside a function: a helper two layers
need lives in the lower one. Every module of the five packages is also imported, so none is left broken.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("synthscenes", "methods", "downstream", "tables", "reproduce")
#: package -> the packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "methods": ("downstream", "tables", "reproduce"),
    "downstream": ("reproduce",),
    "tables": ("downstream", "reproduce"),
}


def modules() -> dict[str, Path]:
    """Every module of the five packages (a file in a folder with ``__init__.py``; budget and mm configs,
    which mmengine reads as files, are not modules) -> its path."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not all((folder / "__init__.py").is_file() for folder in _folders(path)):
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _folders(path: Path) -> list[Path]:
    return [p for p in path.parents if p != ROOT and ROOT in p.parents]


def imported_names(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, module name) of every import in ``path``, in line order: top-level and function-local
    statements, relative ones resolved, and ``importlib.import_module`` calls with a literal name."""
    tree = ast.parse(path.read_text(), str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom):  # relative: from the package, up one level per extra dot
            base = ".".join(package[: len(package) - node.level + 1])
            if node.module:
                names.append((node.lineno, f"{base}.{node.module}"))
            else:
                names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append((node.lineno, node.args[0].value))
    return sorted(names)


def violations() -> list[str]:
    found = []
    for module, path in modules().items():
        forbidden = FORBIDDEN.get(module.split(".")[0], ())
        for line, name in imported_names(module, path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {name}")
    return found


def test_every_package_has_modules():
    names = modules()
    for package in PACKAGES:
        assert package in names and any(m.startswith(package + ".") for m in names), package
    assert "downstream.ade20k.protocol" in names and "reproduce.budgets.micro" not in names


def test_imports_point_down_the_layers():
    assert violations() == []


def test_the_check_sees_function_local_and_relative_imports(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text(
        "def f():\n"
        "    from reproduce.pipeline import x\n"
        "    import importlib\n"
        "    importlib.import_module('tables.render')\n"
        "from . import sibling\n"
        "from ..in1k import data\n"
    )
    assert imported_names("downstream.coco.protocol", path) == [
        (2, "reproduce.pipeline"),
        (3, "importlib"),
        (4, "tables.render"),
        (5, "downstream.coco.sibling"),
        (6, "downstream.in1k"),
    ]


def test_every_module_imports():
    """Each module imported in a fresh process (one for all: torch is imported once)."""
    code = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        failed.append(f'{name}: {type(e).__name__}: {e}')\n"
        "assert not failed, '\\n'.join(failed)\n"
    )
    names = sorted(modules())
    run = subprocess.run(
        [sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if run.returncode:
        pytest.fail(run.stderr[-4000:])
