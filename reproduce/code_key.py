"""The code a pretraining run depends on, hashed so that only a change of what is computed retrains.

A run key must change when training changes and only then: a docstring or a comment edited, or a method
that this run never imports, must not make a finished checkpoint stale (a tiny Table 1 takes about 40
minutes to retrain). So the key covers the modules the method's class really imports (followed through
``methods``, the bottom layer every method builds on) plus the pretraining harness, and each module counts
by its syntax tree with the docstrings dropped: formatting, comments and prose do not reach the hash.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

#: the modules that run every pretraining step, whatever the method: the loop, data path, budget rules and
#: the learning-rate schedule (their own ``methods`` imports are followed as well)
HARNESS_MODULES = (
    "reproduce.pretrain",
    "reproduce.pretrain_data",
    "reproduce.harness",
    "reproduce.budget",
    "downstream.optim",
)
#: imports into these packages are followed; the harness's other imports (records, tables, protocols) do not
#: decide how a model trains
FOLLOWED = ("methods",)


def module_file(name: str) -> Path | None:
    """The source file of an importable module, or None (a name that is not a module, e.g. a class)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a parent that is not a package
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def imported_modules(name: str, path: Path) -> set[str]:
    """Every module name ``path`` (module ``name``) imports, at any depth of the file (function-local
    imports too); ``from pkg import sub`` yields ``pkg.sub`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def closure(roots: Iterable[str], followed: Iterable[str] = FOLLOWED) -> dict[str, Path]:
    """The roots and every module they import transitively inside the ``followed`` packages: {name: file}."""
    followed = tuple(followed)
    seen: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or (path := module_file(name)) is None:
            continue
        seen[name] = path
        todo += [m for m in imported_modules(name, path) if m.split(".")[0] in followed and m not in seen]
        if "." in name:  # a package's __init__ runs before its module
            parent = name.rpartition(".")[0]
            if parent.split(".")[0] in followed:
                todo.append(parent)
    return dict(sorted(seen.items()))


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def source_fingerprint(source: str) -> str:
    """sha256 of a module's syntax tree without docstrings: equal for sources that differ only in comments,
    docstrings or formatting."""
    tree = _without_docstrings(ast.parse(source))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def code_hash(modules: dict[str, Path]) -> str:
    """One hash over modules ({name: file}) by name and fingerprint (first 16 hex digits)."""
    digest = hashlib.sha256()
    for name, path in sorted(modules.items()):
        digest.update(f"{name}:{source_fingerprint(path.read_text())}\n".encode())
    return digest.hexdigest()[:16]


def training_modules(method_module: str) -> dict[str, Path]:
    """What a method's pretraining runs: its model's module, the harness, and what they import of
    ``methods`` and of the method's own package (a method folder outside ``methods/`` included)."""
    return closure([method_module, *HARNESS_MODULES], (*FOLLOWED, method_module.split(".")[0]))
