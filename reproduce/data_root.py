"""The dataset root of a budget and its identity (the manifest hash every record carries).

SynthScenes budgets (micro, tiny) write their dataset on first use (``reproduce/data.py``) and reuse it when
its manifest matches. Real-data budgets (small, base) read the folder given with ``--data-root``. It must hold
the standard layouts under fixed names (``imagenet/``, ``ade20k/``, ``coco/``, ``davis/``; see README.md).
A real dataset is too large to hash by content, so its identity is a hash of the file listing: the relative
paths and sizes of one split.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]


class DataRootError(ValueError):
    """A budget on real data without a usable --data-root (the message says what to provide)."""


@dataclass(frozen=True)
class DataRoot:
    root: Path
    manifest_hash: str
    generated: bool = False

    @property
    def imagenet(self) -> Path:
        return self.root / "imagenet"


def is_synthetic(cfg: Config) -> bool:
    return str(cfg.data.get("name", "")).startswith("synthscenes")


def listing_hash(folder: Path) -> str:
    """sha256 over (relative path, size) of every file below ``folder``, in sorted order."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            digest.update(f"{path.relative_to(folder)}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def prepare(cfg: Config, data_root: str | os.PathLike | None = None, workers: int = 2) -> DataRoot:
    """Resolve (and for SynthScenes, write if missing) the budget's dataset root."""
    if is_synthetic(cfg):
        from reproduce.data import budget_config
        from synthscenes.generate import ensure

        dcfg = budget_config(cfg.budget, data_root)
        root = Path(dcfg.root)
        root.parent.mkdir(parents=True, exist_ok=True)
        # Processes of one multi-process run all get here before any process group exists: the lock lets
        # the first one write the dataset while the others wait, then verify it.
        with open(root.parent / f".{root.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            manifest, generated = ensure(dcfg, root, workers)
        return DataRoot(root, manifest["sha256"], generated)
    root = data_root or cfg.data.get("root")
    if not root:
        raise DataRootError(
            f"budget '{cfg.budget}' trains on real data: pass --data-root DIR, where DIR holds "
            "imagenet/{train,val}/<class>/*.JPEG (and ade20k/, coco/, davis/ for dense tasks)"
        )
    root = Path(root).expanduser()
    if not (root / "imagenet" / "train").is_dir():
        raise DataRootError(
            f"{root / 'imagenet' / 'train'}: not a folder; expected the ImageNet class-folder "
            "layout imagenet/{train,val}/<class>/*.JPEG under --data-root"
        )
    return DataRoot(root, listing_hash(root / "imagenet" / "train"))
