"""The full check of a data root before any work, done once per dataset content and then remembered.

    result = scan_data_root(root, RootSpec(synthscenes=True), manifest_hash=data.manifest_hash, workers=2)

For each standard layout under ``root`` (``imagenet/``, ``ade20k/``, ``coco/``, ``davis/``) it checks the
layout (split folders, empty classes, image/label pairs, COCO JSON and its required keys, DAVIS sequence
lists and first-frame ids), then decodes every file: every image (a truncated JPEG is found here, not
mid-run), every ADE20K label map of both splits with its values against the classes, every DAVIS mask
against its sequence's objects. The first problem is a ``DatasetError`` whose one line names the file, what
was found and what was expected. ``reproduce.data_root.prepare`` runs it for every table script and for
``reproduce/pretrain.py``, before any model is built.

**Cache.** A layout that passed is recorded in ``~/.cache/mim-suite/data-checks/<root path's hash>.json``
(``$XDG_CACHE_HOME`` if set; never in the dataset folder) under a key that hashes ``CHECKER_VERSION``,
what the check depends on (splits, class count, COCO class names), the dataset's manifest hash and a
listing of the layout's files (relative path, size, mtime; hidden entries such as ``imagenet/.decoded`` are
left out). A second run on the same files reads the marker and stats the files (tens of milliseconds on
micro) and decodes nothing; a changed, added or removed file, another checker version or other check
parameters scan that layout again.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from downstream.datasets.ade20k_layout import check_label_map, image_label_pairs
from downstream.datasets.coco_layout import listed_images
from downstream.datasets.davis import DavisDataset, read_mask
from downstream.datasets.errors import (
    ADE20K_LAYOUT,
    COCO_LAYOUT,
    DAVIS_LAYOUT,
    IMAGENET_LAYOUT,
    DatasetError,
)
from downstream.datasets.imagenet import class_folder_splits, read_captions
from downstream.datasets.images import decode

#: bump when a check changes what it accepts: every cached result is then re-checked once
CHECKER_VERSION = 1
LAYOUTS = ("imagenet", "ade20k", "coco", "davis")
ROOT_LAYOUT = "<root>/{imagenet,ade20k,coco,davis} (README.md, 'Real datasets')"
_LAYOUT_TEXT = {
    "imagenet": IMAGENET_LAYOUT,
    "ade20k": ADE20K_LAYOUT,
    "coco": COCO_LAYOUT,
    "davis": DAVIS_LAYOUT,
}
#: fewer files than this are decoded in this process (starting a pool costs more than it saves)
POOL_MIN_FILES = 2000

# One file to decode: (kind, path, argument); kinds 'image' (argument: the layout text), 'label' (ADE20K:
# (num_classes, reduce_zero_label)), 'mask' (DAVIS: the sequence's object count).
Task = tuple[str, str, Any]


@dataclass(frozen=True)
class RootSpec:
    """What the budget reads from a data root, i.e. what its check depends on."""

    synthscenes: bool = False
    ade20k_splits: tuple[str, ...] = ("training", "validation")
    ade20k_classes: int = 150
    reduce_zero_label: bool = True
    coco_splits: tuple[str, ...] = ("train2017", "val2017")
    coco_classes: tuple[str, ...] | None = None  # the names every annotation's category must be one of
    davis_split: str = "val"  # required; the other split is checked when its list file is there
    davis_resolution: str = "480p"
    required: tuple[str, ...] = ("imagenet",)  # layouts that must be there; the others are checked if present

    def params(self, layout: str) -> dict[str, Any]:
        """The part of the spec that ``layout``'s check depends on (it goes into the cache key)."""
        return {
            "imagenet": {"synthscenes": self.synthscenes},
            "ade20k": {
                "splits": self.ade20k_splits,
                "classes": self.ade20k_classes,
                "reduce_zero_label": self.reduce_zero_label,
            },
            "coco": {"splits": self.coco_splits, "classes": self.coco_classes},
            "davis": {"split": self.davis_split, "resolution": self.davis_resolution},
        }[layout]


@dataclass
class ScanResult:
    counts: dict[str, Any] = field(default_factory=dict)  # per layout: files per split, as the plan counted
    scanned: list[str] = field(default_factory=list)  # layouts decoded now
    cached: list[str] = field(default_factory=list)  # layouts whose unchanged files passed before
    absent: list[str] = field(default_factory=list)  # optional layouts not under the root
    files: int = 0  # files decoded now
    seconds: float = 0.0
    marker: Path | None = None  # where the result was recorded (None: nowhere writable)

    def summary(self, root: Path) -> str:
        """One line for the log of a run that scanned something."""
        where = f"remembered in {self.marker}" if self.marker else "not remembered (no writable marker)"
        return (
            f"checked {root}: {', '.join(self.scanned)} ({self.files} files decoded) in "
            f"{self.seconds:.1f} s; {where}"
        )


# ------------------------------------------------------------------------------------------------ plans
def _plan_imagenet(folder: Path, spec: RootSpec) -> tuple[dict, list[Task]]:
    by_split = class_folder_splits(folder, ("train", "val"))
    if spec.synthscenes:  # the captions CMT-MAE's CLIP teacher trains on
        for split in by_split:
            read_captions(folder, split)
    tasks = [("image", str(p), IMAGENET_LAYOUT) for samples in by_split.values() for p, _ in samples]
    return {split: len(samples) for split, samples in by_split.items()}, tasks


def _plan_ade20k(folder: Path, spec: RootSpec) -> tuple[dict, list[Task]]:
    pairs = {
        s: image_label_pairs(folder / "images" / s, folder / "annotations" / s) for s in spec.ade20k_splits
    }
    tasks: list[Task] = []
    label_arg = (spec.ade20k_classes, spec.reduce_zero_label)
    for images, labels in pairs.values():
        for image, label in zip(images, labels):
            tasks += [("image", str(image), ADE20K_LAYOUT), ("label", str(label), label_arg)]
    return {split: len(images) for split, (images, _) in pairs.items()}, tasks


def _plan_coco(folder: Path, spec: RootSpec) -> tuple[dict, list[Task]]:
    counts, tasks = {}, []
    for split in spec.coco_splits:
        images = listed_images(folder, split, spec.coco_classes)
        tasks += [("image", str(path), COCO_LAYOUT) for path in images]
        counts[split] = len(images)
    return counts, tasks


def _plan_davis(folder: Path, spec: RootSpec) -> tuple[dict, list[Task]]:
    others = [s for s in ("train", "val") if s != spec.davis_split]
    splits = [spec.davis_split] + [
        s for s in others if (folder / "ImageSets" / "2017" / f"{s}.txt").is_file()
    ]
    counts, tasks = {}, []
    for split in splits:
        dataset = DavisDataset(folder, split, spec.davis_resolution)  # layout and first-frame ids
        for seq in dataset.sequences:
            for frame, mask in zip(seq.frame_paths, seq.mask_paths):
                tasks += [("image", str(frame), DAVIS_LAYOUT), ("mask", str(mask), seq.num_objects)]
        counts[split] = sum(len(seq) for seq in dataset.sequences)
    return counts, tasks


PLANS: dict[str, Callable[[Path, RootSpec], tuple[dict, list[Task]]]] = {
    "imagenet": _plan_imagenet,
    "ade20k": _plan_ade20k,
    "coco": _plan_coco,
    "davis": _plan_davis,
}


# ---------------------------------------------------------------------------------------------- decoding
def check_file(task: Task) -> str | None:
    """Decode one file and check its values; the one-line problem, or None when it is fine."""
    kind, path, arg = task
    try:
        if kind == "image":
            decode(path, arg)
        elif kind == "label":
            check_label_map(path, *arg)
        elif kind == "mask":
            read_mask(Path(path), arg)
        else:
            raise ValueError(f"unknown check {kind!r}")
    except DatasetError as error:
        return str(error)
    return None


