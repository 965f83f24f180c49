"""DAVIS-2017 semi-supervised video object segmentation by label propagation on a frozen encoder, as DINO's
``eval_video_segmentation.py``, then the official metrics.

Per sequence: every frame is resized (short side ``short_side``, long side floored to a multiple of
``long_side_multiple``) and normalised with DINO's constants; the frozen encoder (built for the frame grid,
its position embedding interpolated by the strict loader's declared transform) gives the last block's patch
tokens after the final norm; the first annotation is propagated frame by frame (``propagation.py``), each
frame's soft labels are turned into ids at the original size, and written as indexed PNGs in the DAVIS
layout. The folder of PNGs is then scored by ``evaluate.py``. The recipe is the budget's ``davis`` section;
each of DINO's details is one of its keys (README.md lists them with DINO's value).

    from downstream.davis import run_davis
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from downstream import recipe as recipes
from downstream.datasets.davis import DavisDataset, DavisSequence
from downstream.datasets.errors import DAVIS_LAYOUT
from downstream.datasets.images import open_rgb
from downstream.davis.evaluate import evaluate_results, write_results
from downstream.davis.propagation import (
    LabelPropagator,
    PropagationConfig,
    Window,
    build_window,
    first_frame_labels,
    labels_to_ids,
)
from downstream.in1k.models import encoder_arch
from downstream.progress import progress_bar
from downstream.recipe import RecipeError, Section
from downstream.result import ProtocolInputs, ProtocolResult
from methods.backbone import ViT, build_vit
from methods.encoder_file import load_encoder, read_encoder
from synthscenes.appearance import voc_palette

PROTOCOL = "davis"


def _check_section(r: dict[str, Any], recipe: str, where: str) -> str:
    """What the key-by-key check leaves: three-channel normalisation, and the propagation's own checks."""
    for key in ("mean", "std"):
        if len(r[key]) != 3:
            raise RecipeError(f"{where}: davis.{key} = {r[key]!r} must hold 3 values (R, G, B)")
    r["mean"], r["std"] = [float(v) for v in r["mean"]], [float(v) for v in r["std"]]
    try:
        propagation_config(r)
    except ValueError as e:
        raise RecipeError(f"{where}: davis section: {e}") from None
    return recipe


#: What a budget's ``davis`` section holds. MAE's paper has no DAVIS protocol, so the section as written (the
#: shared default recipe) is DINO's procedure.
SECTION = Section(
    keys=(
        "split",
        "resolution",
        "mean",
        "std",
        "temperature",
        "window_radius",
        "n_last_frames",
        "soft_context",
        "norm_mask",
    ),
    positive=("short_side", "long_side_multiple", "topk", "feature_batch_size"),
    # keys whose value selects one implemented behaviour: the values this code implements (DINO's first)
    choices={
        "frame_resize": ("bilinear",),  # cv2.resize's default (INTER_LINEAR), as DINO's read_frame
        "pos_embed": ("interpolate",),  # the loader's declared bicubic resampling to the frame grid
        "features": ("last_block_normed",),  # last block after the final norm, CLS dropped
        "l2_normalize": (True,),  # cosine affinities
        "first_frame_downsample": ("nearest",),  # PIL NEAREST of the first annotation to the grid
        "label_upsample": ("bilinear", "nearest"),  # x patch size, align_corners=False
        "output_resize": ("nearest",),  # PIL NEAREST back to the original frame size
    },
    check=_check_section,
)


def propagation_config(r: Mapping[str, Any]) -> PropagationConfig:
    return PropagationConfig(
        temperature=float(r["temperature"]),
        topk=int(r["topk"]),
        window_radius=int(r["window_radius"]),
        n_last_frames=int(r["n_last_frames"]),
        soft_context=bool(r["soft_context"]),
    )


# ---------------------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------------------
def frame_size(height: int, width: int, short_side: int, multiple: int) -> tuple[int, int]:
    """(rows, cols) DINO resizes a frame to: the short side to ``short_side``, the long side to the same
    aspect ratio floored to a multiple of ``multiple`` (480x854 -> 480x832). A square frame keeps
    ``short_side`` rows and gets its columns floored, as DINO's ``read_frame``."""
    if height > width:
        return int((short_side * height / width) // multiple * multiple), short_side
    return short_side, int((short_side * width / height) // multiple * multiple)


def preprocess_frames(
    frames: np.ndarray, size: tuple[int, int], mean: list[float], std: list[float]
) -> torch.Tensor:
    """uint8 RGB ``[T, H, W, 3]`` -> float ``[T, 3, rows, cols]``: cv2 bilinear resize of the uint8 frame,
    /255, minus mean, over std (DINO's order of operations, in float32)."""
    rows, cols = size
    resized = np.stack([cv2.resize(f, (cols, rows)) for f in frames]).astype(np.float32) / 255.0
    x = torch.from_numpy(resized).permute(0, 3, 1, 2)
    mean_t = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    std_t = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    return ((x - mean_t) / std_t).contiguous()


class FrameEncoder:
    """The frozen encoder, built once per frame size (the position embedding resampled by the strict
    loader's declared transform); ``features`` returns the last block's normed patch tokens."""

    def __init__(self, encoder: str | os.PathLike, device: torch.device) -> None:
        self.payload = read_encoder(encoder)
        self.arch = encoder_arch(self.payload)
        self.device = device
        self.models: dict[tuple[int, int], ViT] = {}
        self.reports: dict[tuple[int, int], dict[str, Any]] = {}

    @property
    def patch_size(self) -> int:
        return int(self.arch["patch_size"])

    def model(self, size: tuple[int, int]) -> ViT:
        if size not in self.models:
            vit = build_vit(self.arch, img_size=size)
            report = load_encoder(self.payload, vit, interpolate_pos_embed=True)
            self.models[size] = vit.requires_grad_(False).eval().to(self.device)
            self.reports[size] = report.to_dict()
        return self.models[size]

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, rows, cols]`` -> ``[B, rows/p * cols/p, D]`` (CLS dropped), on the encoder's device."""
        tokens = self.model(tuple(x.shape[-2:])).forward_features(x.to(self.device))
        return tokens[:, 1:].float()


# ---------------------------------------------------------------------------------------------------------
# One sequence, one dataset
# ---------------------------------------------------------------------------------------------------------
def _frame_features(
    seq: DavisSequence, enc: FrameEncoder, r: Mapping[str, Any], size: tuple[int, int]
) -> Iterator[torch.Tensor]:
    """The features of every frame, ``[hw, D]`` each, encoded ``feature_batch_size`` frames at a time (frames
    are read as they are needed, so a long sequence is never held in memory whole)."""
    paths, batch = seq.frame_paths, r["feature_batch_size"]
    for start in range(0, len(paths), batch):
        frames = np.stack([np.asarray(open_rgb(p, DAVIS_LAYOUT)) for p in paths[start : start + batch]])
        yield from enc.features(preprocess_frames(frames, size, r["mean"], r["std"]))


def propagate_sequence(
    seq: DavisSequence,
    enc: FrameEncoder,
    r: Mapping[str, Any],
    out_dir: Path,
    windows: dict[tuple[int, int], Window],
    palette: list[int],
) -> dict[str, Any]:
    """Segment one sequence from its first annotation; writes ``out_dir/<seq>/<frame>.png``."""
    first = seq.first_mask()
    height, width = first.shape
    size = frame_size(height, width, r["short_side"], r["long_side_multiple"])
    p = enc.patch_size
    if size[0] % p or size[1] % p:
        raise RecipeError(
            f"davis.short_side / long_side_multiple give {size[0]}x{size[1]} frames for {seq.name}, "
            f"not a multiple of the patch size {p}"
        )
    grid = (size[0] // p, size[1] // p)
    cfg = propagation_config(r)
    if grid not in windows:
        windows[grid] = build_window(*grid, cfg.window_radius, enc.device)
    folder = out_dir / seq.name
    folder.mkdir(parents=True)
    # DINO writes the given first annotation unchanged as the first frame's result
    write_png(folder / f"{seq.frame_paths[0].stem}.png", first, palette)

    features = _frame_features(seq, enc, r, size)
    labels = first_frame_labels(first, grid, seq.num_objects)
    prop = LabelPropagator(next(features), labels, grid, cfg, windows[grid])
    start = time.perf_counter()
    for path, feats in zip(seq.frame_paths[1:], features):
        soft = prop.step(feats)
        ids = labels_to_ids(soft, grid, p, (height, width), r["label_upsample"], r["norm_mask"])
        write_png(folder / f"{path.stem}.png", ids, palette)
    return dict(frames=len(seq), grid=list(grid), size=list(size), propagate_s=time.perf_counter() - start)


def write_png(path: Path, ids: np.ndarray, palette: list[int]) -> None:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint8))
    image.putpalette(palette)
    image.save(path)


