"""HPM: Hard Patches Mining for Masked Image Modeling (Wang, Song, Fan, Wang, Xie, Zhang; CVPR 2023).

MAE that also learns where it is bad. A loss predictor (a second decoder, as large as the reconstructor,
reading the same decoder input) predicts each patch's reconstruction loss; it is trained on the masked patches
to rank them as the true (detached) per-patch losses rank (the relative objective). An EMA copy of the whole
model runs on the full, unmasked image to predict the loss of every patch, and the mask is the hardest
predicted patches plus a random fill, the hard share growing with the epoch (easy to hard).

As ``models_mae_learn_loss.py`` and ``engine_pretrain.py`` of Haochen-Wang409/HPM@c15ae90; see README.md for
the fidelity table.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from methods.backbone import init_mae_
from methods.base import check_choice, check_fraction
from methods.decoder import decoder_blocks
from methods.ema import EMATeacher, Networks
from methods.mae.model import MAE
from methods.masking import Masking, ids_from_mask, mask_from_scores, num_masked

OBJECTIVES = ("relative", "absolute")
PIXEL_TARGETS = ("pixels", "norm_pixels", "budget")
CURRICULA = ("linear", "constant")
SCHEDULES = ("budget", "code")


class LossPredictor(nn.Module):
    """The loss predictor (official ``decoder_blocks_losspred``, ``decoder_norm_losspred``,
    ``decoder_pred_losspred``): blocks as deep and wide as the reconstructor's, a norm and a Linear to p*p*3,
    whose output is averaged to one score per patch. It reads the reconstructor's input sequence (shared
    ``decoder_embed``, mask token and position embedding)."""

    def __init__(self, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float, out_dim: int) -> None:
        super().__init__()
        self.blocks, self.norm = decoder_blocks(embed_dim, depth, num_heads, mlp_ratio)
        self.pred = nn.Linear(embed_dim, out_dim)
        self.apply(init_mae_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder input [B, 1 + N, Dd] -> predicted loss per patch [B, N] (cls dropped)."""
        for blk in self.blocks:
            x = blk(x)
        # averaged in float32: under bf16 autocast a bf16 mean would leave many exact ties between patches
        return self.pred(self.norm(x))[:, 1:].float().mean(dim=-1)


