"""Train the small CLIP teacher of a SynthScenes budget (CMT-MAE's teacher at micro/tiny) and evaluate it.

    python reproduce/teacher.py --budget tiny [--work-root DIR] [--force]

The teacher is the budget's open_clip config (``methods/clip_configs/synthclip-<arch>.json``: the student's
image and patch size, so the two patch grids are equal), trained from scratch on the SynthScenes train
captions with open_clip's contrastive loss (``ClipLoss``) and the budget's ``clip_teacher`` recipe. It
is saved atomically under ``<work-root>/teachers/<budget>/<key>/teacher.pt``, the key hashing the recipe, the
model config, the code that trains it and the dataset manifest, so a stale teacher is never reused.

Evaluated on the val split, written to its record (``records/<budget>/clip-teacher/teacher/seed0.json``) and
printed: zero-shot top-1/top-5 (one prompt ensemble per class name) and the linear probe of its CLS feature
(the budget's ``linear_probe`` recipe, cached centre-crop features, one record per probe seed, so the teacher
is a reference row of Table 1). Its training cost (FLOPs per image, total FLOPs, wall time) goes to the record
and, through ``ensure_teacher``, into the pretraining record of every method that uses it (Table 1's *Teacher
training* column). A randomly initialised CLIP is meaningless as a teacher: pretraining builds this one first.

At paper scale the teacher is OpenAI's CLIP ViT-B/16, read from a local file (``teacher_inputs``).
"""

from __future__ import annotations

import argparse
import copy
import csv
import fcntl
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mmengine.config import Config  # noqa: E402
from PIL import Image  # noqa: E402

from methods.clip_teacher import CLIP_MEAN, CLIP_STD, OPENAI_VIT_B16_FILE, OPENAI_VIT_B16_URL  # noqa: E402
from reproduce.provenance import files_hash, provenance, stable_hash  # noqa: E402
from tables.records import Record, read_record, record_path, write_record  # noqa: E402

#: the teacher's rows in records and tables
TEACHER_METHOD = "clip-teacher"
TEACHER_PROTOCOL = "teacher"
TEACHER_SEED = 0
#: the source files that decide how the teacher trains (a change retrains it)
TEACHER_CODE = (
    "reproduce/teacher.py",
    "methods/clip_teacher.py",
    "methods/clip_configs/__init__.py",
    "methods/cost.py",
)
#: where a paper-scale budget looks for OpenAI's ViT-B/16 unless the method config names a file
DEFAULT_OPENAI_FILE = Path("checkpoints") / "clip" / OPENAI_VIT_B16_FILE


class TeacherError(SystemExit):
    """A teacher that cannot be provided; its message is the one line to act on."""


@dataclass(frozen=True)
class Teacher:
    """A trained (or released) CLIP teacher file and what pretraining records about it."""

    path: Path
    key: str  # identity: folds into the run key of every pretraining run that uses it
    record: Path | None = None
    cost: dict[str, float] = field(default_factory=dict)  # teacher_* cost fields for pretrain records
    summary: dict[str, Any] = field(default_factory=dict)  # zero-shot / probe numbers, for the record


# ----------------------------------------------------------------------------------------------------------
# Configuration and identity
# ----------------------------------------------------------------------------------------------------------
def clip_model_name(cfg: Config) -> str:
    """The budget's open_clip config name, checked to give the student's patch grid."""
    from methods import clip_configs
    from methods.backbone import resolve_arch

    name = f"synthclip-{cfg.model.arch}"
    if name not in clip_configs.NAMES:
        raise TeacherError(
            f"no CLIP teacher config for arch {cfg.model.arch!r}: add methods/clip_configs/{name}.json"
        )
    arch = resolve_arch(cfg.model.arch)
    vision = clip_model_cfg(name)["vision_cfg"]
    if (vision["image_size"], vision["patch_size"]) != (arch["img_size"], arch["patch_size"]):
        raise TeacherError(
            f"{name}: image/patch size {vision['image_size']}/{vision['patch_size']} differ from the "
            f"student's {arch['img_size']}/{arch['patch_size']}: the patch grids must be equal"
        )
    return name


def clip_model_cfg(name: str) -> dict[str, Any]:
    from methods.clip_configs import CONFIG_DIR

    return json.loads((CONFIG_DIR / f"{name}.json").read_text())


def teacher_recipe(cfg: Config) -> dict[str, Any]:
    if "clip_teacher" not in cfg:
        raise TeacherError(f"budget {cfg.budget!r} has no 'clip_teacher' section (the teacher's recipe)")
    section = cfg.clip_teacher
    return section.to_dict() if hasattr(section, "to_dict") else dict(section)


def teacher_code_files() -> list[Path]:
    from methods.clip_configs import CONFIG_DIR

    return [REPO / f for f in TEACHER_CODE] + sorted(CONFIG_DIR.glob("*.json"))


def teacher_key(cfg: Config, manifest_hash: str) -> str:
    name = clip_model_name(cfg)
    return stable_hash(
        {
            "model": name,
            "model_cfg": clip_model_cfg(name),
            "recipe": teacher_recipe(cfg),
            "probe": cfg.linear_probe.to_dict() if "linear_probe" in cfg else None,
            "code": files_hash(teacher_code_files()),
            "data": manifest_hash,
            "seed": TEACHER_SEED,
        }
    )


def teacher_path(work_root: str | Path, budget: str, key: str) -> Path:
    return Path(work_root) / "teachers" / budget / key / "teacher.pt"


# ----------------------------------------------------------------------------------------------------------
# Data: the captioned class folders SynthScenes writes
# ----------------------------------------------------------------------------------------------------------
@dataclass
class CaptionedSplit:
    images: torch.Tensor  # uint8 [N, 3, H, W]
    captions: list[str]
    labels: torch.Tensor  # long [N], class index = sorted folder name
    classes: list[str]


def load_split(imagenet_root: Path, split: str, img_size: int) -> CaptionedSplit:
    """Every image of ``imagenet_root/<split>`` with its caption (``captions_<split>.csv``) and label,
    resized to ``img_size`` if needed (SynthScenes draws them at the budget's size), kept as uint8."""
    import torchvision.transforms.v2.functional as TF

    index = imagenet_root / f"captions_{split}.csv"
    if not index.is_file():
        raise TeacherError(f"{index} is missing: the CLIP teacher trains on SynthScenes captions")
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    classes = sorted({Path(r["filepath"]).parent.name for r in rows})
    to_label = {c: i for i, c in enumerate(classes)}
    images = []
    for r in rows:
        with Image.open(imagenet_root / r["filepath"]) as im:
            x = TF.pil_to_tensor(im.convert("RGB"))
        if x.shape[-2:] != (img_size, img_size):
            x = TF.center_crop(TF.resize(x, [img_size], antialias=True), [img_size, img_size])
        images.append(x)
    labels = torch.tensor([to_label[Path(r["filepath"]).parent.name] for r in rows], dtype=torch.long)
    return CaptionedSplit(torch.stack(images), [r["caption"] for r in rows], labels, classes)


def salient_caption(caption: str) -> str:
    """The caption of the most salient object alone, without its colour ("a blue ring, a white star and an
    orange cross on stripes" -> "a ring"): SynthScenes names the largest object first (see its README)."""
    shape = re.split(r", | and ", caption.partition(" on ")[0])[0].split()[-1]
    return f"{'an' if shape[0] in 'aeiou' else 'a'} {shape}"


