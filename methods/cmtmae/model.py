"""CMT-MAE: The Dynamic Duo of Collaborative Masking and Target for Advanced Masked Autoencoder Learning
(Shentong Mo, AAAI 2025, arXiv 2412.17566).

An MAE guided by two networks that see the full image: a frozen CLIP image encoder (the teacher) and a
momentum (EMA) copy of the student's encoder. Each gives a CLS->patch attention map (A^t, A^s, last block,
head-averaged, renormalised over the patches) and per-patch features (f^t, f^s). The collaborative map
A^c = (1 - alpha) A^t + alpha A^s decides which patches are masked; the decoder's output of the masked patches
goes through two linear heads, one regressing f^t and one f^s, weighted (1 - alpha) and alpha. Stage 1 is
teacher-only (alpha = 0), stage 2 collaborative; alpha is a pure function of the global step.

No official code exists: the equations are a reconstruction from the paper's abstract and third-party
summaries, made specific with MILAN (zejiangh/MILAN@7dcfe0f), the CLIP-teacher MAE CMT-MAE builds on; every
open choice is a config key. README.md lists the sources and the fidelity table.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from methods.backbone import init_mae_
from methods.base import check_choice, check_fraction
from methods.clip_configs import config_for_grid
from methods.clip_teacher import TARGETS, CLIPTeacher, build_random_clip, clip_teacher_from_file
from methods.decoder import MAEDecoder
from methods.ema import EMATeacher, cosine_momentum
from methods.mae.model import MAE
from methods.masking import Masking, ids_from_mask, mask_from_scores, masked_mean, num_masked, random_masking

ALPHA_SCHEDULES = ("step", "linear")
MASK_SOURCES = ("collaborative", "teacher", "student", "random")
MASK_DIRECTIONS = ("keep_high", "mask_high")
MASK_SAMPLINGS = ("sample", "topk")
TARGET_SOURCES = ("both", "teacher", "student", "pixels")
FEATURE_LOSSES = ("cosine", "mse")
LOSS_ON = ("masked", "all")
MOMENTUM_SCHEDULES = ("budget", "constant", "cosine")
EXPORTS = ("student", "momentum")


class Guidance(NamedTuple):
    """What the teacher and the momentum student say about the full image (no gradient)."""

    attn_t: torch.Tensor | None  # [B, N], renormalised to sum 1 over the patches
    feat_t: torch.Tensor | None  # [B, N, Dt]
    attn_s: torch.Tensor | None  # [B, N], renormalised
    feat_s: torch.Tensor | None  # [B, N, D]


def renormalise(attn: torch.Tensor) -> torch.Tensor:
    """[B, N] non-negative -> each row divided by its sum (the CLS column is already dropped)."""
    return attn / attn.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def collaborative_map(attn_t: torch.Tensor | None, attn_s: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """A^c = (1 - alpha) renorm(A^t) + alpha renorm(A^s); a missing map must have weight 0."""
    if alpha == 0.0 or attn_s is None:
        if alpha != 0.0:
            raise ValueError(f"alpha = {alpha} needs the student's attention")
        return renormalise(attn_t)
    if alpha == 1.0 or attn_t is None:
        if alpha != 1.0:
            raise ValueError(f"alpha = {alpha} needs the teacher's attention")
        return renormalise(attn_s)
    return (1.0 - alpha) * renormalise(attn_t) + alpha * renormalise(attn_s)


def attention_mask(
    attn: torch.Tensor,
    noise: torch.Tensor,
    n_masked: int,
    direction: str = "keep_high",
    sampling: str = "sample",
) -> torch.Tensor:
    """bool [B, N], True = masked, exactly ``n_masked`` per row, from an attention map [B, N] (rows sum to 1).

    ``sample``: patches ordered by sampling without replacement with probability proportional to the map
    (MILAN's ``torch.multinomial(attn, N, replacement=False)``), drawn from the keyed uniform ``noise`` with
    the Gumbel-top-k trick (log p + Gumbel(u) sorted descending has the same law), so masks stay a function
    of (seed, step, sample id). ``topk``: ordered by the map itself. ``keep_high``: the first N - n_masked of
    that order stay visible (MILAN: "large is keep"); ``mask_high``: the first n_masked are masked.
    """
    if sampling == "sample":
        u = noise.clamp(1e-12, 1.0 - 1e-7)
        scores = attn.clamp_min(1e-30).log() - (-u.log()).log()  # log p + Gumbel
    elif sampling == "topk":
        scores = attn
    else:
        raise ValueError(f"mask_sampling must be one of {MASK_SAMPLINGS}, got {sampling!r}")
    if direction == "keep_high":
        return mask_from_scores(scores, n_masked, largest=False)
    if direction == "mask_high":
        return mask_from_scores(scores, n_masked, largest=True)
    raise ValueError(f"mask_direction must be one of {MASK_DIRECTIONS}, got {direction!r}")


def feature_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Per-patch loss [B, N] between predictions and (detached) targets [B, N, D].

    ``cosine``: 2 - 2 cos(pred, target) (MILAN's ``forward_loss``: both L2-normalised, so the target's own
    normalisation does not matter); ``mse``: mean squared error to the layer-normalised target (no affine)."""
    target = target.detach().float()
    pred = pred.float()
    if kind == "cosine":
        return 2.0 - 2.0 * (F.normalize(pred, dim=-1) * F.normalize(target, dim=-1)).sum(dim=-1)
    if kind == "mse":
        target = F.layer_norm(target, target.shape[-1:], eps=1e-6)
        return ((pred - target) ** 2).mean(dim=-1)
    raise ValueError(f"feature_loss must be one of {FEATURE_LOSSES}, got {kind!r}")


def stage_alpha(
    step: int, max_steps: int, alpha: float, stage1_fraction: float, schedule: str = "step"
) -> float:
    """alpha at a global step: 0 for the first ``round(stage1_fraction * max_steps)`` steps (stage 1), then
    ``alpha`` ('step') or a linear ramp reaching ``alpha`` at the last step ('linear'). A pure function."""
    stage1 = round(stage1_fraction * max_steps)
    if step < stage1 or alpha == 0.0:
        return 0.0
    if schedule == "step":
        return float(alpha)
    if schedule == "linear":
        return float(alpha) * min(1.0, (step - stage1 + 1) / max(max_steps - stage1, 1))
    raise ValueError(f"alpha_schedule must be one of {ALPHA_SCHEDULES}, got {schedule!r}")


class CMTMAE(MAE):
    uses_clip_teacher = True  # the harness passes the CLIP teacher's file as ``teacher_file``

    def __init__(
        self,
        teacher_file: str | None = None,
        teacher_target: str = "projected",
        attention_block: int = -1,
        alpha: float = 0.5,
        alpha_schedule: str = "step",
        stage1_fraction: float = 0.25,
        loss_alpha: float | None = None,
        mask_source: str = "collaborative",
        mask_direction: str = "keep_high",
        mask_sampling: str = "sample",
        target: str = "both",
        feature_loss: str = "cosine",
        loss_on: str = "masked",
        momentum_schedule: str = "budget",
        momentum: float = 0.996,
        export: str = "student",
        **arch,
    ) -> None:
        super().__init__(**arch)  # the encoder, then the decoder (``build_decoder``)
        self.teacher_target = check_choice("teacher_target", teacher_target, TARGETS)
        self.attention_block = attention_block
        self.alpha_value = check_fraction("alpha", alpha)
        self.alpha_schedule = check_choice("alpha_schedule", alpha_schedule, ALPHA_SCHEDULES)
        self.stage1_fraction = check_fraction("stage1_fraction", stage1_fraction)
        self.loss_alpha = None if loss_alpha is None else check_fraction("loss_alpha", loss_alpha)
        self.mask_source = check_choice("mask_source", mask_source, MASK_SOURCES)
        self.mask_direction = check_choice("mask_direction", mask_direction, MASK_DIRECTIONS)
        self.mask_sampling = check_choice("mask_sampling", mask_sampling, MASK_SAMPLINGS)
        self.target = check_choice("target", target, TARGET_SOURCES)
        self.feature_loss = check_choice("feature_loss", feature_loss, FEATURE_LOSSES)
        self.loss_on = check_choice("loss_on", loss_on, LOSS_ON)
        self.momentum_schedule = check_choice("momentum_schedule", momentum_schedule, MOMENTUM_SCHEDULES)
        self.momentum_base = check_fraction("momentum", momentum)
        self.exports_ema = check_choice("export", export, EXPORTS) == "momentum"

        # Which networks this configuration needs. alpha is 0 throughout when alpha = 0 or stage 1 is the
        # whole run: the student branch would get weight 0 forever, so it is not built (MILAN-like).
        collaborative = alpha > 0.0 and stage1_fraction < 1.0
        self.uses_student_target = target == "student" or (target == "both" and self._loss_can_use_student())
        self.uses_teacher_target = target in ("teacher", "both")
        student_masks = mask_source == "student" or (mask_source == "collaborative" and collaborative)
        self.needs_student = student_masks or self.uses_student_target
        self.needs_teacher = mask_source in ("teacher", "collaborative") or self.uses_teacher_target

        self.teacher: CLIPTeacher | None = None
        self.teacher_meta: dict = {}
        if self.needs_teacher:
            self.teacher, self.teacher_meta = self._build_teacher(teacher_file)
        self.momentum_encoder: EMATeacher | None = EMATeacher(self.encoder) if self.needs_student else None

        dd = self.decoder_embed_dim
        self.head_t = (
            nn.Linear(dd, self.teacher.feature_dim(teacher_target)) if self.uses_teacher_target else None
        )
        self.head_s = nn.Linear(dd, self.encoder.embed_dim) if self.uses_student_target else None
        self.head_pix = nn.Linear(dd, self.patch_dim) if target == "pixels" else None
        for head in (self.head_t, self.head_s, self.head_pix):
            if head is not None:
                head.apply(init_mae_)

        # the teacher's training, for the pretraining record (Table 1's "Teacher training" column)
        cost = self.teacher_meta.get("cost", {})
        keys = ("flops_per_image", "total_flops", "wall_s")
        self.extra_cost = {f"teacher_{k}": float(cost[k]) for k in keys if k in cost}
        if self.teacher is not None:
            keep = ("format", "model_name", "teacher_key", "budget", "metrics", "cost", "source")
            meta = {k: self.teacher_meta[k] for k in keep if k in self.teacher_meta}
            self.extra_record = {"teacher": {"file": teacher_file, **meta}}

    def build_decoder(self, out_dim: int | None = None) -> MAEDecoder:
        """MAE's decoder up to its final norm: the heads predict from its features z (``features``).

        It is built with a 1-wide prediction layer that is then removed, because that layer draws from the
        global RNG: at construction, before the decoder's own initialisation (mask token, xavier), and in it.
        Without those draws the decoder and everything built after it (the random CLIP stand-in, the heads)
        would be initialised differently from every CMT-MAE run recorded so far (tests/golden/traces).
        """
        return super().build_decoder(out_dim=1).without_prediction()

    def _loss_can_use_student(self) -> bool:
        a = self.alpha_value if self.loss_alpha is None else self.loss_alpha
        return a > 0.0 and self.stage1_fraction < 1.0

    # ---- 0. the teacher ------------------------------------------------------------------------------
    def _build_teacher(self, teacher_file: str | None) -> tuple[CLIPTeacher, dict]:
        if teacher_file is not None:
            teacher, meta = clip_teacher_from_file(teacher_file, block=self.attention_block)
        else:
            name = config_for_grid(self.img_size, self.patch_size)
            warnings.warn(
                f"CMT-MAE built with a RANDOMLY initialised CLIP teacher ({name}): for tests and cost probes "
                "only; reproduce/pretrain.py passes the trained teacher (teacher_file)",
                stacklevel=3,
            )
            teacher, meta = CLIPTeacher(build_random_clip(name).visual, block=self.attention_block), {}
        grid = (self.encoder.grid_size, self.encoder.grid_size)
        if teacher.grid_size != grid:
            raise ValueError(
                f"the teacher's patch grid {teacher.grid_size} differs from the student's {grid}: build the "
                "teacher at the student's image and patch size"
            )
        return teacher, meta

    # ---- 1. alpha: a pure function of the global step --------------------------------------------------
    def alpha(self) -> float:
        """alpha for masking (A^c) at the current step."""
        p = self.progress
        return stage_alpha(p.step, p.max_steps, self.alpha_value, self.stage1_fraction, self.alpha_schedule)

    def loss_weight(self) -> float:
        """alpha for the loss: the masking alpha unless ``loss_alpha`` sets stage 2's own value."""
        if self.loss_alpha is None:
            return self.alpha()
        p = self.progress
        return stage_alpha(p.step, p.max_steps, self.loss_alpha, self.stage1_fraction, self.alpha_schedule)

    # ---- 2. guidance: the teacher and the momentum student on the full image ---------------------------
    @torch.no_grad()
    def guidance(self, images: torch.Tensor) -> Guidance:
        attn_t = feat_t = attn_s = feat_s = None
        if self.teacher is not None:
            per_head, tokens, projected = self.teacher(images)
            attn_t = renormalise(per_head.float().mean(dim=1))  # float32: no bf16 ties under autocast
            feat_t = projected if self.teacher_target == "projected" else tokens
            if self.teacher_target == "projected":
                feat_t = F.normalize(feat_t, dim=-1)  # MILAN's target: L2-normalised joint-space tokens
        if self.momentum_encoder is not None:
            tokens, attn = self.momentum_encoder.module.forward_with_attention(images, self.attention_block)
            attn_s, feat_s = renormalise(attn.float()), tokens[:, 1:]
        return Guidance(attn_t, feat_t, attn_s, feat_s)

    def guided_map(self, g: Guidance, alpha: float) -> torch.Tensor:
        """The map the mask follows: A^c, or A^t / A^s alone for the single-source ablations."""
        if self.mask_source == "teacher":
            return renormalise(g.attn_t)
        if self.mask_source == "student":
            return renormalise(g.attn_s)
        return collaborative_map(g.attn_t, g.attn_s, alpha)

    def sample_mask(
        self, images: torch.Tensor, sample_ids: torch.Tensor | None = None, guidance: Guidance | None = None
    ) -> Masking:
        """The attention-guided mask; ``guidance`` is the step's (``loss`` computes it once for the mask
        and the targets), computed here when not given."""
        noise = self.mask_noise(images, sample_ids)
        if self.mask_source == "random":
            return random_masking(noise, self.mask_ratio)
        g = guidance if guidance is not None else self.guidance(images)
        attn = self.guided_map(g, self.alpha())
        n = num_masked(self.num_patches, self.mask_ratio)
        return ids_from_mask(attention_mask(attn, noise, n, self.mask_direction, self.mask_sampling))

    # ---- 3. the student: MAE's encoder and decoder features, two heads ---------------------------------
    def reduce(self, per_patch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over the masked patches ('masked') or over every patch ('all')."""
        return per_patch.mean() if self.loss_on == "all" else masked_mean(per_patch, mask)

    def loss(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        g = self.guidance(images)
        masking = self.masking(images, mask, sample_ids, guidance=g)
        z = self.decoder.features(self.forward_encoder(images, masking.ids_keep), masking.ids_restore)
        out: dict[str, torch.Tensor] = {"alpha": torch.tensor(self.alpha())}
        if self.target == "pixels":
            out["loss_rec"] = self.reduce(self.patch_losses(images, self.head_pix(z)), masking.mask)
            return out
        w = self.loss_weight() if self.target == "both" else float(self.target == "student")  # weight of L_s
        if self.head_t is not None:
            l_t = self.reduce(feature_loss(self.head_t(z), g.feat_t, self.feature_loss), masking.mask)
            out["loss_t"] = (1.0 - w) * l_t
        if self.head_s is not None:
            l_s = self.reduce(feature_loss(self.head_s(z), g.feat_s, self.feature_loss), masking.mask)
            out["loss_s"] = w * l_s  # weight 0 in stage 1: the graph (and a zero gradient) is still there
        return out

    # ---- 4. the momentum student follows the student's encoder -----------------------------------------
    def ema(self) -> tuple[EMATeacher, nn.Module] | None:
        return None if self.momentum_encoder is None else (self.momentum_encoder, self.encoder)

    def momentum(self) -> float:
        """'budget': the harness's ``teacher_momentum`` when set, else ``momentum``; 'constant': always
        ``momentum``; 'cosine': ``momentum`` -> 1 over the run."""
        if self.momentum_schedule == "budget":
            return self.budget_momentum(self.momentum_base)
        if self.momentum_schedule == "cosine":
            return cosine_momentum(self.progress.step, self.progress.max_steps, self.momentum_base)
        return self.momentum_base
