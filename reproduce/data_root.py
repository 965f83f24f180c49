"""The dataset root of a budget, its identity (the manifest hash every record carries) and its check.

SynthScenes budgets (micro, tiny) write their dataset on first use under their own ``data.root`` and reuse it
when its manifest matches; real-data budgets (small, base) read the folder given with ``--data-root``, which
holds the standard layouts under fixed names (``imagenet/``, ``ade20k/``, ``coco/``, ``davis/``; README.md).
Both go through ``reproduce.data.ensure_dataset``; this module adds the cross-process lock, the sub-root
names and the full check before any work (``downstream.datasets.scan``).

``--data-root DIR`` on micro or tiny reads the budget's dataset from DIR and never writes one there: DIR must
already hold it (``python reproduce/data.py --budget micro --out DIR`` writes it), else the run stops with
one line (``reproduce.data.check_given_root``). A SynthScenes budget without a root of its own
(``data.root=None``, the golden traces' budget) is written where its caller says.

The check decodes every file of every layout once (layout, empty classes, truncated images, ADE20K label
values of both splits, COCO JSON and required keys, DAVIS ids) and records the result in the root, keyed
by the manifest hash, a listing of the files and the checker version: the next run on the same files decodes
nothing.
"""

from __future__ import annotations

import fcntl
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mmengine.config import Config

from downstream.datasets.errors import DatasetError
from downstream.datasets.scan import LAYOUTS, ROOT_LAYOUT, RootSpec, scan_data_root
from reproduce.data import check_given_root, ensure_dataset, is_synthscenes

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


def root_spec(cfg: Config) -> RootSpec:
    """What the budget reads from its root: SynthScenes (every layout required, the shape classes) or real
    data (ImageNet required, ADE20K's 150 classes, COCO's own categories; the other layouts checked when
    present, the table that needs one refuses its absence)."""
    from synthscenes.shapes import SHAPES

    synthscenes = is_synthscenes(cfg.data)
    ade = dict(cfg.get("ade20k") or {})
    davis = dict(cfg.get("davis") or {})
    by_dataset = {"SynthScenesSegDataset": len(SHAPES), "CheckedADE20KDataset": 150}
    return RootSpec(
        synthscenes=synthscenes,
        ade20k_splits=(ade.get("train_split", "training"), ade.get("val_split", "validation")),
        ade20k_classes=by_dataset.get(ade.get("dataset"), len(SHAPES) if synthscenes else 150),
        reduce_zero_label=bool(ade.get("reduce_zero_label", True)),
        coco_classes=tuple(SHAPES) if synthscenes else None,
        davis_split=davis.get("split", "val"),
        davis_resolution=davis.get("resolution", "480p"),
        required=LAYOUTS if synthscenes else ("imagenet",),
    )


def _scan_workers(workers: int) -> int:
    """Processes for the first scan: every usable CPU, unless the caller asked for one process."""
    if workers <= 1:
        return 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(workers, usable)


def prepare(cfg: Config, data_root: str | os.PathLike | None = None, workers: int = 2) -> DataRoot:
    """Resolve (and for SynthScenes, write if missing) the budget's dataset root, then check all of it
    before any work (decoded once, remembered afterwards); ``data_root`` overrides the budget's
    ``data.root``. Raises DatasetError with one line naming the file."""
    if data_root:
        given = Path(data_root).expanduser()
        check_given_root(cfg, given)
        if not is_synthscenes(cfg.data) and not given.is_dir():  # before any folder is made next to it
            raise DatasetError.at(given, "missing data root", ROOT_LAYOUT)
        cfg.data.root = str(given)
    lock_dir = Path(cfg.data.root or ROOT / "data").resolve()
    lock_dir = lock_dir.parent if cfg.data.root else lock_dir
    lock_dir.mkdir(parents=True, exist_ok=True)
    # Processes of one multi-process run all get here before any process group exists: the lock lets the
    # first one write (and check) the dataset while the others wait, then verify it and read the check.
    with open(lock_dir / ".mim-suite-data.lock", "a") as lock:  # "a": an existing lock is left unmodified
        fcntl.flock(lock, fcntl.LOCK_EX)
        imagenet, manifest_hash = ensure_dataset(cfg, workers)
        data = DataRoot(Path(imagenet).parent, manifest_hash)
        scan = scan_data_root(
            data.root, root_spec(cfg), manifest_hash=manifest_hash, workers=_scan_workers(workers)
        )
    if scan.scanned:
        print(scan.summary(data.root), file=sys.stderr, flush=True)
    return data
