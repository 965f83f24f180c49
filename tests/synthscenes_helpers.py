"""A small SynthScenes dataset shared by tests/test_synthscenes.py and tests/test_datasets.py.

Generated once per test session into a temporary folder (a fraction of a second); tests that break files
copy it first (``copy_layout``)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from synthscenes.config import DatasetConfig, load_config
from synthscenes.generate import generate

SMALL_DATA = dict(
    name="synthscenes-test",
    seed=7,
    imagenet=dict(image_size=32, train=16, val=8, objects=(2, 4)),
    ade20k=dict(image_size=32, train=6, val=4, objects=(1, 5)),
    coco=dict(image_size=64, train=6, val=4, objects=(1, 4)),
    davis=dict(image_size=32, frames=5, train=1, val=2, objects=(2, 3)),
)


def small_config(**overrides: object) -> DatasetConfig:
    return load_config({**SMALL_DATA, **overrides}, root="unused")


@cache
def small_dataset() -> tuple[Path, DatasetConfig, dict]:
    """(root, config, manifest) of the shared small dataset. Read-only: copy before breaking files."""
    scratch = Path(tempfile.mkdtemp(prefix="synthscenes-tests-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    cfg = small_config()
    manifest = generate(cfg, scratch / "data", workers=1)
    return scratch / "data", cfg, manifest


def copy_layout(layout: str, tmp_path: Path) -> Path:
    """A private, breakable copy of one layout of the shared dataset; returns the layout's root."""
    root, _, _ = small_dataset()
    return Path(shutil.copytree(root / layout, tmp_path / layout))
