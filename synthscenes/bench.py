"""Benchmark of dataset generation (the lead's ``reproduce/bench.py`` calls ``bench_generation``)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synthscenes.config import DatasetConfig, load_config
from synthscenes.generate import generate, total_items


def bench_generation(
    budget_cfg: DatasetConfig | Mapping[str, Any], workers: int = 2, out: str | Path | None = None
) -> dict[str, Any]:
    """Generate the dataset of ``budget_cfg`` (a budget's ``data`` dict or a DatasetConfig) into ``out``
    (default: a temporary folder next to the dataset's root, removed afterwards) and time it.

    Returns ``seconds`` (wall), ``items`` (images + clips), ``files``, ``bytes``, ``items_per_s``,
    ``workers`` and the manifest ``sha256``."""
    cfg = budget_cfg if isinstance(budget_cfg, DatasetConfig) else load_config(budget_cfg)
    scratch = None
    if out is None:
        # Next to where the dataset really goes: file-creation cost differs a lot between filesystems
        # (10x between /tmp and the repository's disk on the calibration machine).
        parent = Path(cfg.root).resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".synthscenes-bench-", dir=parent))
    target = Path(out) if out is not None else scratch / "dataset"
    try:
        start = time.perf_counter()
        manifest = generate(cfg, target, workers=workers)
        seconds = time.perf_counter() - start
        size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    items = total_items(cfg)
    return {
        "seconds": round(seconds, 2),
        "items": items,
        "files": len(manifest["files"]),
        "bytes": size,
        "items_per_s": round(items / seconds, 1),
        "workers": workers,
        "sha256": manifest["sha256"],
    }
