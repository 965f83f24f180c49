"""Generate a whole dataset: every layout and split, in parallel, byte-identical for a given config.

``generate`` always writes a fresh copy into a staging folder next to the target and renames it into place
once the manifest (written last) is there, so a crash never leaves a half-written dataset under the real
name. ``ensure`` reuses an existing dataset whose manifest has the same configuration and whose files
still hash to the manifest.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from synthscenes.config import LAYOUTS, SPLITS, DatasetConfig, load_config
from synthscenes.files import FileRecord
from synthscenes.layouts import WRITERS, ItemResult
from synthscenes.manifest import (
    MANIFEST_NAME,
    build_manifest,
    read_manifest,
    same_config,
    verify,
    write_manifest,
)

Progress = Callable[[int], None]  # called with the number of items just finished
_CHUNK = 64  # items per task: large enough to amortise inter-process traffic, small enough to balance


def _tasks(cfg: DatasetConfig) -> list[tuple[str, str, int, int]]:
    tasks = []
    for layout in LAYOUTS:
        for split in SPLITS:
            count = cfg.layout(layout).count(split)
            chunk = 1 if layout == "davis" else _CHUNK  # a clip is already many frames
            tasks += [(layout, split, start, min(start + chunk, count)) for start in range(0, count, chunk)]
    return tasks


def _run_task(args: tuple[DatasetConfig, str, tuple[str, str, int, int]]) -> list[ItemResult]:
    cfg, root, (layout, split, start, stop) = args
    writer = WRITERS[layout]
    return [writer.write_item(cfg, split, index, Path(root)) for index in range(start, stop)]


def total_items(cfg: DatasetConfig) -> int:
    return sum(cfg.layout(layout).count(split) for layout in LAYOUTS for split in SPLITS)


def _write_all(cfg: DatasetConfig, root: Path, workers: int, progress: Progress | None) -> list[FileRecord]:
    tasks = _tasks(cfg)
    jobs = [(cfg, str(root), task) for task in tasks]
    items: dict[tuple[str, str], list[ItemResult]] = {
        (layout, split): [] for layout in LAYOUTS for split in SPLITS
    }
    with contextlib.ExitStack() as stack:
        if workers > 1:
            # fork where there is one, as torch's DataLoader workers do: the children need only numpy and
            # PIL, and spawn would re-run the caller's __main__ (which fails for `python -` and notebooks).
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            pool = stack.enter_context(multiprocessing.get_context(method).Pool(workers))
            results = pool.imap(_run_task, jobs)  # ordered: the index files do not depend on scheduling
        else:
            results = map(_run_task, jobs)
        for (layout, split, _, _), result in zip(tasks, results):
            items[layout, split] += result
            if progress:
                progress(len(result))
    records = [record for split_items in items.values() for item in split_items for record in item.files]
    for (layout, split), split_items in items.items():
        records += WRITERS[layout].write_index(cfg, split, split_items, root)
    return records


def _is_replaceable(path: Path) -> bool:
    # Never delete a folder we did not write: only an empty one or a previous SynthScenes dataset.
    return not path.exists() or not any(path.iterdir()) or read_manifest(path) is not None


def generate(
    cfg: DatasetConfig | Mapping[str, Any],
    out: str | os.PathLike | None = None,
    workers: int = 2,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the dataset to ``out`` (default ``cfg.root``), replacing a previous SynthScenes dataset there.
    Returns the manifest. ``workers`` <= 1 runs in this process."""
    cfg = cfg if isinstance(cfg, DatasetConfig) else load_config(cfg)
    out = Path(out if out is not None else cfg.root)
    if not _is_replaceable(out):
        raise FileExistsError(
            f"{out} exists and is not a SynthScenes dataset (no {MANIFEST_NAME}); not replacing it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        manifest = build_manifest(cfg, _write_all(cfg, staging, workers, progress))
        write_manifest(staging, manifest)
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def ensure(
    cfg: DatasetConfig | Mapping[str, Any],
    out: str | os.PathLike | None = None,
    workers: int = 2,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], bool]:
    """Reuse the dataset at ``out`` if its manifest has this configuration and every file still hashes to
    it; otherwise generate it. Returns (manifest, generated)."""
    cfg = cfg if isinstance(cfg, DatasetConfig) else load_config(cfg)
    out = Path(out if out is not None else cfg.root)
    existing = read_manifest(out)
    if existing is not None and same_config(existing, cfg) and not verify(out, existing):
        return existing, False
    return generate(cfg, out, workers, progress), True