class HPM(MAE):
    def __init__(
        self,
        objective: str = "relative",
        pixel_target: str = "pixels",
        hard_ratio: float = 0.5,
        curriculum: str = "linear",
        momentum_schedule: str = "budget",
        **arch,
    ) -> None:
        super().__init__(**arch)
        self.objective = check_choice("objective", objective, OBJECTIVES)
        if check_choice("pixel_target", pixel_target, PIXEL_TARGETS) != "budget":
            self.norm_pix_loss = pixel_target == "norm_pixels"  # the method's target replaces the budget's
        self.hard_ratio = check_fraction("hard_ratio", hard_ratio)
        self.curriculum = check_choice("curriculum", curriculum, CURRICULA)
        self.momentum_schedule = check_choice("momentum_schedule", momentum_schedule, SCHEDULES)
        self.loss_predictor = LossPredictor(
            self.decoder_embed_dim, self.decoder_depth, self.decoder_num_heads, self.mlp_ratio, self.patch_dim
        )
        # timm's ModelEma: a deep copy of the freshly built model, frozen, in eval mode
        self.teacher = EMATeacher(self.student())

    def student(self) -> Networks:
        """The trained networks under the EMA's module names (a view; nothing is copied)."""
        return Networks(encoder=self.encoder, decoder=self.decoder, loss_predictor=self.loss_predictor)

    # ---- 1. the mask: hardest predicted patches plus a random fill ------------------------------------
    def hard_fraction(self) -> float:
        """alpha_t, the share of the masked patches that are the hardest (the code's ``keep_ratio``):
        ``hard_ratio * (epoch + 1) / epochs`` in the code's float order; a pure function of the progress."""
        if self.curriculum == "constant":
            return self.hard_ratio
        p = self.progress
        return min(float((p.epoch + 1) / max(p.max_epochs, 1)) * self.hard_ratio, 1.0)

    def num_hard(self) -> int:
        """K_h = int(N_m * alpha_t): the hardest patches forced into the mask (0 early on: a random mask)."""
        return int(num_masked(self.num_patches, self.mask_ratio) * self.hard_fraction())

    @torch.no_grad()
    def predict_losses(self, images: torch.Tensor) -> torch.Tensor:
        """The EMA model's predicted loss of every patch of the full, unmasked image, [B, N] (no gradient)."""
        ema = self.teacher.module
        everything = torch.arange(self.num_patches, device=images.device).expand(len(images), -1)
        return ema.loss_predictor(ema.decoder.embed_tokens(ema.encoder.forward_visible(images), everything))

    def sample_mask(self, images: torch.Tensor, sample_ids: torch.Tensor | None = None) -> Masking:
        """MAE's masked count N_m: the K_h patches the EMA predicts hardest, then N_m - K_h drawn uniformly
        from the rest with the keyed per-sample noise (the code shuffles with NumPy's global RNG)."""
        noise = self.mask_noise(images, sample_ids)
        n_hard = self.num_hard()
        predicted = self.predict_losses(images) if n_hard > 0 else None  # unused when K_h = 0: skipped
        return ids_from_mask(
            hpm_mask(predicted, noise, num_masked(self.num_patches, self.mask_ratio), n_hard)
        )

    # ---- 2. reconstruction and loss prediction -------------------------------------------------------
    def forward_decoders(
        self, latent: torch.Tensor, ids_restore: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """latent [B, 1 + K, D] -> (reconstruction [B, N, p*p*3], predicted loss [B, N]), in patch order.

        The official decoder does not unshuffle: its sequence is [cls; visible; mask tokens], each with its
        own position embedding. Attention is permutation-equivariant, so the patch-order sequence used here
        gives each patch the same output; the official ``[:, -mask_num:]`` slices are ``[mask]`` here.
        """
        x = self.decoder.embed_tokens(latent, ids_restore)  # one input for both decoders
        return self.decoder.predict(x), self.loss_predictor(x)

    def forward_learning_loss(self, scores: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """The loss predictor's objective on the masked patches: scores, losses [B, M] (losses detached)."""
        return (relative_loss if self.objective == "relative" else absolute_loss)(scores, losses)

    def loss(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        masking = self.masking(images, mask, sample_ids)
        pred, scores = self.forward_decoders(
            self.forward_encoder(images, masking.ids_keep), masking.ids_restore
        )
        per_patch = self.patch_losses(images, pred)  # [B, N], the code's ``matrix``
        B, m = len(images), masking.mask
        # the masked patches of each image, in patch order: [B, N_m]
        per_patch, scores = per_patch[m].reshape(B, -1), scores[m].reshape(B, -1)
        return {
            "loss_rec": per_patch.mean(),  # the code's loss.mean() over masked patches and pixels
            "loss_learn": self.forward_learning_loss(scores, per_patch.detach()),  # weight 1, as the code
        }

    # ---- 3. the EMA model follows the trained one ------------------------------------------------------
    def ema(self) -> tuple[EMATeacher, Networks]:
        # the code updates the EMA after every optimizer step (inside the accum_iter condition)
        return self.teacher, self.student()

    def momentum(self) -> float:
        """The code sets timm ModelEma's decay once per epoch: 0.999 + epoch / 100 * (0.9999 - 0.999) for the
        first 100 epochs, then 0.9999. With ``momentum_schedule='budget'`` the harness's ``teacher_momentum``
        (the budget's EMA rule) replaces it."""
        code = code_momentum(self.progress.epoch)
        return self.budget_momentum(code) if self.momentum_schedule == "budget" else code


def code_momentum(epoch: int) -> float:
    """The official EMA decay of an epoch (``engine_pretrain.train_one_epoch``)."""
    return 0.999 + epoch / 100 * (0.9999 - 0.999) if epoch < 100 else 0.9999


def hpm_mask(predicted: torch.Tensor | None, noise: torch.Tensor, n_masked: int, n_hard: int) -> torch.Tensor:
    """bool [B, N], True = masked: the ``n_hard`` patches with the highest predicted loss, then the
    ``n_masked - n_hard`` patches with the largest noise among the rest (uniformly random for uniform noise).

    With ``n_hard = 0`` this is MAE's random masking of the same noise (the largest noise is removed).
    """
    if not 0 <= n_hard <= n_masked:
        raise ValueError(f"need 0 <= hard patches ({n_hard}) <= masked patches ({n_masked})")
    scores = noise
    if n_hard > 0:
        if predicted is None:
            raise ValueError("hard patches need predicted losses")
        scores = noise.masked_fill(mask_from_scores(predicted, n_hard), float("inf"))
    return mask_from_scores(scores, n_masked)


def relative_loss(scores: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """Pairwise ranking loss (``forward_learning_loss(relative=True)``): for every ordered pair (a, b) of
    patches of one image with different losses, binary cross-entropy of sigma(s_b - s_a) against
    1(l_b > l_a), eps 1e-6 inside the logs; summed over all pairs of all images, divided by the valid pairs.

    scores, losses [B, M] -> scalar. Computed in float32.
    """
    scores, losses = scores.float(), losses.float()
    positive = losses.unsqueeze(1) > losses.unsqueeze(2)  # [B, a, b]: l_b > l_a
    negative = losses.unsqueeze(1) < losses.unsqueeze(2)
    p = torch.sigmoid(scores.unsqueeze(1) - scores.unsqueeze(2))  # sigma(s_b - s_a)
    loss = -(positive * torch.log(p + 1e-6)) - negative * torch.log(1 - p + 1e-6)
    return loss.sum() / (positive | negative).sum()


def absolute_loss(scores: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """``forward_learning_loss(relative=False)``: standardise the losses per image (unbiased variance, eps
    1e-6), then the mean squared error to the scores. scores, losses [B, M] -> scalar, in float32."""
    scores, losses = scores.float(), losses.float()
    target = (losses - losses.mean(dim=1, keepdim=True)) / (losses.var(dim=1, keepdim=True) + 1.0e-6) ** 0.5
    return ((scores - target) ** 2).mean()
