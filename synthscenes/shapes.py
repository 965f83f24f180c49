"""The shape types and their rasterisation.

Every shape is a polygon (plus optional holes) in unit coordinates: centred at the origin and inscribed in
the unit circle, so ``radius`` (the circumradius in pixels) is the one size measure of every shape. Shapes
are drawn with PIL's polygon fill at the target resolution, so the masks are hard (no anti-aliasing) and
the image, the label map, the boxes and the instance masks are all derived from the same pixels.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw

# Sorted alphabetically on purpose: an ImageNet-style class-folder reader numbers classes by sorted folder
# name, so class index k here is class index k there, and semantic label k + 1 in the ADE20K layout.
SHAPES: tuple[str, ...] = ("circle", "cross", "ellipse", "hexagon", "ring", "square", "star", "triangle")

# Colours to draw each class's label map with (visualisation only; mmseg / mmdet metainfo "palette").
SHAPE_DISPLAY_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
)  # fmt: skip

_CIRCLE_VERTICES = 48


def _regular(n: int, radius: float = 1.0, phase: float = math.pi / 2) -> np.ndarray:
    angles = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outer = _regular(points)
    inner_pts = _regular(points, inner, phase=math.pi / 2 + math.pi / points)
    return np.stack([outer, inner_pts], axis=1).reshape(-1, 2)


def _cross(half_width: float = 0.3) -> np.ndarray:
    a, w = 0.95, half_width
    return np.array(
        [
            (w, w),
            (a, w),
            (a, -w),
            (w, -w),
            (w, -a),
            (-w, -a),
            (-w, -w),
            (-a, -w),
            (-a, w),
            (-w, w),
            (-w, a),
            (w, a),
        ]
    )


@cache
def unit_polygons(shape: str) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """(outline, holes) of ``shape`` in unit coordinates, each an ``[V, 2]`` array of (x, y)."""
    circle = _regular(_CIRCLE_VERTICES)
    if shape == "circle":
        return circle, ()
    if shape == "ellipse":
        return circle * np.array([1.0, 0.5]), ()
    if shape == "ring":
        return circle, (circle * 0.55,)
    if shape == "square":
        return _regular(4, phase=math.pi / 4), ()
    if shape == "triangle":
        return _regular(3), ()
    if shape == "hexagon":
        return _regular(6, phase=0.0), ()
    if shape == "star":
        return _star(), ()
    if shape == "cross":
        return _cross(), ()
    raise KeyError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def _place(
    points: np.ndarray, cx: float, cy: float, radius: float, angle: float
) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    xy = points @ rot.T * radius + np.array([cx, cy])
    return [(float(x), float(y)) for x, y in xy]


# Sampling a scene rasterizes its objects to check they stay visible, and rendering draws the same objects
# again: a small cache makes the second pass free. The masks are read-only, so sharing them is safe.
@lru_cache(maxsize=256)
def rasterize(shape: str, cx: float, cy: float, radius: float, angle: float, size: int) -> np.ndarray:
    """Boolean ``[size, size]`` mask of ``shape`` centred at pixel (cx, cy), circumradius ``radius`` px,
    rotated by ``angle`` radians. Parts outside the canvas are cut off. Read-only."""
    outline, holes = unit_polygons(shape)
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    draw.polygon(_place(outline, cx, cy, radius, angle), fill=1)
    for hole in holes:
        draw.polygon(_place(hole, cx, cy, radius, angle), fill=0)
    mask = np.asarray(canvas, dtype=bool)
    mask.flags.writeable = False
    return mask
