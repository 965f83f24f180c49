"""Scene descriptions, their sampling, and rendering one description into every annotation.

A ``Scene`` is the single source of truth for an item: from it come the image, the class label (shape type
of the largest object), the semantic label map, the per-object instance masks and boxes, and the caption.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthscenes.appearance import BACKGROUND_NAMES, BACKGROUNDS, COLOUR_NAMES, object_rgb, render_background
from synthscenes.shapes import SHAPES, rasterize

# Minimum fraction of an object's own pixels that must stay visible after occlusion, so every annotated
# object is really there (COCO loaders drop empty masks; DAVIS needs every id in the first frame).
MIN_VISIBLE_FRACTION = 0.4
# Every other object's radius is at most this fraction of the largest one's: the class ("largest object")
# is then unambiguous to the eye, not a coin flip between two near-equal shapes.
SMALLER_RATIO = 0.62
_PLACEMENT_TRIES = 50


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    colour: str
    rgb: tuple[float, float, float]
    cx: float
    cy: float
    radius: float  # circumradius in pixels: the one size measure of every shape
    angle: float
    shading: tuple[float, float]  # (strength, direction) of a linear brightness ramp over the object

    @property
    def shape_index(self) -> int:
        return SHAPES.index(self.shape)


@dataclass(frozen=True)
class Scene:
    size: int
    background: str
    background_seed: int
    noise_seed: int
    objects: tuple[ShapeObject, ...]  # in drawing order: later objects occlude earlier ones

    @property
    def label(self) -> int:
        """Class index: the shape type of the object with the largest radius."""
        return max(self.objects, key=lambda o: o.radius).shape_index


@dataclass(frozen=True)
class RenderedScene:
    image: np.ndarray  # [H, W, 3] uint8
    instance_map: np.ndarray  # [H, W] uint8: 0 = background, i + 1 = scene.objects[i] (topmost wins)
    num_objects: int

    def instance_masks(self) -> list[np.ndarray]:
        """One boolean [H, W] mask of visible pixels per object, in scene order."""
        return [self.instance_map == i + 1 for i in range(self.num_objects)]

    def semantic_map(self, scene: Scene) -> np.ndarray:
        """[H, W] uint8: 0 = background, k + 1 = shape type k (the ADE20K convention: 0 is 'other')."""
        lut = np.array([0] + [o.shape_index + 1 for o in scene.objects], dtype=np.uint8)
        return lut[self.instance_map]


def _sample_object(
    rng: np.random.Generator,
    size: int,
    radius: float,
    margin: float,
    shape: str | None = None,
    shapes: tuple[str, ...] = SHAPES,
) -> ShapeObject:
    lo, hi = margin * radius, size - margin * radius
    colour = COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]
    drawn_shape = shapes[int(rng.integers(len(shapes)))]  # drawn even when fixed: keeps the stream aligned
    return ShapeObject(
        shape=shape or drawn_shape,
        colour=colour,
        rgb=tuple(float(v) for v in object_rgb(colour, rng)),
        cx=float(rng.uniform(lo, hi)),
        cy=float(rng.uniform(lo, hi)),
        radius=float(radius),
        angle=float(rng.uniform(0, 2 * np.pi)),
        shading=(float(rng.uniform(0, 0.25)), float(rng.uniform(0, 2 * np.pi))),
    )


def _all_visible(objects: list[ShapeObject], size: int) -> bool:
    masks = [rasterize(o.shape, o.cx, o.cy, o.radius, o.angle, size) for o in objects]
    covered = np.zeros((size, size), dtype=bool)
    for mask in reversed(masks):  # from the top of the stack down
        own = int(mask.sum())
        if own == 0 or (mask & ~covered).sum() < MIN_VISIBLE_FRACTION * own:
            return False
        covered |= mask
    return True


def sample_scene(
    rng: np.random.Generator,
    size: int,
    objects: tuple[int, int],
    radius: tuple[float, float],
    largest_radius: tuple[float, float] | None = None,
    largest_shape: str | None = None,
    shapes: tuple[str, ...] = SHAPES,
) -> Scene:
    """Sample a scene of ``objects[0]..objects[1]`` shapes on a ``size`` px canvas.

    ``radius`` is the range of circumradii as a fraction of ``size``. With ``largest_radius`` (the
    classification layout), one object is drawn from that range and every other one is at most
    ``SMALLER_RATIO`` times its radius, so the class is well defined; its depth order is random like
    everyone else's. ``largest_shape`` fixes the type of that object (the writer balances the classes).
    ``shapes`` restricts the types drawn (all of ``SHAPES`` by default: the stream of every older dataset).
    """
    n = int(rng.integers(objects[0], objects[1] + 1))
    background = BACKGROUND_NAMES[int(rng.integers(len(BACKGROUND_NAMES)))]
    background_seed, noise_seed = (int(v) for v in rng.integers(0, 2**31, size=2))
    for _ in range(_PLACEMENT_TRIES):
        if largest_radius is not None:
            big = rng.uniform(*largest_radius) * size
            small_hi = min(radius[1] * size, SMALLER_RATIO * big)
            radii = [big] + [rng.uniform(radius[0] * size, small_hi) for _ in range(n - 1)]
        else:
            radii = [rng.uniform(*radius) * size for _ in range(n)]
        fixed = [largest_shape if largest_radius is not None else None] + [None] * (n - 1)
        placed = [_sample_object(rng, size, r, 0.6, s, shapes) for r, s in zip(radii, fixed)]
        order = rng.permutation(n)
        placed = [placed[i] for i in order]
        if _all_visible(placed, size):
            return Scene(size, background, background_seed, noise_seed, tuple(placed))
    # Only reachable with object counts far too high for the canvas: a configuration error.
    raise RuntimeError(
        f"could not place {n} visible objects on a {size}px canvas in {_PLACEMENT_TRIES} tries"
    )


def render_scene(scene: Scene) -> RenderedScene:
    """Draw the scene: textured background, then the objects back to front, then mild sensor noise."""
    size = scene.size
    image = render_background(scene.background, size, np.random.default_rng(scene.background_seed))
    instance_map = np.zeros((size, size), dtype=np.uint8)
    for i, obj in enumerate(scene.objects):
        mask = rasterize(obj.shape, obj.cx, obj.cy, obj.radius, obj.angle, size)
        ys, xs = np.nonzero(mask)
        strength, direction = obj.shading
        ramp = ((xs - obj.cx) * np.cos(direction) + (ys - obj.cy) * np.sin(direction)) / obj.radius
        image[ys, xs] = np.asarray(obj.rgb, dtype=np.float32) * (1 + strength * ramp[:, None]).astype(
            np.float32
        )
        instance_map[ys, xs] = i + 1
    noise = np.random.default_rng(scene.noise_seed).normal(0, 0.025, size=image.shape).astype(np.float32)
    pixels = np.clip((image + noise) * 255 + 0.5, 0, 255).astype(np.uint8)
    return RenderedScene(pixels, instance_map, len(scene.objects))


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """Names every object with its colour, and the background, the most salient (largest) object first.

    A describer names the main subject first, and web alt-text, from which CLIP learned ImageNet's concepts,
    does the same: so the first-named object is the class, and a CLIP teacher trained on these captions can
    learn the class concepts from text, as OpenAI's CLIP did. CMT-MAE's premise is a teacher that carries
    such semantics; its own probe and zero-shot rows show how much. No sizes are named. ``rng`` is kept for
    the writers' signature (the order no longer draws from it, and nothing is drawn after the caption)."""
    phrases = []
    for obj in sorted(scene.objects, key=lambda o: -o.radius):  # radii differ by >= 1/0.62: no ties
        article = "an" if obj.colour[0] in "aeiou" else "a"
        phrases.append(f"{article} {obj.colour} {obj.shape}")
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"{listed} on {BACKGROUNDS[scene.background]}"
