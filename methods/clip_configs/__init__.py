"""open_clip model configs shipped with the project: the small CLIP teachers of the micro and tiny budgets.

Each teacher's vision tower is built at the student's image and patch size, so the teacher's patch grid equals
the student's (micro: 32 px / patch 4 -> 8x8; tiny: 64 px / patch 8 -> 8x8). The text tower uses open_clip's
bundled BPE tokenizer, so nothing is downloaded. At paper scale the teacher is OpenAI's ViT-B/16, read from a
local file.
"""

from __future__ import annotations

import json
from pathlib import Path

CONFIG_DIR = Path(__file__).parent
NAMES = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))


def config_for_grid(img_size: int, patch_size: int) -> str:
    """The open_clip config whose vision tower has this image and patch size (so the teacher's patch grid is
    the student's): a shipped one, or OpenAI's ViT-B-16 at 224 / 16."""
    for name in NAMES:
        vision = json.loads((CONFIG_DIR / f"{name}.json").read_text())["vision_cfg"]
        if (vision["image_size"], vision["patch_size"]) == (img_size, patch_size):
            return name
    if patch_size == 16 and img_size == 224:
        return "ViT-B-16"
    raise ValueError(f"no CLIP config with image size {img_size} and patch size {patch_size}")


def register() -> tuple[str, ...]:
    """Make the shipped configs known to ``open_clip.create_model`` (idempotent); returns their names."""
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)
    return NAMES
