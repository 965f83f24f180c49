"""The budget's CLIP teacher as a file: where it lives, when it is reused, what is recorded about it, and
the file pretraining hands to a method that needs one (CMT-MAE).

    python reproduce/clip_teacher_files.py --budget tiny [--work-root DIR] [--probe-seeds N] [--force]

At micro/tiny the teacher is trained here on first use (``reproduce/clip_teacher_training.py``) and saved
atomically under ``<work-root>/teachers/<budget>/<key>/teacher.pt``; the key hashes the recipe, the model
config, the code that trains it and the dataset manifest, so a stale teacher is never reused. Its evaluation
is written to records (``records/<budget>/clip-teacher/teacher/seed0.json`` and one linear-probe record per
probe seed, so the teacher is a reference row of Table 1), and its training cost (FLOPs per image, total
FLOPs, wall time) goes into the pretraining record of every method that uses it (Table 1's *Teacher
training* column). A randomly initialised CLIP is meaningless as a teacher: pretraining builds this one
first. At paper scale the teacher is OpenAI's CLIP ViT-B/16, read from a local file (``teacher_inputs``).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from mmengine.config import Config  # noqa: E402

from methods.clip_teacher import CLIP_MEAN, CLIP_STD, OPENAI_VIT_B16_FILE, OPENAI_VIT_B16_URL  # noqa: E402
from reproduce.clip_teacher_training import (  # noqa: E402
    TEACHER_SEED,
    TeacherError,
    clip_model_cfg,
    clip_model_name,
    image_features,
    linear_probe,
    load_split,
    prompts_for,
    teacher_recipe,
    train_clip,
    zero_shot,
)
from reproduce.code_key import closure, code_hash  # noqa: E402
from reproduce.provenance import provenance, stable_hash  # noqa: E402
from tables.records import Record, read_record, record_path, write_record  # noqa: E402

#: the teacher's rows in records and tables
TEACHER_METHOD = "clip-teacher"
TEACHER_PROTOCOL = "teacher"
#: where a paper-scale budget looks for OpenAI's ViT-B/16 unless the method config names a file
DEFAULT_OPENAI_FILE = Path("checkpoints") / "clip" / OPENAI_VIT_B16_FILE


@dataclass(frozen=True)
class Teacher:
    """A trained (or released) CLIP teacher file and what pretraining records about it."""

    path: Path
    key: str  # identity: folds into the run key of every pretraining run that uses it
    record: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # zero-shot / probe numbers, for the record


def teacher_code_hash() -> str:
    """The code that decides how the teacher trains (its imports, not comments or docstrings), and the
    model configs: a change retrains it."""
    from methods.clip_configs import CONFIG_DIR

    configs = "".join(p.read_text() for p in sorted(CONFIG_DIR.glob("*.json")))
    return stable_hash({"code": code_hash(closure(["reproduce.clip_teacher_training"])), "configs": configs})


def teacher_key(cfg: Config, manifest_hash: str) -> str:
    name = clip_model_name(cfg)
    return stable_hash(
        {
            "model": name,
            "model_cfg": clip_model_cfg(name),
            "recipe": teacher_recipe(cfg),
            "probe": cfg.linear_probe.to_dict() if "linear_probe" in cfg else None,
            "code": teacher_code_hash(),
            "data": manifest_hash,
            "seed": TEACHER_SEED,
        }
    )


def teacher_path(work_root: str | Path, budget: str, key: str) -> Path:
    return Path(work_root) / "teachers" / budget / key / "teacher.pt"


# ----------------------------------------------------------------------------------------------------------
# Build or reuse
# ----------------------------------------------------------------------------------------------------------
def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _teacher_from_record(path: Path, key: str, record: Path) -> Teacher | None:
    if not (path.is_file() and record.is_file()):
        return None
    from methods.clip_teacher import read_clip_meta

    meta, rec = read_clip_meta(path), read_record(record)
    if meta.get("teacher_key") != key or rec.extra.get("teacher_key") != key:
        return None
    return Teacher(path, key, record, dict(rec.metrics))


def ensure_teacher(
    cfg: Config,
    work_root: str | Path = REPO / "work_dirs",
    *,
    data: Any = None,
    probe_seeds: Sequence[int] = (0, 1, 2),
    force: bool = False,
    progress: bool = True,
) -> Teacher:
    """The budget's trained CLIP teacher under ``work_root``: reused when its key matches, else trained,
    evaluated (zero-shot, linear probe) and recorded. Safe against concurrent callers (a file lock)."""
    from reproduce import data_root
    from reproduce.data import is_synthscenes

    if not is_synthscenes(cfg.data):
        raise TeacherError(
            f"budget {cfg.budget!r} reads real data: its teacher is OpenAI's CLIP ViT-B/16 from a local "
            "file, not one trained here"
        )
    data = data or data_root.prepare(cfg)
    key = teacher_key(cfg, data.manifest_hash)
    path = teacher_path(work_root, cfg.budget, key)
    record = record_path(work_root, cfg.budget, TEACHER_METHOD, TEACHER_PROTOCOL, TEACHER_SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and (found := _teacher_from_record(path, key, record)):
            return found
        return _build(cfg, work_root, data, key, path, probe_seeds, progress)


def _build(cfg, work_root, data, key: str, path: Path, probe_seeds, progress: bool) -> Teacher:
    from methods.clip_teacher import save_clip

    name = clip_model_name(cfg)
    img_size = clip_model_cfg(name)["vision_cfg"]["image_size"]
    train = load_split(data.imagenet, "train", img_size)
    val = load_split(data.imagenet, "val", img_size)
    clip, stats = train_clip(cfg, train, progress=progress)

    eval_start = time.perf_counter()
    zs = zero_shot(clip, name, val)
    train_x, _ = image_features(clip.visual, train.images)
    val_x, _ = image_features(clip.visual, val.images)
    probes = {s: linear_probe(cfg, train_x, train.labels, val_x, val.labels, s) for s in probe_seeds}
    eval_s = time.perf_counter() - eval_start
    probe_top1 = [p["metrics"]["top1"] for p in probes.values()]
    metrics = {
        "zero_shot_top1": zs["top1"],
        "zero_shot_top5": zs["top5"],
        "chance_top1": 100.0 / len(val.classes),
        "final_loss": stats["final_loss"],
    }
    if probe_top1:
        metrics["linear_probe_top1"] = sum(probe_top1) / len(probe_top1)

    meta = {
        "model_name": name,
        "model_cfg": clip_model_cfg(name),
        "image_mean": list(CLIP_MEAN),
        "image_std": list(CLIP_STD),
        "teacher_key": key,
        "budget": cfg.budget,
        "dataset_manifest_hash": data.manifest_hash,
        "cost": {k: stats[k] for k in ("flops_per_image", "total_flops", "wall_s", "train_images")},
        "metrics": metrics,
    }
    save_clip(clip, path, meta)
    sha = _file_sha256(path)
    recipe = teacher_recipe(cfg)
    prov = provenance(
        config={"teacher": name, "recipe": recipe, "model_cfg": meta["model_cfg"]},
        dataset_manifest_hash=data.manifest_hash,
        world_size=1,
        batch_size=recipe["batch_size"],
        precision="fp32",
        seed=TEACHER_SEED,
        code_hash=teacher_code_hash(),
        teacher_key=key,
    )
    cost = {
        "flops_per_image": stats["flops_per_image"],
        "flops_unit": "FLOPs (2 x multiply-adds)",
        "total_flops": stats["total_flops"],
        "train_images": stats["train_images"],
        "steps": stats["steps"],
        "wall_s": stats["wall_s"],
        "images_per_s": stats["images_per_s"],
        "eval_wall_s": eval_s,
    }
    rec = Record(
        budget=cfg.budget,
        method=TEACHER_METHOD,
        protocol=TEACHER_PROTOCOL,
        seed=TEACHER_SEED,
        metrics=metrics,
        provenance=prov,
        cost=cost,
        extra={
            "teacher": str(path),
            "teacher_sha256": sha,
            "teacher_key": key,
            "model_name": name,
            "recipe_values": recipe,
            "first_loss": stats["first_loss"],
            "linear_probe_top1_per_seed": probe_top1,
            "zero_shot_prompts": {c: prompts_for(c) for c in val.classes},
            "probe_feature": "CLS after ln_post, before the projection",
            "protocol_detail": "CLIP teacher: trained on SynthScenes captions with open_clip ClipLoss",
        },
    )
    record = write_record(rec, work_root)
    for seed, probe in probes.items():
        write_record(_probe_record(cfg, probe, seed, data, sha, key, len(train_x), len(val_x)), work_root)
    return Teacher(path, key, record, metrics)


def _probe_record(cfg, probe, seed: int, data, sha: str, key: str, n_train: int, n_val: int) -> Record:
    recipe = probe["recipe"]
    prov = provenance(
        config={"protocol": "linear_probe", "recipe": recipe},
        dataset_manifest_hash=data.manifest_hash,
        world_size=1,
        batch_size=recipe["batch_size"],
        precision="fp32",
        seed=seed,
        encoder_sha256=sha,
        teacher_key=key,
    )
    return Record(
        budget=cfg.budget,
        method=TEACHER_METHOD,
        protocol="linear_probe",
        seed=seed,
        pretrain_seed=TEACHER_SEED,
        metrics=probe["metrics"],
        provenance=prov,
        extra={
            "recipe": recipe["name"],
            "recipe_values": recipe,
            "final_epoch": {
                "epoch": recipe["epochs"],
                "train_loss": probe["history"][-1],
                **probe["metrics"],
            },
            "data": {"root": str(data.imagenet), "num_train": n_train, "num_val": n_val},
            "encoder": "CLIP teacher's vision tower (CLS after ln_post, before the projection)",
            "teacher_key": key,
        },
    )


# ----------------------------------------------------------------------------------------------------------
# What pretraining needs from here
# ----------------------------------------------------------------------------------------------------------
def teacher_inputs(
    method: str, cfg: Config, method_cfg: dict[str, Any], work_root: str | Path, data: Any = None
) -> Teacher | None:
    """The CLIP teacher a method trains with (None for methods without one).

    SynthScenes budgets: the budget's trained teacher (``ensure_teacher``: built first when missing), unless
    the method config names a file. Real-data budgets: the file the method config names, by default
    ``checkpoints/clip/ViT-B-16.pt`` under the repository; when it is absent this stops with one line naming
    the file and where to put it.
    """
    from methods.registry import get_spec
    from reproduce.data import is_synthscenes

    if not get_spec(method).cls.uses_clip_teacher:
        return None
    given = method_cfg.get("teacher_file")
    if given is None and is_synthscenes(cfg.data):
        return ensure_teacher(cfg, work_root, data=data)
    path = Path(given) if given is not None else DEFAULT_OPENAI_FILE
    path = path if path.is_absolute() else REPO / path
    if not path.is_file():
        raise TeacherError(
            f"{method} needs OpenAI's CLIP ViT-B/16: download {OPENAI_VIT_B16_FILE} from "
            f"{OPENAI_VIT_B16_URL} to {path} (or set teacher_file in the method's config.py)"
        )
    return Teacher(path, f"file:{_file_sha256(path)[:16]}")


# ----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> Teacher:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="tiny", help="a SynthScenes budget (micro, tiny)")
    p.add_argument("--work-root", default=str(REPO / "work_dirs"), help="teachers and records go here")
    p.add_argument("--probe-seeds", type=int, default=3, help="linear-probe seeds (records for Table 1)")
    p.add_argument("--force", action="store_true", help="retrain even if a teacher with this key exists")
    args = p.parse_args(argv)
    from reproduce.budget import load_budget

    cfg = load_budget(args.budget)
    teacher = ensure_teacher(cfg, args.work_root, probe_seeds=range(args.probe_seeds), force=args.force)
    m, rec = teacher.summary, read_record(teacher.record)
    print(f"teacher: {teacher.path} (key {teacher.key})")
    print(
        f"zero-shot top-1 {m['zero_shot_top1']:.1f} % (top-5 {m['zero_shot_top5']:.1f} %, chance "
        f"{m['chance_top1']:.1f} %); linear probe top-1 {m.get('linear_probe_top1', float('nan')):.1f} % "
        f"(seeds {rec.extra['linear_probe_top1_per_seed']})"
    )
    c = rec.cost
    print(
        f"training: {c['steps']} steps, {c['train_images']} images, "
        f"{c['flops_per_image'] / 1e9:.4f} GFLOPs/img, "
        f"{c['total_flops'] / 1e12:.3f} TFLOPs, {c['wall_s']:.1f} s ({c['images_per_s']:.0f} img/s)"
    )
    return teacher


if __name__ == "__main__":
    from reproduce import cli

    cli.run(main)
