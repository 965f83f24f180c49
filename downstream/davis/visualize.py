"""One sequence, side by side: its frames, the ground truth and each method's propagated masks (PNG).

Rows are the frames, the ground truth and one row per method; columns are frames spread evenly over the
sequence (the first, given, and the last included). Masks are drawn in the palette's colours on black, as the
indexed PNGs look, so a drifting or vanishing object is visible at a glance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from downstream.datasets.davis import DavisDataset
from downstream.datasets.errors import DatasetError
from downstream.davis.evaluate import RESULTS_LAYOUT, read_prediction
from synthscenes.appearance import voc_palette


def colour(ids: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 RGB image of an id map in the palette's colours (void 255 in its own light grey)."""
    return palette[ids]


def sequence_panel(
    davis_root: str | os.PathLike,
    predictions: Mapping[str, str | os.PathLike],
    out_path: str | os.PathLike,
    sequence: str | None = None,
    split: str = "val",
    num_frames: int = 6,
    title: str | None = None,
) -> Path:
    """Draw ``sequence`` (default: the split's first) with the ground truth and every ``{label: results
    folder}`` of ``predictions`` (each holding ``<sequence>/<frame>.png``); returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset = DavisDataset(davis_root, split)
    if sequence is None:
        seq = dataset.sequences[0]
    elif sequence in dataset.names:
        seq = dataset.sequences[dataset.names.index(sequence)]
    else:
        raise DatasetError.at(Path(davis_root), f"no sequence {sequence!r} in the {split!r} split", "")
    picks = np.unique(np.linspace(0, len(seq) - 1, min(num_frames, len(seq))).round().astype(int))
    palette = np.asarray(voc_palette(), dtype=np.uint8).reshape(-1, 3)
    frames = {i: np.asarray(Image.open(seq.frame_paths[i]).convert("RGB")) for i in picks}
    truth = {i: np.asarray(Image.open(seq.mask_paths[i])) for i in picks}
    rows: list[tuple[str, dict[int, np.ndarray]]] = [("frames", frames)]
    rows.append(("ground truth", {i: colour(truth[i], palette) for i in picks}))
    for label, folder in predictions.items():
        cells = {}
        for i in picks:
            path = Path(folder) / seq.name / f"{seq.frame_paths[i].stem}.png"
            if not path.is_file():
                raise DatasetError.at(path, f"no prediction for {label}", RESULTS_LAYOUT)
            cells[i] = colour(read_prediction(path, truth[i].shape), palette)
        rows.append((label, cells))

    h, w = truth[picks[0]].shape
    cell = 1.6  # inches per frame's longer side
    fig, axes = plt.subplots(
        len(rows),
        len(picks),
        figsize=(len(picks) * cell * max(1.0, w / h) + 1.2, len(rows) * cell * max(1.0, h / w) + 0.6),
        squeeze=False,
    )
    for r, (label, cells) in enumerate(rows):
        for c, i in enumerate(picks):
            ax = axes[r][c]
            ax.imshow(cells[i], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {i}" + (" (given)" if i == 0 else ""), fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(title or f"DAVIS sequence {seq.name}: ground truth and propagated masks", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_size_inches()[1]))  # room for the title
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
