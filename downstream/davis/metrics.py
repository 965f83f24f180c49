"""The DAVIS-2017 measures, with the definitions of the official davis2017-evaluation toolkit
(``davis2017/metrics.py`` and ``utils.py`` at ac7c43f; README.md names what each function matches).

* Region similarity J: intersection over union of one object's binary masks; an empty union scores 1.
* Boundary F: the F-measure of boundary precision and recall, a boundary pixel counting as matched when
  the other mask's boundary lies within ``ceil(bound_th * image diagonal)`` pixels (a disk; bound_th =
  0.008, i.e. 8 px at 480x854). Boundaries are the toolkit's ``seg2bmap``: a pixel is on the boundary when
  it differs from its east, south or south-east neighbour. Dilation is OpenCV's ``cv2.dilate`` with the
  same disk the toolkit gets from scikit-image (built here, so the evaluator needs no scikit-image).
* Per object and sequence: mean, recall (fraction of frames scoring above 0.5) and decay (mean of the
  first quarter of the frames minus the mean of the last quarter, quarters as the toolkit cuts them).
"""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np

BOUND_TH = 0.008  # fraction of the image diagonal (the toolkit's default, used by its evaluation)


def jaccard(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of binary masks ``[..., H, W]`` over the last two axes; 1 where both are empty."""
    if gt.shape != pred.shape:
        raise ValueError(f"annotation {gt.shape} and prediction {pred.shape} differ in shape")
    gt, pred = gt.astype(bool), pred.astype(bool)
    inter = np.sum(gt & pred, axis=(-2, -1))
    union = np.sum(gt | pred, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary of a binary mask ``[H, W]``, offset half a pixel towards the origin.

    A pixel is a boundary pixel when it differs from its east, south or south-east neighbour (pixels beyond
    the image count as 0); in the last row only the east neighbour counts, in the last column only the
    south one, and the bottom-right pixel never is one (the toolkit's ``_seg2bmap`` exactly)."""
    seg = mask.astype(bool)
    east, south, southeast = (np.zeros_like(seg) for _ in range(3))
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    southeast[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ east) | (seg ^ south) | (seg ^ southeast)
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """uint8 ``[2r+1, 2r+1]``: 1 where x^2 + y^2 <= r^2 (scikit-image's ``morphology.disk``, strict)."""
    offsets = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(offsets, offsets)
    return (x**2 + y**2 <= radius**2).astype(np.uint8)


def boundary_radius(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Matching tolerance in pixels: ``bound_th`` itself when >= 1, else ceil(bound_th x diagonal)."""
    return int(bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*shape)))


def f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """Boundary F of one frame's binary masks ``[H, W]`` (the toolkit's ``f_measure``).

    No boundary on either side scores 1; a boundary on one side only scores 0."""
    if gt.shape != pred.shape:
        raise ValueError(f"annotation {gt.shape} and prediction {pred.shape} differ in shape")
    kernel = disk(boundary_radius(gt.shape, bound_th))
    pred_b, gt_b = seg2bmap(pred), seg2bmap(gt)
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 or n_gt == 0:
        precision = 1.0 if n_pred == 0 else 0.0
        recall = 1.0 if n_gt == 0 else 0.0
    else:
        # cv2.dilate pads with the value that never wins a max, i.e. no boundary beyond the image
        pred_dil = cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)
        gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)
        precision = np.sum(pred_b & gt_dil) / float(n_pred)
        recall = np.sum(gt_b & pred_dil) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def boundary_f(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> np.ndarray:
    """Boundary F of every frame of binary masks ``[T, H, W]`` -> ``[T]``."""
    if gt.shape != pred.shape:
        raise ValueError(f"annotation {gt.shape} and prediction {pred.shape} differ in shape")
    return np.array([f_measure(g, p, bound_th) for g, p in zip(gt, pred)], dtype=np.float64)


def statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame values, as the toolkit's ``db_statistics``.

    Mean ignores NaNs; recall is the fraction of frames above 0.5 (a NaN frame counts as a miss, since the
    toolkit takes the mean of ``values > 0.5``); decay is the mean of the first of four bins minus the mean
    of the last, with bin edges ``round(linspace(1, n, 5)) - 1`` and each bin including its right edge. The
    toolkit stores the edges as uint8, which wraps past 255 frames; they are kept as integers here (DAVIS
    sequences are at most 104 frames long, where both agree)."""
    values = np.asarray(per_frame, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(values))
        recall = float(np.mean(values > 0.5))
        edges = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64)
        bins = [values[edges[i] : edges[i + 1] + 1] for i in range(4)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay
