"""Evaluate a folder of predicted indexed PNGs against a DAVIS-2017 root, as the official davis2017-evaluation
toolkit's semi-supervised evaluation does (``evaluation_method.py --task semi-supervised``).

    python -m downstream.davis.evaluate --davis-root DIR --results DIR [--set val]

``--results`` holds one folder per sequence with ``<frame>.png`` id maps (any method's, ours or external).
Writes ``global_results-<set>.csv`` (J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay) and
``per-sequence_results-<set>.csv`` (Sequence, J-Mean, F-Mean; one row per object, ``<sequence>_<id>``) into
the results folder with the toolkit's column names and number format, plus ``results-<set>.json`` with the
full-precision values. The CSVs are always recomputed: unlike the toolkit, which prints "Using precomputed
results..." and reuses CSVs it finds, nothing stale is ever read back.

As the toolkit:
* the first and the last frame of each sequence are left out (the first is given; the last is dropped);
* objects are the ids 1..K of the first annotation; void (255) in the annotation counts as background (the
  toolkit's semi-supervised branch passes no void mask); a prediction may lack objects (their masks are
  empty) but may not hold an id above K;
* J&F-Mean is the mean of the J-Mean and the F-Mean, each a mean over all objects of all sequences.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from downstream.datasets.davis import VOID, DavisDataset, DavisSequence
from downstream.datasets.errors import DatasetError
from downstream.datasets.images import open_array
from downstream.davis.metrics import BOUND_TH, boundary_f, jaccard, statistics
from downstream.progress import progress_bar
from methods.atomic import atomic_write_text

RESULTS_LAYOUT = "<results>/<sequence>/<frame>.png (indexed 'P' or 'L' PNGs of ids 0..K, one per frame)"

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")
#: Record metric names (tables/specs.py TABLE4 reads JF_mean, J_mean, F_mean) of the global columns.
METRIC_KEYS = {
    "J&F-Mean": "JF_mean",
    "J-Mean": "J_mean",
    "J-Recall": "J_recall",
    "J-Decay": "J_decay",
    "F-Mean": "F_mean",
    "F-Recall": "F_recall",
    "F-Decay": "F_decay",
}


@dataclass
class SequenceScores:
    name: str
    frames: list[str]  # the evaluated frames (first and last left out)
    J: np.ndarray  # [K, frames]
    F: np.ndarray  # [K, frames]

    def objects(self) -> list[str]:
        return [f"{self.name}_{i + 1}" for i in range(len(self.J))]


@dataclass
class DavisScores:
    split: str
    sequences: list[SequenceScores] = field(default_factory=list)

    def per_object(self) -> list[dict[str, float | str]]:
        """One row per object: name, and mean / recall / decay of J and F."""
        rows = []
        for seq in self.sequences:
            for name, j, f in zip(seq.objects(), seq.J, seq.F):
                (jm, jr, jd), (fm, fr, fd) = statistics(j), statistics(f)
                rows.append(dict(object=name, JM=jm, JR=jr, JD=jd, FM=fm, FR=fr, FD=fd))
        return rows

    def global_results(self) -> dict[str, float]:
        """The toolkit's global row: means over every object of every sequence."""
        rows = self.per_object()
        if not rows:
            raise ValueError("no objects to evaluate")
        mean = {k: float(np.mean([r[k] for r in rows])) for k in ("JM", "JR", "JD", "FM", "FR", "FD")}
        return {
            "J&F-Mean": (mean["JM"] + mean["FM"]) / 2.0,
            "J-Mean": mean["JM"],
            "J-Recall": mean["JR"],
            "J-Decay": mean["JD"],
            "F-Mean": mean["FM"],
            "F-Recall": mean["FR"],
            "F-Decay": mean["FD"],
        }

    def metrics_percent(self) -> dict[str, float]:
        """The global row as record metrics, in percent (``JF_mean``, ``J_mean`` ...)."""
        return {METRIC_KEYS[k]: 100.0 * v for k, v in self.global_results().items()}


def _object_masks(ids: np.ndarray, num_objects: int) -> np.ndarray:
    """``[T, H, W]`` ids -> ``[K, T, H, W]`` bool, one mask per object id 1..K."""
    return ids[None] == np.arange(1, num_objects + 1, dtype=ids.dtype)[:, None, None, None]


