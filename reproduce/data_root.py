"""The dataset root of a budget and its identity (the manifest hash every record carries).

SynthScenes budgets (micro, tiny) write their dataset on first use and reuse it when its manifest matches;
real-data budgets (small, base) read the folder given with ``--data-root``, which holds the standard layouts
under fixed names (``imagenet/``, ``ade20k/``, ``coco/``, ``davis/``; README.md). Both go through
``reproduce.data.ensure_dataset``; this module adds the cross-process lock and the sub-root names.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from mmengine.config import Config

from reproduce.data import ensure_dataset

ROOT = Path(__file__).resolve().parents[1]


def _layout(name: str) -> property:
    """The folder of one standard layout under the root."""
    return property(lambda self: self.root / name, doc=f"``root/{name}``")


@dataclass(frozen=True)
class DataRoot:
    root: Path
    manifest_hash: str

    imagenet = _layout("imagenet")
    ade20k = _layout("ade20k")
    coco = _layout("coco")
    davis = _layout("davis")


def prepare(cfg: Config, data_root: str | os.PathLike | None = None, workers: int = 2) -> DataRoot:
    """Resolve (and for SynthScenes, write if missing) the budget's dataset root; ``data_root`` overrides
    the budget's ``data.root``."""
    if data_root:
        cfg.data.root = str(Path(data_root).expanduser())
    lock_dir = Path(cfg.data.root or ROOT / "data").resolve()
    lock_dir = lock_dir.parent if cfg.data.root else lock_dir
    lock_dir.mkdir(parents=True, exist_ok=True)
    # Processes of one multi-process run all get here before any process group exists: the lock lets the
    # first one write the dataset while the others wait, then verify it.
    with open(lock_dir / ".mim-suite-data.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        imagenet, manifest_hash = ensure_dataset(cfg, workers)
    return DataRoot(Path(imagenet).parent, manifest_hash)
