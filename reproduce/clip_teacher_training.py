"""The CLIP teacher's training: the small open_clip model of a SynthScenes budget (CMT-MAE's teacher at
micro/tiny), trained from scratch on the SynthScenes train captions with open_clip's contrastive loss
(``ClipLoss``) and the budget's ``clip_teacher`` recipe, then evaluated on the val split: zero-shot
top-1/top-5 (one prompt ensemble per class name) and the linear probe of its CLS feature.

The model is the budget's config in ``methods/clip_configs/synthclip-<arch>.json`` (the student's image and
patch size, so the two patch grids are equal); the trained module CMT-MAE reads is ``methods.clip_teacher``.
Where the trained file lives, when it is reused and what is recorded about it:
``reproduce/clip_teacher_files.py``.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from PIL import Image

from methods.clip_teacher import CLIP_MEAN, CLIP_STD

#: the seed the teacher trains with (one teacher per budget)
TEACHER_SEED = 0


class TeacherError(SystemExit):
    """A teacher that cannot be provided; its message is the one line to act on."""


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
    from downstream.recipe import resolve_recipe

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