def read_prediction(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """One predicted id map; a missing, unreadable, non-indexed or wrongly sized file is a one-line error."""
    ids, image = open_array(path, RESULTS_LAYOUT)
    if image.mode not in ("P", "L"):
        problem = f"image mode {image.mode!r}, not an indexed ('P' or 'L') PNG"
        raise DatasetError.at(path, problem, RESULTS_LAYOUT)
    if ids.shape != shape:
        problem = f"size {ids.shape[::-1]} (WxH), annotation is {shape[::-1]}"
        raise DatasetError.at(path, problem, RESULTS_LAYOUT)
    return ids


def evaluate_sequence(seq: DavisSequence, results: Path) -> SequenceScores:
    if len(seq) < 3:
        raise DatasetError.at(
            seq.mask_paths[0].parent,
            f"{len(seq)} frames: the evaluation needs at least 3 (the first and the last are left out)",
            RESULTS_LAYOUT,
        )
    gt = seq.masks()  # [T, H, W], checked against 1..K
    gt = np.where(gt == VOID, 0, gt)  # void is background in the semi-supervised evaluation
    frames = [p.stem for p in seq.mask_paths][1:-1]
    gt = gt[1:-1]
    pred = np.stack([read_prediction(results / seq.name / f"{f}.png", gt.shape[1:]) for f in frames])
    if len(frames) and pred.max() > seq.num_objects:
        worst = frames[int(np.argmax(pred.reshape(len(frames), -1).max(axis=1)))]
        raise DatasetError.at(
            results / seq.name / f"{worst}.png",
            f"id {int(pred.max())} is higher than the number of objects ({seq.num_objects}) of the sequence",
            RESULTS_LAYOUT,
        )
    gt_obj, pred_obj = _object_masks(gt, seq.num_objects), _object_masks(pred, seq.num_objects)
    j = jaccard(gt_obj, pred_obj)  # [K, T]
    f = np.stack([boundary_f(g, p, BOUND_TH) for g, p in zip(gt_obj, pred_obj)])
    return SequenceScores(seq.name, frames, j.astype(np.float64), f.reshape(j.shape))


def evaluate_results(
    davis_root: str | os.PathLike,
    results: str | os.PathLike,
    split: str = "val",
    resolution: str = "480p",
    sequences: Iterable[str] | None = None,
    progress: bool = True,
) -> DavisScores:
    """Scores of the predictions under ``results`` for every sequence of ``split`` (or ``sequences``)."""
    results = Path(results)
    if not results.is_dir():
        raise DatasetError.at(results, "missing results folder", RESULTS_LAYOUT)
    dataset = DavisDataset(davis_root, split, resolution)
    chosen = dataset.sequences
    if sequences is not None:
        wanted = list(sequences)
        unknown = sorted(set(wanted) - set(dataset.names))
        if unknown:
            raise DatasetError.at(Path(davis_root), f"sequences {unknown} are not in the {split!r} split", "")
        chosen = [s for s in dataset.sequences if s.name in wanted]
    scores = DavisScores(split)
    for seq in progress_bar(chosen, desc="DAVIS evaluation", unit="seq", enabled=progress):
        scores.sequences.append(evaluate_sequence(seq, results))
    return scores


def write_results(scores: DavisScores, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write the toolkit's two CSVs (its column names, ``%.3f`` as it writes them) and a JSON with the
    full-precision values into ``out_dir``, replacing whatever was there."""
    import pandas as pd

    out = Path(out_dir)
    g = scores.global_results()
    table_g = pd.DataFrame([[g[c] for c in GLOBAL_COLUMNS]], columns=list(GLOBAL_COLUMNS))
    rows = scores.per_object()
    table_seq = pd.DataFrame([(r["object"], r["JM"], r["FM"]) for r in rows], columns=list(SEQUENCE_COLUMNS))
    paths = {
        "global": out / f"global_results-{scores.split}.csv",
        "per_sequence": out / f"per-sequence_results-{scores.split}.csv",
        "json": out / f"results-{scores.split}.json",
    }
    atomic_write_text(paths["global"], table_g.to_csv(index=False, float_format="%.3f"))
    atomic_write_text(paths["per_sequence"], table_seq.to_csv(index=False, float_format="%.3f"))
    full = {
        "global": g,
        "per_object": rows,
        "per_frame": {
            s.name: {"frames": s.frames, "J": s.J.tolist(), "F": s.F.tolist()} for s in scores.sequences
        },
        "bound_th": BOUND_TH,
    }
    atomic_write_text(paths["json"], json.dumps(full, indent=1) + "\n")
    return paths


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--davis-root", required=True, help="DAVIS-2017 root (JPEGImages/, Annotations/ ...)")
    p.add_argument("--results", required=True, help="folder of <sequence>/<frame>.png predictions")
    p.add_argument("--set", default="val", help="split of ImageSets/2017 to evaluate (default: val)")
    p.add_argument("--resolution", default="480p", help="resolution folder (default: 480p)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        scores = evaluate_results(
            args.davis_root, args.results, args.set, args.resolution, progress=not args.no_progress
        )
    except (DatasetError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    paths = write_results(scores, args.results)
    g = scores.global_results()
    print("  ".join(f"{k} {v:.3f}" for k, v in g.items()))
    print(f"wrote {paths['global']} and {paths['per_sequence']}")
    return g


if __name__ == "__main__":
    main()
