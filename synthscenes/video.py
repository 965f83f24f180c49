"""Video clips: the objects of a first-frame scene move, scale and rotate, occluding each other.

Depth order is fixed for the whole clip, so occlusions are consistent, and each object keeps its id from
the first frame to the last (the DAVIS convention). The first frame is sampled like any scene, so every
object is visible in it (the DAVIS toolkit counts a sequence's objects from its first frame); later frames
may hide an object completely, as real videos do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from synthscenes.scene import Scene, ShapeObject, sample_scene


@dataclass(frozen=True)
class Motion:
    vx: float  # px per frame
    vy: float
    spin: float  # radians per frame
    # radius(t) = radius0 * (1 + amplitude * (sin(2 pi freq t + phase) - sin(phase))): exactly radius0 at
    # t = 0, so the first frame is the sampled scene and keeps its every-object-visible guarantee.
    scale_amplitude: float
    scale_freq: float  # cycles per frame
    scale_phase: float


@dataclass(frozen=True)
class Clip:
    frames: tuple[Scene, ...]
    object_ids: tuple[
        int, ...
    ]  # DAVIS id (1..K; 0: an untracked distractor) of scene.objects[i], in every frame

    @property
    def num_tracked(self) -> int:
        return sum(1 for i in self.object_ids if i)

    def id_map(self, instance_map: np.ndarray) -> np.ndarray:
        """Turn a rendered instance map (0 = background, i + 1 = objects[i]) into DAVIS ids."""
        lut = np.array((0, *self.object_ids), dtype=np.uint8)
        return lut[instance_map]


def _bounce(start: float, velocity: float, t: int, size: int) -> float:
    # Reflect off the canvas edges: the centre moves in [0, size] like a ball between two walls.
    p = (start + velocity * t) % (2 * size)
    return p if p <= size else 2 * size - p


def _frame_object(obj: ShapeObject, motion: Motion, t: int, size: int) -> ShapeObject:
    wave = math.sin(2 * math.pi * motion.scale_freq * t + motion.scale_phase) - math.sin(motion.scale_phase)
    scale = 1 + motion.scale_amplitude * wave
    return replace(
        obj,
        cx=_bounce(obj.cx, motion.vx, t, size),
        cy=_bounce(obj.cy, motion.vy, t, size),
        radius=obj.radius * scale,
        angle=obj.angle + motion.spin * t,
    )


def _lookalike_scene(
    rng: np.random.Generator,
    size: int,
    objects: tuple[int, int],
    radius: tuple[float, float],
    distractors: int,
) -> tuple[Scene, tuple[bool, ...]]:
    """A first frame whose objects (tracked and ``distractors`` untracked ones) all share one colour and one
    shading, so that colour tells none of them apart; returns it with which objects are tracked."""
    tracked = int(rng.integers(objects[0], objects[1] + 1))
    scene = sample_scene(rng, size, (tracked + distractors,) * 2, radius)
    model = scene.objects[0]
    same = tuple(replace(o, colour=model.colour, rgb=model.rgb, shading=model.shading) for o in scene.objects)
    is_tracked = np.zeros(len(same), dtype=bool)
    is_tracked[rng.permutation(len(same))[:tracked]] = True  # depth order is random: so is who is tracked
    return replace(scene, objects=same), tuple(bool(t) for t in is_tracked)


def sample_clip(
    rng: np.random.Generator,
    size: int,
    frames: int,
    objects: tuple[int, int],
    radius: tuple[float, float],
    lookalike: bool = False,
    distractors: tuple[int, int] = (0, 0),
) -> Clip:
    """A clip of ``frames`` frames. With ``lookalike``, every object of the clip has the same colour and
    shading, ``distractors`` more objects like them are never annotated (background), and the objects head
    for the middle of the canvas, so that they cross and occlude: only shape, motion and position tell the
    tracked objects apart, and a feature that encodes colour alone cannot."""
    if lookalike:
        first, tracked = _lookalike_scene(
            rng, size, objects, radius, int(rng.integers(distractors[0], distractors[1] + 1))
        )
    else:
        first, tracked = sample_scene(rng, size, objects, radius), None
    motions = []
    for obj in first.objects:
        speed, heading = rng.uniform(0.02, 0.06) * size, rng.uniform(0, 2 * math.pi)
        if lookalike:  # towards a point of the canvas's central half, so that paths cross
            tx, ty = rng.uniform(0.25, 0.75, size=2) * size
            heading = math.atan2(ty - obj.cy, tx - obj.cx)
        motions.append(
            Motion(
                vx=speed * math.cos(heading),
                vy=speed * math.sin(heading),
                spin=float(rng.uniform(-0.15, 0.15)),
                scale_amplitude=float(rng.uniform(0.0, 0.25)),
                scale_freq=float(rng.uniform(0.02, 0.08)),
                scale_phase=float(rng.uniform(0, 2 * math.pi)),
            )
        )
    noise_seeds = rng.integers(0, 2**31, size=frames)
    scenes = tuple(
        replace(
            first,
            noise_seed=int(noise_seeds[t]),
            objects=tuple(_frame_object(o, m, t, size) for o, m in zip(first.objects, motions)),
        )
        for t in range(frames)
    )
    if tracked is None:
        ids = tuple(int(i) + 1 for i in rng.permutation(len(first.objects)))
    else:  # tracked objects get 1..K in a random order, distractors 0 (background)
        order = iter(int(i) + 1 for i in rng.permutation(sum(tracked)))
        ids = tuple(next(order) if t else 0 for t in tracked)
    return Clip(scenes, ids)
