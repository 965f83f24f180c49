"""``MIMModel``: what every method is, as the harness sees it (mmengine ``BaseModel``).

The contract (also in methods/README.md):

* built from an arch dict (an ``ARCHS`` entry with overrides, official MAE argument names) plus the
  method's own keys; ``self.encoder`` is the shared ``ViT`` (timm keys);
* ``loss(images, mask=None, sample_ids=None)`` returns mmengine's loss dict: one ``loss_*`` key per term,
  no total (``parse_losses`` sums every key containing ``loss``); other keys are logged scalars;
* ``mask`` (bool [B, N], True = masked) overrides the method's mask generator; otherwise the mask noise comes
  from ``per_sample_noise(self.seed, self.progress.step, sample_ids, N)``;
* ``forward(inputs, data_samples, mode)``: ``'loss'`` -> ``loss(inputs, sample_ids=...)`` with the sample
  indices read from ``data_samples``; ``'tensor'`` -> encoder tokens [B, 1 + N, D];
* ``set_progress(...)`` before every step; schedules inside a method are pure functions of
  ``self.progress`` (a ``TrainingProgress``); ``after_train_step()`` after every optimizer step (it moves
  the method's EMA copy, if it has one); ``seed`` and ``teacher_momentum`` are attributes the harness sets;
* ``param_groups_for_weight_decay(wd)``: the official MAE split (equivalently mmengine's
  ``paramwise_cfg=dict(flat_decay_mult=0.0)``, ``PARAMWISE_CFG`` below);
* ``export_encoder_state()``: the encoder tensors to export (the EMA copy's with ``exports_ema``);
* what a method declares to the harness: ``uses_clip_teacher`` (class attribute: the harness supplies a CLIP
  teacher file as ``teacher_file``), ``extra_cost`` and ``extra_record`` (dicts merged into the pretraining
  record's ``cost`` and ``extra``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn as nn
from mmengine.model import BaseModel

from methods.backbone import ViT
from methods.ema import EMATeacher
from methods.masking import Masking, ids_from_mask, per_sample_noise, random_masking

#: mmengine optimizer-wrapper ``paramwise_cfg`` equal to ``param_groups_for_weight_decay``: every 1-D
#: parameter (biases, LayerNorm) gets no decay; cls and mask tokens ([1, 1, D]) are decayed.
PARAMWISE_CFG = dict(flat_decay_mult=0.0)

T = TypeVar("T")


@dataclass
class TrainingProgress:
    """Where training is; set by the harness before every step (``set_progress``)."""

    step: int = 0  # global optimizer step, 0-based
    max_steps: int = 1
    epoch: int = 0
    max_epochs: int = 1

    @property
    def fraction(self) -> float:
        """step / max_steps, in [0, 1]."""
        return min(max(self.step / max(self.max_steps, 1), 0.0), 1.0)


class MIMModel(BaseModel):
    """Base of every method: the shared encoder, masking, patchify, the loss contract and training hooks."""

    #: the harness trains a CLIP teacher (or finds OpenAI's) and passes its file as ``teacher_file``
    uses_clip_teacher: ClassVar[bool] = False
    #: export the EMA copy's encoder (``ema()``) instead of the trained one
    exports_ema: bool = False

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        mlp_ratio: float = 4.0,
        norm_pix_loss: bool = True,
        mask_ratio: float = 0.75,
        in_chans: int = 3,
        seed: int = 0,
        data_preprocessor: dict | nn.Module | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor)  # None -> mmengine's BaseDataPreprocessor
        self.encoder = ViT(img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio, in_chans)
        # the decoder-side arch keys, for subclasses that build decoders
        self.decoder_embed_dim = decoder_embed_dim
        self.decoder_depth = decoder_depth
        self.decoder_num_heads = decoder_num_heads
        self.mlp_ratio = mlp_ratio
        self.norm_pix_loss = norm_pix_loss
        self.mask_ratio = mask_ratio
        self.seed = seed  # keys the mask noise; set by the harness
        self.progress = TrainingProgress()
        # EMA momentum m (weight on the old teacher) chosen by the harness from the budget's rule; methods
        # with a teacher start their schedule from it, methods without one ignore it. None: the paper's m.
        self.teacher_momentum: float | None = None
        # merged by the harness into the pretraining record's ``cost`` / ``extra`` (e.g. a teacher's training)
        self.extra_cost: dict[str, float] = {}
        self.extra_record: dict[str, Any] = {}

    @property
    def img_size(self) -> int:
        return self.encoder.patch_embed.img_size[0]

    @property
    def patch_size(self) -> int:
        return self.encoder.patch_embed.patch_size[0]

    @property
    def num_patches(self) -> int:
        return self.encoder.num_patches

    @property
    def patch_dim(self) -> int:
        """Values of one patch of the pixel target: p * p * 3."""
        return self.patch_size**2 * self.encoder.patch_embed.proj.in_channels

    # ---- the loss contract --------------------------------------------------------------------------
    def loss(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """images [B, 3, H, W] (ImageNet-normalised) -> {'loss_<term>': scalar, ...}; no total key."""
        raise NotImplementedError

    def forward(
        self, inputs: torch.Tensor, data_samples: Any = None, mode: str = "loss"
    ) -> dict[str, torch.Tensor] | torch.Tensor:
        """mmengine's entry. ``data_samples`` carries the dataset indices of the batch (``sample_ids_of``)."""
        if mode == "loss":
            return self.loss(inputs, sample_ids=sample_ids_of(data_samples, len(inputs)))
        if mode == "tensor":
            return self.encoder.forward_features(inputs)  # [B, 1 + N, D]
        raise ValueError(f"{type(self).__name__}.forward: mode must be 'loss' or 'tensor', got {mode!r}")

    # ---- masking ------------------------------------------------------------------------------------
    def masking(
        self,
        images: torch.Tensor,
        mask: torch.Tensor | None = None,
        sample_ids: torch.Tensor | None = None,
        **generator_inputs: Any,
    ) -> Masking:
        """The given mask (bool [B, N], True = masked), or the method's own (``sample_mask``, which also
        receives ``generator_inputs``: what a method computed once per step for its masks and its loss)."""
        if mask is None:
            return self.sample_mask(images, sample_ids, **generator_inputs)
        if mask.shape != (len(images), self.num_patches):
            raise ValueError(
                f"mask must be [B, N] = {(len(images), self.num_patches)}, got {tuple(mask.shape)}"
            )
        return ids_from_mask(mask.to(images.device))

    def sample_mask(self, images: torch.Tensor, sample_ids: torch.Tensor | None = None) -> Masking:
        """The method's mask generator; MAE's is uniform random masking with per-sample keyed noise."""
        return random_masking(self.mask_noise(images, sample_ids), self.mask_ratio)

    def mask_noise(self, images: torch.Tensor, sample_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Uniform noise [B, N] keyed on (seed, global step, sample id); ids default to arange(B)."""
        if sample_ids is None:
            sample_ids = torch.arange(len(images))
        noise = per_sample_noise(self.seed, self.progress.step, sample_ids, self.num_patches)
        return noise.to(images.device)

    # ---- pixel targets ------------------------------------------------------------------------------
    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, N, p*p*3], patches in raster order, channels last within a patch (as MAE)."""
        p = self.patch_size
        B, C, H, W = imgs.shape
        x = imgs.reshape(B, C, H // p, p, W // p, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(B, (H // p) * (W // p), p * p * C)

    def pixel_target(self, imgs: torch.Tensor) -> torch.Tensor:
        """[B, N, p*p*3]; with ``norm_pix_loss`` each patch is standardised, (t - mean) / sqrt(var + 1e-6),
        var unbiased (torch's default), as official MAE."""
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        return target

    # ---- training hooks -----------------------------------------------------------------------------
    def set_progress(self, step: int, max_steps: int, epoch: int = 0, max_epochs: int = 1) -> None:
        self.progress = TrainingProgress(step=step, max_steps=max_steps, epoch=epoch, max_epochs=max_epochs)

    # ---- an EMA copy: RC-MAE's and HPM's teacher, CMT-MAE's momentum encoder ----------------------------
    def ema(self) -> tuple[EMATeacher, nn.Module] | None:
        """The method's EMA copy and the trained networks it follows (under the copy's module names), or
        None for a method without one."""
        return None

    def momentum(self) -> float:
        """m, the weight on the OLD copy, for the EMA update after the current step."""
        raise NotImplementedError(f"{type(self).__name__} has an EMA copy but no momentum()")

    def budget_momentum(self, paper: float) -> float:
        """The harness's ``teacher_momentum`` (the budget's EMA rule) when it set one, else the paper's m."""
        return paper if self.teacher_momentum is None else self.teacher_momentum

    def after_train_step(self) -> None:
        """Called by the harness after every optimizer step: the EMA copy moves towards the trained
        networks, ``copy = m * copy + (1 - m) * trained``."""
        if (ema := self.ema()) is not None:
            copy, trained = ema
            copy.update(trained, self.momentum())

    def init_weights(self) -> None:
        """No-op: a method initialises at construction, as the official code does. mmengine's Runner calls
        this before training; re-initialising there would draw new weights and desynchronise a teacher
        that was copied from its student at construction."""
        self._is_init = True

    # ---- optimizer and export -----------------------------------------------------------------------
    def param_groups_for_weight_decay(self, weight_decay: float) -> list[dict[str, Any]]:
        """Official MAE split: no decay for 1-D parameters and biases; all else (cls/mask tokens too)
        decayed; frozen tensors (fixed position embeddings, teachers) left out."""
        decay, no_decay = [], []
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
        return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]

    def export_encoder_state(self) -> dict[str, torch.Tensor]:
        """The encoder tensors (timm keys) written to the encoder file: the trained encoder, or with
        ``exports_ema`` the EMA copy's."""
        encoder = self.encoder
        if self.exports_ema and (ema := self.ema()) is not None:
            encoder = ema[0].copy_of(self.encoder, within=ema[1])
        return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def check_choice(name: str, value: T, allowed: Sequence[T]) -> T:
    """``value`` if it is one of ``allowed``; a ValueError naming the key otherwise."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def check_fraction(name: str, value: float) -> float:
    """``value`` if it is in [0, 1]; a ValueError naming the key otherwise."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def sample_ids_of(data_samples: Any, batch_size: int) -> torch.Tensor | None:
    """Dataset indices of a batch, from what the harness passes as ``data_samples``.

    Accepted: ``None`` (no ids: the masks fall back to arange(B) keyed on the step), a LongTensor [B], or a
    sequence of ints, of dicts with ``'sample_idx'``, or of objects with a ``sample_idx`` attribute
    (mmengine data samples keep it in their metainfo).
    """
    if data_samples is None:
        return None
    if isinstance(data_samples, torch.Tensor):
        ids = data_samples.long().reshape(-1)
    elif isinstance(data_samples, Sequence):
        ids = torch.tensor([_sample_idx(s) for s in data_samples], dtype=torch.long)
    else:
        raise TypeError(f"data_samples must be None, a LongTensor or a sequence, got {type(data_samples)}")
    if len(ids) != batch_size:
        raise ValueError(f"got {len(ids)} sample ids for a batch of {batch_size}")
    return ids


def _sample_idx(sample: Any) -> int:
    if isinstance(sample, (int, torch.Tensor)):
        return int(sample)
    if isinstance(sample, dict):
        return int(sample["sample_idx"])
    if hasattr(sample, "sample_idx"):
        return int(sample.sample_idx)
    raise TypeError(f"cannot read a sample index from {type(sample)} (expected int, dict or .sample_idx)")
