"""Label propagation on frozen patch features, as DINO's ``eval_video_segmentation.py`` does it, without its
dense work.

DINO's procedure, for each target frame (its ``label_propagation``):

1. affinity ``exp(cos / T)`` between every target patch and every patch of every context frame (the first
   frame plus the ``n_last_frames`` most recent ones), with T = 0.1 and L2-normalised features;
2. affinities outside a square window of ±``window_radius`` patches (rows and columns) around the target
   patch are zeroed; radius 0 means no window;
3. per target patch only the ``topk`` largest affinities over *all* context frames survive; they are
   normalised to sum to one, and the target's label vector is their weighted sum of the sources' labels
   (one-hot for the first frame, the soft propagated vectors for the others).

DINO builds the window as a dense ``[hw, hw]`` mask with four nested Python loops (4.5 s for a 480p grid on
one CPU thread), then per frame computes every affinity densely, multiplies by the mask, takes the top-k
along a strided axis and multiplies a dense ``[C, n*hw] x [n*hw, hw]`` matrix. Here the window is built
with tensor operations once per grid, and the target grid is cut into tiles of about ``radius x radius``
patches: each tile's similarities are computed only against the context patches its window can reach (its
rectangle grown by the radius), the top-k is taken on cosines (exp is monotonic, so the same entries
survive) and only k weights per target are exponentiated and gathered. The result is the same up to float
summation order (parity test: 1e-5 on DINO's own code); the one difference is that DINO keeps every entry
tied with the k-th value, this keeps exactly k (ties do not occur between distinct float features).
Every operation is a torch op on the features' device, so it runs on CPU or GPU alike.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


@dataclass(frozen=True)
class PropagationConfig:
    temperature: float = 0.1  # affinity exp(cos / temperature)
    topk: int = 5  # sources kept per target patch, over all context frames together
    window_radius: int = 12  # ±patches in row and column; 0 = no window (as DINO's size_mask_neighborhood)
    n_last_frames: int = 7  # recent frames in the context besides the first one
    soft_context: bool = True  # context holds soft propagated labels (DINO); False: their argmax one-hot

    def __post_init__(self) -> None:
        checks = {
            "temperature": self.temperature > 0,
            "topk": self.topk >= 1,
            "window_radius": self.window_radius >= 0,
            "n_last_frames": self.n_last_frames >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(f"PropagationConfig: invalid {values}")


# ---------------------------------------------------------------------------------------------------------
# The window, built once per grid
# ---------------------------------------------------------------------------------------------------------
def window_mask(h: int, w: int, radius: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``[h*w, h*w]`` bool, True where source patch (column) is within ±radius rows and columns of target
    patch (row); all True for radius 0. Row-major patch order, as the ViT's tokens."""
    rows = torch.arange(h, device=device).repeat_interleave(w)
    cols = torch.arange(w, device=device).repeat(h)
    if radius == 0:
        return torch.ones(h * w, h * w, dtype=torch.bool, device=device)
    near_rows = (rows[:, None] - rows[None, :]).abs() <= radius
    return near_rows & ((cols[:, None] - cols[None, :]).abs() <= radius)


@dataclass(frozen=True)
class WindowTile:
    """A rectangle of target patches and the rectangle of source patches their windows reach."""

    targets: torch.Tensor  # [T] flat indices of the tile's target patches
    rows: tuple[int, int]  # source rectangle [r0, r1) x [c0, c1): the tile grown by the radius, clipped
    cols: tuple[int, int]
    sources: torch.Tensor  # [S] flat indices of the source rectangle, row-major
    outside: torch.Tensor  # [T, S] bool, True where a source is outside the target's window


@dataclass(frozen=True)
class Window:
    h: int
    w: int
    radius: int
    tiles: tuple[WindowTile, ...]


def build_window(
    h: int, w: int, radius: int, device: torch.device | str | None = None, tile: int | None = None
) -> Window:
    """Cut an ``h x w`` grid into tiles of ``tile x tile`` target patches (default: the radius, the size at
    which a tile's source rectangle stops shrinking much; a 480p grid gets 15 tiles) with their windows.

    A Python loop runs over tiles, never over patches; without a window (radius 0, or one that covers the
    grid) there is one tile and the affinities are dense, as DINO's."""
    full = radius == 0 or (radius >= h - 1 and radius >= w - 1)
    size = max(h, w) if full else max(1, tile or radius)
    mask = window_mask(h, w, 0 if full else radius, device)
    grid = torch.arange(h * w, device=device).view(h, w)
    reach = 0 if full else radius
    tiles = []
    for r0 in range(0, h, size):
        for c0 in range(0, w, size):
            r1, c1 = min(r0 + size, h), min(c0 + size, w)
            rows = (max(r0 - reach, 0), min(r1 + reach, h))
            cols = (max(c0 - reach, 0), min(c1 + reach, w))
            targets = grid[r0:r1, c0:c1].reshape(-1)
            sources = grid[rows[0] : rows[1], cols[0] : cols[1]].reshape(-1)
            tiles.append(WindowTile(targets, rows, cols, sources, ~mask[targets][:, sources]))
    return Window(h, w, radius, tuple(tiles))


# ---------------------------------------------------------------------------------------------------------
# Propagation
# ---------------------------------------------------------------------------------------------------------
def first_frame_labels(ids: np.ndarray, grid: tuple[int, int], num_objects: int) -> torch.Tensor:
    """The first annotation as one-hot labels on the patch grid, ``[h*w, K + 1]``.

    As DINO's ``read_seg``: the full-resolution id map is resized to the grid with PIL's NEAREST, straight
    from the original size. Void (255) gets an all-zero vector: it propagates no label (DINO would make it a
    256th class and could write id 255, which the toolkit rejects)."""
    h, w = grid
    small = np.asarray(Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint8)).resize((w, h), 0))
    small = torch.from_numpy(small.astype(np.int64)).reshape(-1)
    labels = torch.zeros(h * w, num_objects + 1)
    valid = small <= num_objects
    labels[valid.nonzero().squeeze(1), small[valid]] = 1.0
    return labels


class LabelPropagator:
    """The context of one video (first frame + the ``n_last_frames`` most recent ones) and the propagation
    of its labels to the next frame.

    ``step(features)`` propagates to a target frame and pushes it into the context (oldest recent frame out),
    as DINO's queue does. Features ``[h*w, D]`` (row-major patch tokens); labels ``[h*w, C]``.
    """

    def __init__(
        self,
        first_features: torch.Tensor,
        first_labels: torch.Tensor,
        grid: tuple[int, int],
        cfg: PropagationConfig,
        window: Window | None = None,
    ) -> None:
        self.cfg = cfg
        self.h, self.w = grid
        device = first_features.device
        self.window = window or build_window(self.h, self.w, cfg.window_radius, device)
        if (self.window.h, self.window.w) != grid:
            raise ValueError(f"window built for {self.window.h}x{self.window.w}, grid is {grid}")
        self.first = (F.normalize(first_features.float(), dim=1), first_labels.to(device).float())
        self.recent: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=cfg.n_last_frames)

    @torch.no_grad()
    def propagate(self, features: torch.Tensor) -> torch.Tensor:
        """Soft labels ``[h*w, C]`` of a target frame from the current context (the context is unchanged)."""
        cfg, hw = self.cfg, self.h * self.w
        target = F.normalize(features.float(), dim=1)
        context = [self.first, *self.recent]
        n = len(context)
        feats = torch.stack([f for f, _ in context]).view(n, self.h, self.w, -1)  # [n, h, w, D]
        labels = torch.cat([lab for _, lab in context])  # [n*hw, C]
        out = labels.new_empty(hw, labels.shape[1])
        for tile in self.window.tiles:
            (r0, r1), (c0, c1) = tile.rows, tile.cols
            s = tile.sources.numel()
            region = feats[:, r0:r1, c0:c1].reshape(n * s, -1)  # [n*S, D], frame-major
            sim = target[tile.targets] @ region.T  # [T, n*S] cosines
            sim.view(-1, n, s).masked_fill_(tile.outside[:, None, :], float("-inf"))
            k = min(cfg.topk, n * s)
            top, idx = sim.topk(k, dim=1)  # the same entries as DINO's top-k on exp(cos / T)
            weight = torch.exp(top / cfg.temperature)
            weight = weight / weight.sum(dim=1, keepdim=True)
            source = (idx // s) * hw + tile.sources[idx % s]  # flat index into the context's labels
            out[tile.targets] = (weight.unsqueeze(-1) * labels[source]).sum(dim=1)
        return out

    def push(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        if self.cfg.n_last_frames == 0:
            return
        if not self.cfg.soft_context:
            labels = F.one_hot(labels.argmax(dim=1), labels.shape[1]).to(labels.dtype)
        self.recent.append((F.normalize(features.float(), dim=1), labels))

    def step(self, features: torch.Tensor) -> torch.Tensor:
        labels = self.propagate(features)
        self.push(features, labels)
        return labels


# ---------------------------------------------------------------------------------------------------------
# From soft labels at patch resolution to an id map at the frame's original size
# ---------------------------------------------------------------------------------------------------------
def norm_mask(labels: torch.Tensor) -> torch.Tensor:
    """DINO's ``norm_mask`` on ``[C, H, W]``, vectorised: each channel whose maximum is positive is min-max
    normalised to [0, 1]; other channels are left as they are. A constant positive channel gives 0/0 = NaN
    there too, and argmax then picks it, as DINO's ``torch.max`` does."""
    flat = labels.flatten(1)
    low, high = flat.amin(dim=1), flat.amax(dim=1)
    shifted = labels - low[:, None, None]
    scaled = shifted / shifted.flatten(1).amax(dim=1)[:, None, None]
    return torch.where((high > 0)[:, None, None], scaled, labels)


def labels_to_ids(
    labels: torch.Tensor,
    grid: tuple[int, int],
    patch_size: int,
    out_size: tuple[int, int],
    upsample: str = "bilinear",
    normalize: bool = True,
) -> np.ndarray:
    """Soft labels ``[h*w, C]`` -> uint8 ids ``[H, W]`` at the original frame size, as DINO: upsampled by the
    patch size (bilinear, align_corners=False), ``norm_mask``, argmax over channels (the first maximum wins),
    then PIL NEAREST to the original size."""
    h, w = grid
    x = labels.T.reshape(1, -1, h, w)
    if upsample == "bilinear":
        x = F.interpolate(x, scale_factor=patch_size, mode="bilinear", align_corners=False)
    else:
        x = F.interpolate(x, scale_factor=patch_size, mode=upsample)
    x = x[0]
    if normalize:
        x = norm_mask(x)
    # torch.max's indices, as DINO takes them: the first maximum wins (argmax agrees, but reduces a
    # channels-first tensor ~20x slower on CPU)
    ids = x.max(dim=0).indices.to(torch.uint8).cpu().numpy()
    H, W = out_size
    return np.asarray(Image.fromarray(ids).resize((W, H), 0))