def _check_files(tasks: Sequence[Task], workers: int, desc: str) -> None:
    """Run ``check_file`` on every task (in a pool of ``workers`` processes for large scans); raise the
    first problem in file order."""
    from tqdm import tqdm

    with tqdm(total=len(tasks), desc=desc, unit="file", file=sys.stderr, leave=False, mininterval=1) as bar:
        if workers > 1 and len(tasks) >= POOL_MIN_FILES:
            # fork where there is one (the children need PIL and numpy only), as the SynthScenes writer does
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            with multiprocessing.get_context(method).Pool(workers) as pool:
                for error in pool.imap(check_file, tasks, chunksize=64):  # ordered: the first bad file
                    if error:
                        raise DatasetError(error)
                    bar.update()
        else:
            for task in tasks:
                if error := check_file(task):
                    raise DatasetError(error)
                bar.update()


# ------------------------------------------------------------------------------------------------- cache
def listing_digest(folder: Path) -> str:
    """sha256 over (relative path, size, mtime) of every file under ``folder``, hidden entries left out."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, folder)
        for name in filenames:
            if name.startswith("."):
                continue
            st = os.stat(os.path.join(dirpath, name))
            entries.append(f"{os.path.join(rel, name)}\0{st.st_size}\0{st.st_mtime_ns}\n")
    return hashlib.sha256("".join(sorted(entries)).encode()).hexdigest()


def cache_key(folder: Path, layout: str, spec: RootSpec, manifest_hash: str) -> str:
    identity = {
        "checker": CHECKER_VERSION,
        "layout": layout,
        "params": spec.params(layout),
        "manifest": manifest_hash,
        "files": listing_digest(folder),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def marker_paths(root: Path) -> list[Path]:
    """Where a root's check result is kept: the user's cache, never the dataset folder (a user's ImageNet
    copy is not ours to write into)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mim-suite" / "data-checks"
    name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return [cache / f"{name}.json"]


def read_marker(root: Path) -> dict[str, dict]:
    """The layouts recorded as passed (the root's marker first, then the user cache's)."""
    layouts: dict[str, dict] = {}
    for path in reversed(marker_paths(root)):
        try:
            marker = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(marker, dict) and marker.get("checker") == CHECKER_VERSION:
            layouts.update(marker.get("layouts") or {})
    return layouts


def write_marker(root: Path, layouts: dict[str, dict]) -> Path | None:
    from methods.atomic import atomic_write_text

    text = json.dumps({"checker": CHECKER_VERSION, "layouts": layouts}, indent=1, sort_keys=True) + "\n"
    for path in marker_paths(root):
        try:
            return atomic_write_text(path, text)
        except OSError:
            continue
    return None


# -------------------------------------------------------------------------------------------------- scan
def scan_data_root(
    root: str | os.PathLike,
    spec: RootSpec = RootSpec(),
    *,
    manifest_hash: str = "",
    workers: int = 1,
    layouts: Sequence[str] = LAYOUTS,
) -> ScanResult:
    """Check every layout of ``root`` (see the module docstring) unless its unchanged files passed before.
    A layout in ``spec.required`` must be there; the others are checked when present. Raises DatasetError."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError.at(root, "missing data root", ROOT_LAYOUT)
    start = time.perf_counter()
    result, recorded = ScanResult(), read_marker(root)
    for layout in layouts:
        folder = root / layout
        if not folder.is_dir():
            if layout in spec.required:
                raise DatasetError.at(folder, "missing folder", _LAYOUT_TEXT[layout])
            result.absent.append(layout)
            continue
        key = cache_key(folder, layout, spec, manifest_hash)
        if (recorded.get(layout) or {}).get("key") == key:
            result.counts[layout] = recorded[layout]["counts"]
            result.cached.append(layout)
            continue
        began = time.perf_counter()
        counts, tasks = PLANS[layout](folder, spec)
        _check_files(tasks, workers, f"checking {root.name}/{layout}")
        recorded[layout] = {
            "key": key,
            "counts": counts,
            "files": len(tasks),
            "seconds": round(time.perf_counter() - began, 2),
            "spec": asdict(spec),
        }
        # recorded after each layout: a problem in a later one does not cost the earlier ones their scan
        result.marker = write_marker(root, recorded)
        result.counts[layout] = counts
        result.scanned.append(layout)
        result.files += len(tasks)
    result.seconds = time.perf_counter() - start
    return result
