"""Colours of objects and the textured backgrounds.

Objects get saturated, named colours (the caption names them); backgrounds are muted (low saturation,
mid value) so every object stands out from every background. Colour and background are drawn independently
of the shape types, so neither carries the class.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image

# name -> (hue in [0, 1), saturation, value); white has no hue.
OBJECT_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.0, 0.9, 0.95),
    "orange": (0.08, 0.9, 1.0),
    "yellow": (0.16, 0.85, 1.0),
    "green": (0.33, 0.8, 0.85),
    "cyan": (0.5, 0.8, 0.95),
    "blue": (0.62, 0.85, 0.95),
    "purple": (0.78, 0.7, 0.85),
    "white": (0.0, 0.0, 1.0),
}
COLOUR_NAMES: tuple[str, ...] = tuple(OBJECT_COLOURS)

# name -> the words the caption uses for it ("... on stripes").
BACKGROUNDS: dict[str, str] = {
    "noise": "noise",
    "stripes": "stripes",
    "gradient": "a gradient",
    "checker": "a checkerboard",
}
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUNDS)


def object_rgb(name: str, rng: np.random.Generator) -> np.ndarray:
    """A jittered RGB triple in [0, 1] for the named colour (colour variation within a name)."""
    h, s, v = OBJECT_COLOURS[name]
    h = (h + rng.uniform(-0.02, 0.02)) % 1.0
    s = float(np.clip(s + rng.uniform(-0.1, 0.1), 0.0, 1.0)) if s > 0 else 0.0
    v = float(np.clip(v + rng.uniform(-0.1, 0.05), 0.0, 1.0))
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def _muted(rng: np.random.Generator) -> np.ndarray:
    h, s, v = rng.uniform(0, 1), rng.uniform(0.0, 0.35), rng.uniform(0.2, 0.65)
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def render_background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """``[size, size, 3]`` float32 texture in [0, 1] of the given kind, two muted colours mixed by a
    pattern in [0, 1]."""
    a, b = _muted(rng), _muted(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "noise":
        # Smooth value noise: a coarse random grid upsampled bilinearly (scale-free in the image size).
        cells = int(rng.integers(3, 7))
        grid = rng.uniform(0, 1, size=(cells + 1, cells + 1)).astype(np.float32)
        # PIL's bilinear resize of a float image: the same interpolation as indexing by hand, 20x faster.
        pattern = np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BILINEAR))
    elif kind == "stripes":
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(0.12, 0.3)
        phase = rng.uniform(0, 1)
        t = (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase
        pattern = (np.floor(t * 2) % 2).astype(np.float32)
    elif kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        t = (xx - 0.5) * np.cos(theta) + (yy - 0.5) * np.sin(theta)
        pattern = np.clip(t / 1.2 + 0.5, 0, 1)
    elif kind == "checker":
        cell = rng.uniform(0.1, 0.25)
        ox, oy = rng.uniform(0, 1, size=2)
        pattern = ((np.floor(xx / cell + ox) + np.floor(yy / cell + oy)) % 2).astype(np.float32)
    else:
        raise KeyError(f"unknown background {kind!r}; known: {', '.join(BACKGROUND_NAMES)}")
    return a * (1 - pattern[..., None]) + b * pattern[..., None]


def voc_palette(num_colours: int = 256) -> list[int]:
    """The PASCAL VOC colour map (as used by DAVIS's indexed PNGs), flat ``[r0, g0, b0, r1, ...]``.

    Each index's bits are spread over the high bits of r, g and b, three bits per round."""
    palette = []
    for index in range(num_colours):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette
