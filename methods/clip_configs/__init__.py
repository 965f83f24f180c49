"""open_clip model configs shipped with the project: the small CLIP teachers of the micro and tiny budgets.

Each teacher's vision tower is built at the student's image and patch size, so the teacher's patch grid equals
the student's (micro: 32 px / patch 4 -> 8x8; tiny: 64 px / patch 8 -> 8x8). The text tower uses open_clip's
bundled BPE tokenizer, so nothing is downloaded. At paper scale the teacher is OpenAI's ViT-B/16, read from a
local file.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).parent
NAMES = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))


def register() -> tuple[str, ...]:
    """Make the shipped configs known to ``open_clip.create_model`` (idempotent); returns their names."""
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)
    return NAMES
