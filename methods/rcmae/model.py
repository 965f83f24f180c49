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

from methods.base import check_choice
from methods.ema import EMATeacher, Networks, cosine_momentum
from methods.mae.model import MAE
from methods.masking import Masking, masked_mean

SCHEDULES = ("code", "paper")


class RCMAE(MAE):
    exports_ema = True  # the official fine-tuning and linear-probe scripts load ``--checkpoint_key teacher``

    def __init__(
        self, gamma: float = 1.0, momentum_teacher: float = 0.996, momentum_schedule: str = "code", **arch
    ) -> None:
        super().__init__(**arch)
        self.gamma = gamma
        self.momentum_teacher = momentum_teacher
        self.momentum_schedule = check_choice("momentum_schedule", momentum_schedule, SCHEDULES)
        # an exact copy of the freshly initialised student (run_pretrain.py loads the student's state into it)
        self.teacher = EMATeacher(self.student())

    def student(self) -> Networks:
        """The student's encoder and decoder under the teacher's module names (a view; nothing is copied)."""
        return Networks(encoder=self.encoder, decoder=self.decoder)

    # ---- 1. the teacher's reconstruction, with the student's mask, as a second target -----------------
    @torch.no_grad()
    def teacher_reconstruction(self, imgs: torch.Tensor, masking: Masking) -> torch.Tensor:
        """imgs [B, 3, H, W] -> the teacher's pred [B, N, p*p*3] from the student's visible patches."""
        teacher = self.teacher.module
        return teacher.decoder(teacher.encoder.forward_visible(imgs, masking.ids_keep), masking.ids_restore)

    def forward_consistency(
        self, pred: torch.Tensor, pred_teacher: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Per-patch MSE between the student's and the (stop-gradient) teacher's reconstructions, averaged
        over the masked patches only, in the decoder's output space (normalised pixels)."""
        return masked_mean(((pred - pred_teacher.detach()) ** 2).mean(dim=-1), mask)

    def loss(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        masking = self.masking(images, mask, sample_ids)
        pred = self.forward_decoder(self.forward_encoder(images, masking.ids_keep), masking.ids_restore)
        pred_teacher = self.teacher_reconstruction(images, masking)
        return {
            "loss_rec": self.forward_loss(images, pred, masking.mask),
            # L = L_rec + gamma * L_cons; the weighted term is its own key, so mmengine sums exactly L
            "loss_cons": self.gamma * self.forward_consistency(pred, pred_teacher, masking.mask),
        }

    # ---- 2. the mean teacher follows the student --------------------------------------------------------
    def ema(self) -> tuple[EMATeacher, Networks]:
        # the official loop updates after every iteration (every micro-batch, even when gradient
        # accumulation skips the optimizer step); the harness calls after_train_step once per iteration
        return self.teacher, self.student()

    def momentum(self) -> float:
        """Cosine from the base m to 1 over the run (DINO's ``cosine_scheduler``). The official engine indexes
        it with ``data_iter_step``, the step within the epoch, so every epoch replays the first epoch's slice
        and m stays near the base ('code', the default); 'paper' indexes it with the global step. The base is
        the harness's ``teacher_momentum`` when set, else ``momentum_teacher`` (0.996)."""
        p = self.progress
        step = p.step
        if self.momentum_schedule == "code":
            # steps per epoch: exact when the run is a whole number of epochs (equalize='epochs')
            step = p.step % max(p.max_steps // max(p.max_epochs, 1), 1)
        return cosine_momentum(step, p.max_steps, self.budget_momentum(self.momentum_teacher))
