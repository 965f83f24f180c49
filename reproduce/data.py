"""Write the embedded SynthScenes dataset for a budget (or reuse it when it is already there).

    python reproduce/data.py --budget tiny [--out DIR] [--workers 2] [--force]

Reads the budget's ``data`` section (``reproduce/budgets/<budget>.py``), writes ImageNet class folders,
ADE20K (mmseg layout), COCO instances and DAVIS-2017 under one root, and prints the manifest hash that
runs record as their dataset provenance. Same seed, same bytes. If the root already holds a dataset with
the same configuration whose files all hash to its manifest, nothing is written.

``--out DIR`` is how a budget's dataset goes into another folder: the table scripts and pretrain.py generate
only into the budget's own ``data.root`` and, given ``--data-root DIR``, read DIR's dataset or stop with one
line (``check_given_root``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from synthscenes.config import DatasetConfig, load_config  # noqa: E402
from synthscenes.generate import ensure, generate, total_items  # noqa: E402

BUDGETS = ("micro", "tiny")
SYNTHSCENES_KEYS = ("imagenet", "ade20k", "coco", "davis")


def _resolve(data: dict[str, Any], out: str | Path | None, default: str) -> DatasetConfig:
    root = Path(out) if out is not None else Path(data.get("root") or default)
    return load_config(data, root=str(root if root.is_absolute() else REPO / root))


def budget_config(budget: str, out: str | Path | None = None) -> DatasetConfig:
    """The dataset configuration of a budget, its root resolved against the repository root."""
    from reproduce.budget import load_budget

    return _resolve(load_budget(budget).data.to_dict(), out, f"data/synthscenes-{budget}")


def is_synthscenes(data: Any) -> bool:
    """Whether a budget's ``data`` section describes a SynthScenes dataset (else: real data under a root)."""
    return all(key in data for key in SYNTHSCENES_KEYS)


def check_given_root(cfg: Any, root: str | Path) -> None:
    """Refuse ``--data-root DIR`` on a SynthScenes budget that names its own root (micro, tiny) unless DIR
    already holds that budget's dataset: a missing or mistyped folder is a one-line DatasetError, never a
    dataset generated there without a word. ``python reproduce/data.py --budget NAME --out DIR`` writes one
    into another folder on purpose. Real-data budgets, and SynthScenes budgets without a root of their own
    (``data.root=None``: the golden traces' budget, written where its caller says), are not affected."""
    from downstream.datasets.errors import DatasetError
    from synthscenes.manifest import MANIFEST_NAME, read_manifest, same_config

    data = cfg["data"]
    data = data.to_dict() if hasattr(data, "to_dict") else dict(data)
    if not is_synthscenes(data) or not data.get("root"):
        return
    own = _resolve(data, None, str(data["root"]))
    root = Path(root).expanduser()
    if root.resolve() == Path(own.root).resolve():
        return
    budget = cfg.get("budget", own.name)
    expected = (
        f"budget {budget}'s SynthScenes dataset {own.name}, written there by "
        f"`python reproduce/data.py --budget {budget} --out {root}`; without --data-root the budget "
        f"uses {own.root}"
    )
    if not root.is_dir():
        raise DatasetError.at(root, "no such folder", expected)
    manifest = read_manifest(root)
    if manifest is None:
        raise DatasetError.at(root, f"holds no SynthScenes dataset (no {MANIFEST_NAME})", expected)
    if not same_config(manifest, _resolve(data, root, str(data["root"]))):
        raise DatasetError.at(
            root, f"holds SynthScenes dataset {manifest.get('name')!r} of another configuration", expected
        )


def ensure_dataset(cfg: Any, workers: int = 2) -> tuple[Path, str]:
    """(class-folder root, dataset hash) for a loaded budget (an mmengine Config with a ``data`` section).

    SynthScenes budgets: the dataset is written (or reused) first; the hash is its manifest's sha256.
    Real-data budgets (``data.root`` set, e.g. by ``--data-root``): the class-folder tree of
    ``data.classification.train`` is checked (layout only, not every image) and the hash is
    ``"listing:<sha256>"`` over the relative paths and sizes of its files, since hashing ImageNet's content
    on every run would cost more than a small run.
    """
    data = cfg["data"]
    data = data.to_dict() if hasattr(data, "to_dict") else dict(data)
    if not is_synthscenes(data):
        return _real_class_folders(data)
    dataset = _resolve(data, None, f"data/{data.get('name', 'synthscenes')}")
    from tqdm import tqdm

    with tqdm(
        total=total_items(dataset), desc=dataset.name, unit="item", file=sys.stderr, leave=False
    ) as bar:
        manifest, _ = ensure(dataset, dataset.root, workers, bar.update)
    return Path(dataset.root) / "imagenet", manifest["sha256"]


def _real_class_folders(data: dict[str, Any]) -> tuple[Path, str]:
    from downstream.datasets.errors import IMAGENET_LAYOUT, DatasetError
    from downstream.datasets.imagenet import check_imagenet_root
    from synthscenes.manifest import listing_hash

    if not data.get("root"):
        raise DatasetError.at(
            "data.root", "this budget reads real data: pass --data-root DIR", IMAGENET_LAYOUT
        )
    train = Path(data["root"]) / (data.get("classification") or {}).get("train", "imagenet/train")
    root = train.parent
    check_imagenet_root(root, splits=(train.name,))
    sizes = {p.relative_to(root).as_posix(): str(p.stat().st_size) for p in train.rglob("*") if p.is_file()}
    return root, "listing:" + listing_hash(sizes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", choices=BUDGETS, required=True)
    parser.add_argument("--out", help="dataset root (default: the budget's data.root, under the repository)")
    parser.add_argument("--workers", type=int, default=2, help="processes (1 = in this process)")
    parser.add_argument(
        "--force", action="store_true", help="regenerate even if an identical dataset is there"
    )
    args = parser.parse_args(argv)

    cfg = budget_config(args.budget, args.out)
    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(total=total_items(cfg), desc=f"synthscenes-{args.budget}", unit="item", file=sys.stderr) as bar:
        if args.force:
            manifest, created = generate(cfg, cfg.root, args.workers, bar.update), True
        else:
            manifest, created = ensure(cfg, cfg.root, args.workers, bar.update)
    verb = "wrote" if created else "up to date:"
    print(f"{verb} {cfg.root} ({len(manifest['files'])} files, {time.perf_counter() - start:.1f} s)")
    print(f"manifest sha256 {manifest['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
