"""The dataset configuration: what a budget's ``data = dict(...)`` holds, with defaults, validated.

Only the keys a budget file is likely to change are required there (image size, item counts, objects per
scene); the geometry ranges have defaults here. The resolved configuration, minus the output root, is the
dataset's fingerprint: same fingerprint and same generator version give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from synthscenes.shapes import SHAPES

# Bump whenever rendering or writing changes any output byte: an existing dataset with another version
# is then regenerated instead of reused.
GENERATOR_VERSION = "3"  # 3: captions name the largest object first

LAYOUTS: tuple[str, ...] = ("imagenet", "ade20k", "coco", "davis")
SPLITS: tuple[str, ...] = ("train", "val")

# Circumradius ranges as fractions of the image side. Classification: the largest object from
# ``largest_radius``, the others from ``radius`` capped by scene.SMALLER_RATIO. Detection objects are kept
# big (at 64 px: 18-41 px across) so the detector's smallest anchors can match them.
_DEFAULT_RADIUS = {
    "imagenet": (0.09, 0.3),
    "ade20k": (0.1, 0.3),
    "coco": (0.14, 0.32),
    "davis": (0.12, 0.24),
}
_DEFAULT_LARGEST_RADIUS = (0.22, 0.34)
#: LayoutConfig keys added after generator version 3, with the default that leaves its bytes unchanged
_LATER_KEYS = {"lookalike": False, "distractors": (0, 0), "shapes": None}
#: layouts whose objects may be drawn from a subset of the shape types (``shapes``)
_SHAPE_SUBSET_LAYOUTS = ("ade20k", "coco")


@dataclass(frozen=True)
class LayoutConfig:
    image_size: int
    train: int
    val: int
    objects: tuple[int, int]
    radius: tuple[float, float]
    largest_radius: tuple[float, float] | None = None  # classification only
    frames: int = 1  # video only
    # video only: every object of a clip alike (colour, shading), heading for the middle (video.sample_clip)
    lookalike: bool = False
    distractors: tuple[int, int] = (0, 0)  # video only: untracked objects like the tracked ones, per clip
    # dense layouts only: the shape types objects are drawn from (None: all of SHAPES). The class ids stay
    # SHAPES' (1 + index), so the dataset classes and checks are unchanged and the others simply never occur.
    shapes: tuple[str, ...] | None = None

    def count(self, split: str) -> int:
        return {"train": self.train, "val": self.val}[split]


@dataclass(frozen=True)
class DatasetConfig:
    seed: int
    root: str
    imagenet: LayoutConfig
    ade20k: LayoutConfig
    coco: LayoutConfig
    davis: LayoutConfig
    name: str = field(default="synthscenes")

    def layout(self, name: str) -> LayoutConfig:
        return getattr(self, name)

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines the bytes written (the root does not)."""
        resolved = asdict(self)
        resolved.pop("root")
        resolved.pop("name")
        for layout in LAYOUTS:  # keys added after version 3 count only when set, so older datasets are reused
            for key, default in _LATER_KEYS.items():
                if resolved[layout][key] == default:
                    del resolved[layout][key]
        return {"generator_version": GENERATOR_VERSION, **resolved}

    def fingerprint_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.fingerprint()).encode()).hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _pair(value: Any, key: str, kind: type) -> tuple:
    if not isinstance(value, list | tuple) or len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"data.{key} must be a pair (low, high) with low <= high, got {value!r}")
    return (kind(value[0]), kind(value[1]))


def _shapes(value: Any, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if name not in _SHAPE_SUBSET_LAYOUTS:
        raise ValueError(
            f"data.{name}.shapes: a key of the {' and '.join(_SHAPE_SUBSET_LAYOUTS)} layouts only"
        )
    shapes = tuple(value) if isinstance(value, list | tuple) else ()
    if not shapes or len(set(shapes)) != len(shapes) or set(shapes) - set(SHAPES):
        raise ValueError(
            f"data.{name}.shapes: expected distinct shape names from {', '.join(SHAPES)}, got {value!r}"
        )
    return tuple(str(v) for v in shapes)


def _layout(name: str, cfg: Mapping[str, Any]) -> LayoutConfig:
    known = {f.name for f in fields(LayoutConfig)}
    unknown = set(cfg) - known
    if unknown:
        raise ValueError(f"data.{name}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    missing = {"image_size", "train", "val", "objects"} - set(cfg)
    if missing:
        raise ValueError(f"data.{name}: missing keys {sorted(missing)}")
    largest = cfg.get("largest_radius", _DEFAULT_LARGEST_RADIUS if name == "imagenet" else None)
    layout = LayoutConfig(
        image_size=int(cfg["image_size"]),
        train=int(cfg["train"]),
        val=int(cfg["val"]),
        objects=_pair(cfg["objects"], f"{name}.objects", int),
        radius=_pair(cfg.get("radius", _DEFAULT_RADIUS[name]), f"{name}.radius", float),
        largest_radius=None if largest is None else _pair(largest, f"{name}.largest_radius", float),
        frames=int(cfg.get("frames", 1)),
        lookalike=bool(cfg.get("lookalike", False)),
        distractors=_pair(cfg.get("distractors", (0, 0)), f"{name}.distractors", int),
        shapes=_shapes(cfg.get("shapes"), name),
    )
    if name != "davis" and (layout.lookalike or layout.distractors != (0, 0)):
        raise ValueError(f"data.{name}: lookalike and distractors are keys of the video layout (davis) only")
    if layout.objects[0] < 1 or layout.image_size < 8 or min(layout.train, layout.val) < 0:
        raise ValueError(f"data.{name}: need objects >= 1, image_size >= 8 and non-negative counts")
    if name == "imagenet" and layout.objects[0] < 2:
        # One object per image would let a caption name the class outright.
        raise ValueError(
            "data.imagenet.objects: the minimum must be >= 2 (captions would give the label away)"
        )
    return layout


def load_config(data: Mapping[str, Any], root: str | None = None) -> DatasetConfig:
    """Build a ``DatasetConfig`` from a budget's ``data`` dict (an mmengine ConfigDict is fine)."""
    data = dict(data)
    missing = {"seed", *LAYOUTS} - set(data)
    if missing:
        raise ValueError(f"data: missing keys {sorted(missing)}")
    unknown = set(data) - {"seed", "root", "name", *LAYOUTS}
    if unknown:
        raise ValueError(f"data: unknown keys {sorted(unknown)}")
    return DatasetConfig(
        seed=int(data["seed"]),
        root=str(root if root is not None else data.get("root", "data/synthscenes")),
        name=str(data.get("name", "synthscenes")),
        **{name: _layout(name, dict(data[name])) for name in LAYOUTS},
    )
