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
    object_ids: tuple[int, ...]  # DAVIS id (1..K) of scene.objects[i], the same in every frame

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


def sample_clip(
    rng: np.random.Generator, size: int, frames: int, objects: tuple[int, int], radius: tuple[float, float]
) -> Clip:
    first = sample_scene(rng, size, objects, radius)
    motions = []
    for _ in first.objects:
        speed, heading = rng.uniform(0.02, 0.06) * size, rng.uniform(0, 2 * math.pi)
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
    ids = tuple(int(i) + 1 for i in rng.permutation(len(first.objects)))
    return Clip(scenes, ids)