def clip_normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float, normalised with CLIP's mean and std."""
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------
def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """open_clip's training split: no decay on gains, biases, norms and the logit scale."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if skip else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def lr_at(step: int, total: int, lr: float, warmup: int) -> float:
    """Linear warm-up then half-cycle cosine to 0, per step (open_clip's ``cosine_lr``)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * progress)) * lr


def batches(n: int, batch: int, epochs: int, seed: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(epoch, indices) of full batches, each epoch's order a function of (seed, epoch)."""
    for epoch in range(epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        for s in range(n // batch):
            yield epoch, order[s * batch : (s + 1) * batch]


def train_step_flops(model: nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> float:
    """FLOPs per image of one training step (image and text forward, ClipLoss, backward)."""
    import open_clip

    from methods.cost import count_flops

    probe = copy.deepcopy(model).train()
    loss_fn = open_clip.ClipLoss()

    def step():
        img, txt, scale = probe(clip_normalise(images), tokens)
        loss_fn(img, txt, scale).backward()

    return count_flops(step) / len(images)


def train_clip(
    cfg: Config, train: CaptionedSplit, *, seed: int = TEACHER_SEED, progress: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the budget's CLIP from scratch on (image, caption) pairs; returns it and its training stats."""
    import open_clip

    from methods import clip_configs

    clip_configs.register()
    r = teacher_recipe(cfg)
    name = clip_model_name(cfg)
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None).float()
    tokenizer = open_clip.get_tokenizer(name)
    tokens = tokenizer(train.captions)  # [N, context_length]
    salient = float(r.get("salient_caption", 0.0))
    tokens_salient = tokenizer([salient_caption(c) for c in train.captions]) if salient > 0 else None
    loss_fn = open_clip.ClipLoss()
    optimizer = torch.optim.AdamW(
        param_groups(model, r["weight_decay"]), lr=r["lr"], betas=tuple(r["betas"]), eps=r.get("eps", 1e-6)
    )
    batch = r["batch_size"]
    steps_per_epoch = len(train.images) // batch
    if steps_per_epoch == 0:
        raise TeacherError(
            f"clip_teacher.batch_size {batch} exceeds the {len(train.images)} captioned images"
        )
    total = steps_per_epoch * r["epochs"]
    warmup = max(1, round(r["warmup_fraction"] * total))
    flops_per_image = train_step_flops(model, train.images[:8], tokens[:8])

    from downstream.in1k.linear_probe import loss_bar

    bar = loss_bar(progress, total, f"CLIP teacher ({name})", unit="step")
    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    for step, (epoch, idx) in enumerate(batches(len(train.images), batch, r["epochs"], seed)):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total, r["lr"], warmup)
        x = train.images[idx]
        if r.get("hflip", True):  # captions name no left/right: flipping keeps them true
            g = torch.Generator().manual_seed(seed * 1_000_003 + step)
            flip = torch.rand(len(x), generator=g) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        text = tokens[idx]
        if salient > 0:  # the main subject alone: a caption that colour and background cannot match
            g = torch.Generator().manual_seed(seed * 1_000_003 + step + 500_000_000)
            short = torch.rand(len(x), generator=g) < salient
            text = torch.where(short.view(-1, 1), tokens_salient[idx], text)
        img, txt, scale = model(clip_normalise(x), text)
        loss = loss_fn(img, txt, scale)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"CLIP teacher: loss {loss.item()} at step {step} (epoch {epoch})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # as open_clip's training loop: logit scale at most 100
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        bar(loss.item())
    bar(None)
    wall = time.perf_counter() - start
    images = total * batch
    stats = {
        "steps": total,
        "epochs": r["epochs"],
        "train_images": images,
        "flops_per_image": flops_per_image,
        "total_flops": flops_per_image * images,
        "wall_s": wall,
        "images_per_s": images / wall,
        "final_loss": sum(losses[-steps_per_epoch:]) / len(losses[-steps_per_epoch:]),
        "first_loss": losses[0],
    }
    return model.eval(), stats


# ----------------------------------------------------------------------------------------------------------
# Evaluation: zero-shot and linear probe
# ----------------------------------------------------------------------------------------------------------
def prompts_for(class_name: str) -> list[str]:
    """The prompt ensemble of one class: its name alone and with every object colour, worded as the
    captions word objects ("a red star", "an orange ring")."""
    from synthscenes.appearance import COLOUR_NAMES

    def article(word: str) -> str:
        return "an" if word[0] in "aeiou" else "a"

    return [f"{article(class_name)} {class_name}"] + [f"{article(c)} {c} {class_name}" for c in COLOUR_NAMES]


@torch.no_grad()
def class_embeddings(model: nn.Module, tokenizer, classes: Sequence[str]) -> torch.Tensor:
    """[C, E]: per class the mean of its L2-normalised prompt embeddings, renormalised (CLIP's ensembling)."""
    rows = []
    for name in classes:
        emb = F.normalize(model.encode_text(tokenizer(prompts_for(name))), dim=-1)
        rows.append(F.normalize(emb.mean(dim=0), dim=-1))
    return torch.stack(rows)


@torch.no_grad()
def image_features(visual: nn.Module, images: torch.Tensor, chunk: int = 256) -> tuple[torch.Tensor, ...]:
    """(CLS after ln_post, before the projection [N, width]; image embedding [N, E]) of uint8 images.

    The probe feature is the one the CLIP paper's linear probes use for ViTs (the features before the
    projection into the embedding space); the embedding is what zero-shot classification compares.
    """
    visual.eval()
    cls, emb = [], []
    for x in images.split(chunk):
        out = visual.forward_intermediates(
            clip_normalise(x),
            indices=1,
            normalize_intermediates=True,  # ln_post, as the pooled path applies it
            output_fmt="NLC",
            output_extra_tokens=True,
        )
        cls.append(out["image_intermediates_prefix"][-1][:, 0])
        emb.append(out["image_features"])
    return torch.cat(cls), torch.cat(emb)


def topk(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    from downstream.in1k.metrics import topk_accuracy

    return topk_accuracy(logits, labels)


def zero_shot(model: nn.Module, name: str, val: CaptionedSplit) -> dict[str, float]:
    """Top-1/top-5 (%) of the nearest class prompt ensemble to each val image embedding."""
    import open_clip

    text = class_embeddings(model, open_clip.get_tokenizer(name), val.classes)
    _, emb = image_features(model.visual, val.images)
    return topk(F.normalize(emb, dim=-1) @ text.T, val.labels)


def linear_probe(
    cfg: Config, train_x: torch.Tensor, train_y: torch.Tensor, val_x, val_y, seed: int
) -> dict[str, Any]:
    """The budget's linear-probe recipe (MAE's head and LARS schedule) on cached features: the loop of
    ``downstream.in1k.linear_probe`` (its head, optimizer and training function), fed with the CLIP tower's
    features instead of an encoder file's."""
    from downstream.in1k.linear_probe import build_probe_optimizer, single_thread, train_probe_head
    from downstream.in1k.models import probe_head
    from downstream.in1k.recipes import resolve_recipe

    r = resolve_recipe(cfg, "linear_probe", "mae")
    batch = r["batch_size"]
    steps_per_epoch = len(train_x) // batch
    lr = r["base_lr"] * batch / 256
    num_classes = int(max(train_y.max(), val_y.max())) + 1
    with single_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = probe_head(train_x.shape[1], num_classes, r["head_init_std"])
        optimizer = build_probe_optimizer(head.parameters(), r, lr)
        history = train_probe_head(
            head, _cached(train_x, train_y, batch, r["epochs"], seed), optimizer, r, lr, steps_per_epoch
        )
    head.eval()
    with torch.no_grad():
        metrics = topk(head(val_x), val_y)
    recipe = {**r, "lr": lr, "steps_per_epoch": steps_per_epoch, "total_steps": steps_per_epoch * r["epochs"]}
    return {"metrics": metrics, "history": history, "recipe": recipe}


def _cached(x: torch.Tensor, y: torch.Tensor, batch: int, epochs: int, seed: int):
    for _, idx in batches(len(x), batch, epochs, seed):
        yield x[idx], y[idx]


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
    return Teacher(path, key, record, cost_fields(rec.cost), dict(rec.metrics))


def cost_fields(cost: dict[str, Any]) -> dict[str, float]:
    """The teacher's training cost as the fields a pretraining record carries (``teacher_*``)."""
    return {f"teacher_{k}": float(cost[k]) for k in ("flops_per_image", "total_flops", "wall_s") if k in cost}


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
    model, stats = train_clip(cfg, train, progress=progress)

    eval_start = time.perf_counter()
    zs = zero_shot(model, name, val)
    train_x, _ = image_features(model.visual, train.images)
    val_x, _ = image_features(model.visual, val.images)
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
    save_clip(model, path, meta)
    sha = _file_sha256(path)
    recipe = teacher_recipe(cfg)
    prov = provenance(
        config={"teacher": name, "recipe": recipe, "model_cfg": meta["model_cfg"]},
        dataset_manifest_hash=data.manifest_hash,
        world_size=1,
        batch_size=recipe["batch_size"],
        precision="fp32",
        seed=TEACHER_SEED,
        code_hash=files_hash(teacher_code_files()),
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
    return Teacher(path, key, record, cost_fields(cost), metrics)


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
def uses_clip_teacher(method: str) -> bool:
    from methods.registry import get_spec

    return bool(getattr(get_spec(method).cls, "uses_clip_teacher", False))


def teacher_inputs(
    method: str, cfg: Config, method_cfg: dict[str, Any], work_root: str | Path, data: Any = None
) -> Teacher | None:
    """The CLIP teacher a method trains with (None for methods without one).

    SynthScenes budgets: the budget's trained teacher (``ensure_teacher``: built first when missing), unless
    the method config names a file. Real-data budgets: the file the method config names, by default
    ``checkpoints/clip/ViT-B-16.pt`` under the repository; when it is absent this stops with one line naming
    the file and where to put it.
    """
    from reproduce.data import is_synthscenes

    if not uses_clip_teacher(method):
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
    main()
