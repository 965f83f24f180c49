"""Shared fixtures."""

from __future__ import annotations

import sys

import pytest
from mmengine.registry import Registry

from methods import registry


@pytest.fixture()
def scratch_root(tmp_path, monkeypatch):
    """A private method root with its own registry state, so nothing leaks into methods/ or other tests."""
    root = tmp_path / "scratch_methods"
    root.mkdir()
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "METHOD_ROOTS", [*registry.METHOD_ROOTS, (root, "scratch_methods")])
    monkeypatch.setattr(registry, "METHODS", Registry("scratch"))
    monkeypatch.setattr(registry, "_SPECS", {})
    monkeypatch.setattr(registry, "_discovered_roots", set())
    yield root
    for name in [m for m in sys.modules if m == "scratch_methods" or m.startswith("scratch_methods.")]:
        del sys.modules[name]


@pytest.fixture()
def mae_copy(scratch_root):
    """methods/mae copied, unchanged, to a new method folder 'maecopy' in the scratch root."""
    import shutil
    from pathlib import Path

    mae_dir = Path(registry.__file__).parent / "mae"
    shutil.copytree(mae_dir, scratch_root / "maecopy", ignore=shutil.ignore_patterns("__pycache__"))
    return scratch_root / "maecopy"


@pytest.fixture(scope="session")
def golden_setting(tmp_path_factory):
    """The golden traces' setting (tests/golden/budget.py: its 32-image dataset and a fixed random-init
    encoder), written once per session."""
    from tests.golden.traces import Setting

    return Setting(tmp_path_factory.mktemp("golden"))
