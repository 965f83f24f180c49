"""DAVIS-2017 (semi-supervised, trainval): ``davis/JPEGImages/480p/<seq>/%05d.jpg``,
``davis/Annotations/480p/<seq>/%05d.png`` (indexed 'P' PNGs: pixel value = object id, 0 = background,
PASCAL VOC palette as DAVIS uses) and ``davis/ImageSets/2017/{train,val}.txt`` (one sequence per line).

"480p" is the folder name the toolkits expect; the frames themselves are the budget's size.
"""

from __future__ import annotations

from pathlib import Path

from synthscenes.appearance import voc_palette
from synthscenes.config import DatasetConfig
from synthscenes.files import FileRecord, item_rng, jpeg_bytes, png_bytes, write_file
from synthscenes.layouts.common import ItemResult
from synthscenes.scene import RenderedScene, render_scene
from synthscenes.video import Clip, sample_clip

SPLIT_DIRS = {"train": "train", "val": "val"}
PALETTE = voc_palette()


def sequence_name(split: str, index: int) -> str:
    return f"ss-{split}-{index:03d}"


def draw_item(cfg: DatasetConfig, split: str, index: int) -> tuple[Clip, list[RenderedScene]]:
    """(clip, rendering of every frame) of one sequence: what ``write_item`` writes."""
    layout = cfg.davis
    rng = item_rng(cfg.seed, "davis", split, index)
    clip = sample_clip(
        rng,
        layout.image_size,
        layout.frames,
        layout.objects,
        layout.radius,
        layout.lookalike,
        layout.distractors,
    )
    return clip, [render_scene(scene) for scene in clip.frames]


def write_item(cfg: DatasetConfig, split: str, index: int, root: Path) -> ItemResult:
    clip, renderings = draw_item(cfg, split, index)
    seq, key = sequence_name(split, index), f"davis/{split}"
    files = []
    for t, rendered in enumerate(renderings):
        ids = clip.id_map(rendered.instance_map)
        files.append(
            write_file(root, f"davis/JPEGImages/480p/{seq}/{t:05d}.jpg", jpeg_bytes(rendered.image), key)
        )
        files.append(
            write_file(root, f"davis/Annotations/480p/{seq}/{t:05d}.png", png_bytes(ids, PALETTE), key)
        )
    return ItemResult(files, {"sequence": seq, "num_objects": clip.num_tracked})


def write_index(cfg: DatasetConfig, split: str, items: list[ItemResult], root: Path) -> list[FileRecord]:
    data = "".join(item.meta["sequence"] + "\n" for item in items).encode()
    return [write_file(root, f"davis/ImageSets/2017/{split}.txt", data, f"davis/{split}")]