def fresh_dir(path: Path) -> Path:
    """An empty folder at ``path``: results are always written anew, never mixed with an earlier run's."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run_davis(
    inputs: ProtocolInputs, *, sequences: list[str] | None = None, frames: Any = None
) -> dict[str, Any]:
    """Label propagation on every sequence of the recipe's split, then the official metrics.

    Predictions go to ``work_dir/results/<sequence>/<frame>.png`` (the folder is emptied first) with the
    toolkit's CSVs beside them. ``seed`` is recorded only (the protocol has no randomness). ``frames``
    replaces the encoder file's ``FrameEncoder`` by another feature source with its interface (the colour
    histogram reference, ``colour_histogram.py``). Returns
    ``protocol``, ``seed``, ``metrics`` (J&F, J and F mean / recall / decay, in %), ``recipe``,
    ``load_report``, ``timings``, ``data``, ``results_dir`` and ``provenance_inputs``, as the IN-1K
    protocols."""
    encoder_path, budget_cfg, davis_root, work_dir, seed, recipe = inputs.where()
    device, progress = inputs.device, inputs.progress
    start = time.perf_counter()
    r = recipes.resolve_recipe(budget_cfg, PROTOCOL, recipe)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dataset = DavisDataset(davis_root, r["split"], r["resolution"])
    chosen = [s for s in dataset.sequences if sequences is None or s.name in sequences]
    enc = FrameEncoder(encoder_path, device) if frames is None else frames
    results = fresh_dir(Path(work_dir) / "results")
    windows: dict[tuple[int, int], Window] = {}
    palette = voc_palette()
    per_sequence = {}
    for seq in progress_bar(chosen, desc="DAVIS propagation", unit="seq", enabled=progress):
        per_sequence[seq.name] = propagate_sequence(seq, enc, r, results, windows, palette)
    segment_s = time.perf_counter() - start
    names = [s.name for s in chosen]
    scores = evaluate_results(davis_root, results, r["split"], r["resolution"], names, progress=False)
    write_results(scores, results)
    metrics = scores.metrics_percent()
    num_frames = sum(v["frames"] for v in per_sequence.values())
    first_size = next(iter(enc.reports))
    report = dict(enc.reports[first_size])
    report["transforms_per_frame_size"] = {f"{h}x{w}": x["transforms"] for (h, w), x in enc.reports.items()}
    return ProtocolResult(
        PROTOCOL,
        seed,
        metrics,
        recipe=r,
        load_report=report,
        timings=dict(
            segment_s=segment_s,
            propagate_s=sum(v["propagate_s"] for v in per_sequence.values()),
            evaluate_s=time.perf_counter() - start - segment_s,
            total_s=time.perf_counter() - start,
        ),
        data=dict(
            root=str(davis_root),
            split=r["split"],
            num_sequences=len(chosen),
            num_frames=num_frames,
            num_objects=sum(s.num_objects for s in chosen),
            sequences=per_sequence,
        ),
        world_size=1,
        batch_size=r["feature_batch_size"],
        precision="fp32",
        device=str(device),
        protocol_detail=(
            f"DAVIS: DINO label propagation (window ±{r['window_radius']} patches, top-{r['topk']}, "
            f"first + {r['n_last_frames']} frames, T {r['temperature']}, short side {r['short_side']})"
        ),
        extra=dict(results_dir=str(results)),
    ).to_dict()
