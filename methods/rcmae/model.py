"""RC-MAE: Exploring the Role of Mean Teachers in Self-supervised Masked Auto-Encoders (Lee et al., 2023).

MAE plus a mean teacher. The teacher is an EMA copy of the whole autoencoder (encoder and decoder); it sees
the student's image with the student's mask (the same visible set, "RC-MAE-S") and its reconstruction
becomes a second target: the student also regresses the teacher's prediction on the masked patches. After
each step the teacher moves towards the student. Downstream, the teacher's encoder is the one evaluated.

As ``models_rc.py`` and ``engine_pretrain.py::train_one_epoch`` of youngwanLEE/rc-mae@cf39823; see README.md
for the fidelity table.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from methods.backbone import ViT
from methods.base import MIMModel
from methods.decoder import MAEDecoder
from methods.masking import Masking
from methods.teachers import EMATeacher, cosine_momentum

SCHEDULES = ("code", "paper")


class Autoencoder(nn.Module):
    """Encoder + decoder as one module: the unit the teacher copies and the EMA walks over."""

    def __init__(self, encoder: ViT, decoder: MAEDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, imgs: torch.Tensor, masking: Masking) -> torch.Tensor:
        """imgs [B, 3, H, W] and a mask -> reconstruction [B, N, p*p*3] of every patch."""
        return self.decoder(self.encoder.forward_visible(imgs, masking.ids_keep), masking.ids_restore)


class RCMAE(MIMModel):
    def __init__(
        self, gamma: float = 1.0, momentum_teacher: float = 0.996, momentum_schedule: str = "code", **arch
    ) -> None:
        super().__init__(**arch)
        if momentum_schedule not in SCHEDULES:
            raise ValueError(f"momentum_schedule must be one of {SCHEDULES}, got {momentum_schedule!r}")
        self.gamma = gamma
        self.momentum_teacher = momentum_teacher
        self.momentum_schedule = momentum_schedule
        self.decoder = MAEDecoder(
            num_patches=self.num_patches,
            encoder_dim=self.encoder.embed_dim,
            embed_dim=self.decoder_embed_dim,
            depth=self.decoder_depth,
            num_heads=self.decoder_num_heads,
            mlp_ratio=self.mlp_ratio,
            out_dim=self.patch_size**2 * self.encoder.patch_embed.proj.in_channels,
        )
        # The teacher starts as an exact copy of the freshly initialised student (run_pretrain.py loads the
        # student's state into it), is frozen and always in eval mode.
        self.teacher = EMATeacher(self.student())

    def student(self) -> Autoencoder:
        """The student's encoder and decoder under the teacher's module names (a view; no copy)."""
        return Autoencoder(self.encoder, self.decoder)

    # ---- 1. the student: plain MAE -------------------------------------------------------------------
    def forward_encoder(self, imgs: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """imgs [B, 3, H, W], ids_keep [B, K] -> latent [B, 1 + K, D] (visible patches only)."""
        return self.encoder.forward_visible(imgs, ids_keep)

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent [B, 1 + K, D] -> pred [B, N, p*p*3]: mask tokens fill the removed patches."""
        return self.decoder(latent, ids_restore)

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MAE's loss: per-patch MSE to the (normalised) pixels, averaged over the masked patches."""
        return masked_mean(((pred - self.pixel_target(imgs)) ** 2).mean(dim=-1), mask)

    # ---- 2. the teacher's reconstruction as a second target -------------------------------------------
    def forward_consistency(self, pred: torch.Tensor, pred_teacher: torch.Tensor, mask: torch.Tensor):
        """Per-patch MSE between the student's and the (stop-gradient) teacher's reconstructions, averaged
        over the masked patches only, in the decoder's output space (normalised pixels)."""
        return masked_mean(((pred - pred_teacher.detach()) ** 2).mean(dim=-1), mask)

    def loss(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        masking = self.masking(images, mask, sample_ids)
        pred = self.forward_decoder(self.forward_encoder(images, masking.ids_keep), masking.ids_restore)
        pred_teacher = self.teacher(images, masking)  # the same visible set as the student (no grad)
        return {
            "loss_rec": self.forward_loss(images, pred, masking.mask),
            # L = L_rec + gamma * L_cons; the weighted term is its own key, so mmengine sums exactly L
            "loss_cons": self.gamma * self.forward_consistency(pred, pred_teacher, masking.mask),
        }

    # ---- 3. the mean teacher ---------------------------------------------------------------------------
    def momentum(self) -> float:
        """m for the EMA after the current step (weight on the old teacher).

        Cosine from the base m to 1 over the run (DINO's ``cosine_scheduler``). The official engine indexes
        that array with ``data_iter_step``, the step within the epoch, so every epoch replays the first
        epoch's slice and m never leaves the neighbourhood of the base ('code', the default); 'paper' indexes
        it with the global step. The base is the harness's ``teacher_momentum`` (the budget's EMA rule) when
        set, else ``momentum_teacher`` (0.996).
        """
        base = self.momentum_teacher if self.teacher_momentum is None else self.teacher_momentum
        p = self.progress
        step = p.step
        if self.momentum_schedule == "code":
            # steps per epoch: exact when the run is a whole number of epochs (equalize='epochs')
            step = p.step % max(p.max_steps // max(p.max_epochs, 1), 1)
        return cosine_momentum(step, p.max_steps, base)

    def after_train_step(self) -> None:
        # The official loop updates the teacher after every iteration (every micro-batch, even when
        # gradient accumulation skips the optimizer step); the harness calls this once per iteration.
        self.teacher.update(self.student(), self.momentum())

    def export_encoder_state(self) -> dict[str, torch.Tensor]:
        """The TEACHER's encoder: the official fine-tuning and linear-probe scripts load
        ``--checkpoint_key teacher``."""
        return {k: v.detach().clone() for k, v in self.teacher.module.encoder.state_dict().items()}


def masked_mean(per_patch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """per_patch [B, N], mask [B, N] bool (True = masked) -> mean over the masked patches."""
    mask = mask.to(per_patch.dtype)
    return (per_patch * mask).sum() / mask.sum()
