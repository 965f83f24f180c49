"""The shared ViT as a dense-prediction backbone, registered in mmsegmentation's and mmdetection's registries.

``MIMViT`` wraps ``methods.backbone.ViT`` (timm keys, so encoder files and converted official checkpoints load
with the one strict loader) and returns what the dense heads expect:

* ``pyramid='multilevel'`` (MAE/BEiT's UperNet protocol; Li et al. 2021's Mask R-CNN + FPN): the outputs of
  four blocks (``out_indices``, [3, 5, 7, 11] at depth 12), each rescaled to strides 4, 8, 16, 32 with BEiT's
  ops (2x transposed convolutions, identity, max-pooling);
* ``pyramid='last'`` (ViTDet): the last block's map at stride = patch size, for ``SimpleFeaturePyramid``.

The rescale factors are derived from the patch size (``pyramid_scales``): the usual [4, 2, 1, 0.5] is right
only for patch 16; with patch 8 it gives strides 2..16 and Mask R-CNN's anchors and RoI strides are then
silently wrong (nothing raises: found while calibrating the CPU budgets). mmseg's ``Feature2Pyramid`` accepts
only the factors 4/2/1/0.5/0.25, so patch 4 (0.125) needs this adapter's own rescaling.

Loading (``init_weights``) goes through ``methods.encoder_file.load_encoder`` with two declared transforms:
the position embedding is resampled to the crop's grid, and the file's final norm is dropped (the dense
protocols take block outputs before it, as BEiT/MAE's segmentation backbone and ViTDet). A renamed key, a
missing block or a wrong shape stops the run with the key named; ``load_report`` (sha256 of the loaded
tensors, transforms) goes into the run record. Inputs of any size that is a multiple of the patch size are
accepted: the position embedding is resampled to the input's grid on the fly (mmdet's test images are padded
to a multiple of 32, not cropped).

``window_size`` gives ViTDet's window attention: the blocks not in ``global_blocks`` attend within
non-overlapping windows (the token map padded with zeros after ``norm1``, as ViTDet). Window attention has no
place for the CLS token, so with windows it is dropped, as ViTDet does with MAE's checkpoints (its weight is
loaded but frozen and unused); without windows it runs through the blocks and is dropped at the outputs, as in
MAE's segmentation backbone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import BaseModule
from mmseg.registry import MODELS as MMSEG_MODELS
from timm.layers import LayerNorm2d, resample_abs_pos_embed
from timm.models.vision_transformer import Block

from methods.backbone import ViT, build_vit, resolve_arch
from methods.encoder_file import load_encoder, read_encoder

#: Output strides of the four pyramid levels every dense head here expects (UperNet; Mask R-CNN's anchors and
#: RoI extractor).
OUT_STRIDES = (4, 8, 16, 32)
#: The blocks MAE/BEiT's segmentation backbone and Li et al.'s detector take, by depth (0-based).
PAPER_OUT_INDICES = {12: (3, 5, 7, 11), 24: (7, 11, 15, 23)}


def pyramid_scales(patch_size: int, strides: Sequence[int] = OUT_STRIDES) -> list[float]:
    """Resize factor from the patch grid (stride ``patch_size``) to each output stride: patch 16 ->
    [4, 2, 1, 0.5], patch 8 -> [2, 1, 0.5, 0.25], patch 4 -> [1, 0.5, 0.25, 0.125]."""
    scales = []
    for stride in strides:
        scale = patch_size / stride
        if scale <= 0 or not math.log2(scale).is_integer():
            raise ValueError(
                f"patch size {patch_size} cannot reach stride {stride} by factors of 2 "
                f"(strides {list(strides)})"
            )
        scales.append(scale)
    return scales


def default_out_indices(depth: int) -> tuple[int, ...]:
    """MAE/BEiT's blocks at depth 12 and 24; otherwise four evenly spaced blocks ending with the last."""
    if depth in PAPER_OUT_INDICES:
        return PAPER_OUT_INDICES[depth]
    if depth < 4:
        raise ValueError(f"a four-level pyramid needs at least 4 blocks, the ViT has {depth}")
    return tuple(round((k + 1) * depth / 4) - 1 for k in range(4))


def _rescale(dim: int, scale: float, norm: str, shrink_channels: bool = False) -> tuple[nn.Module, int]:
    """(module, out channels) resizing an NCHW map by ``scale`` (a power of 2): transposed 2x2 convolutions
    with norm + GELU between them (BEiT's fpn1/fpn2, ViTDet's simple pyramid), identity, or max-pooling.
    ``shrink_channels`` halves the channels at each upsampling, as ViTDet."""
    if scale == 1:
        return nn.Identity(), dim
    if scale < 1:
        k = round(1 / scale)
        return nn.MaxPool2d(kernel_size=k, stride=k), dim
    layers: list[nn.Module] = []
    for i in range(round(math.log2(scale))):
        out = dim // 2 if shrink_channels else dim
        if i:
            layers += [nn.BatchNorm2d(dim) if norm == "BN" else LayerNorm2d(dim), nn.GELU()]
        layers.append(nn.ConvTranspose2d(dim, out, kernel_size=2, stride=2))
        dim = out
    return nn.Sequential(*layers), dim


def windowed_block(block: Block, x: torch.Tensor, grid: tuple[int, int], window: int) -> torch.Tensor:
    """One timm ``Block`` with its attention restricted to non-overlapping ``window`` x ``window`` windows of
    the ``grid`` (rows, cols) token map (no CLS token). As ViTDet's ``Block``: the map is zero-padded to a
    multiple of the window after ``norm1``, padded tokens take part as keys, and only the attention is
    windowed."""
    B, N, D = x.shape
    h, w = grid
    y = block.norm1(x).view(B, h, w, D)
    ph, pw = (-h) % window, (-w) % window
    y = F.pad(y, (0, 0, 0, pw, 0, ph))
    H, W = h + ph, w + pw
    y = y.view(B, H // window, window, W // window, window, D).permute(0, 1, 3, 2, 4, 5)
    y = block.attn(y.reshape(-1, window * window, D))
    y = y.view(B, H // window, W // window, window, window, D).permute(0, 1, 3, 2, 4, 5)
    y = y.reshape(B, H, W, D)[:, :h, :w].reshape(B, N, D)
    x = x + block.drop_path1(block.ls1(y))
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


class MIMViT(BaseModule):
    """The shared ViT, loaded strictly from an encoder file, as an mmseg / mmdet backbone.

    Args:
        arch: encoder arch (a ``methods.backbone.ARCHS`` name or a dict of its keys); ``None`` takes the
            checkpoint's recorded arch.
        checkpoint: encoder file (``export_encoder`` format; converted official checkpoints too). ``None``
            keeps MAE's random initialisation (tests only: protocols always pass a file).
        img_size: the training crop (int or (rows, cols)); the ViT is built for it and the file's position
            embedding is resampled to its grid (a declared transform, in ``load_report``).
        out_indices: the blocks whose outputs are taken (``pyramid='multilevel'``; default: MAE/BEiT's for
            depth 12 and 24, otherwise four evenly spaced).
        pyramid: ``'multilevel'`` (four maps at strides 4..32) or ``'last'`` (the last block's map, stride =
            patch size, for ``SimpleFeaturePyramid``).
        window_size: ViTDet's window attention (in tokens); ``None``: global attention everywhere.
        global_blocks: blocks that keep global attention when ``window_size`` is set.
        drop_path_rate: stochastic depth of the ViT (linear over blocks, as timm).
        norm: norm between the two transposed convolutions of a 4x upsampling (``'BN'`` as BEiT; mmengine's
            ``sync_bn`` option converts it in distributed runs).
    """

    def __init__(
        self,
        arch: str | dict[str, Any] | None = None,
        checkpoint: str | os.PathLike | None = None,
        img_size: int | Sequence[int] | None = None,
        out_indices: Sequence[int] | None = None,
        pyramid: str = "multilevel",
        window_size: int | None = None,
        global_blocks: Sequence[int] = (),
        drop_path_rate: float = 0.0,
        norm: str = "BN",
        init_cfg: Any = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if pyramid not in ("multilevel", "last"):
            raise ValueError(f"MIMViT.pyramid = {pyramid!r}; expected 'multilevel' or 'last'")
        if arch is None:
            if checkpoint is None:
                raise ValueError("MIMViT needs an arch or a checkpoint whose meta records one")
            from downstream.in1k.models import encoder_arch

            arch = encoder_arch(checkpoint)
        arch = resolve_arch(arch)
        size = arch["img_size"] if img_size is None else img_size
        size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
        self.vit: ViT = build_vit(arch, img_size=size, drop_path_rate=drop_path_rate)
        self.vit.norm = nn.Identity()  # outputs are taken before the final norm; the file's is dropped
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.patch_size = int(arch["patch_size"])
        depth = len(self.vit.blocks)
        self.pyramid = pyramid
        self.out_indices = (
            (depth - 1,)
            if pyramid == "last"
            else tuple(out_indices if out_indices is not None else default_out_indices(depth))
        )
        bad = [i for i in self.out_indices if not 0 <= i < depth]
        if bad or (pyramid == "multilevel" and len(self.out_indices) != 4):
            raise ValueError(f"MIMViT.out_indices = {list(self.out_indices)}: need 4 blocks in [0, {depth})")
        self.window_size = window_size
        self.global_blocks = tuple(global_blocks)
        self.use_cls_token = window_size is None
        if not self.use_cls_token:
            self.vit.cls_token.requires_grad_(False)  # loaded (strictly) but unused with windows, as ViTDet
        dim = self.vit.embed_dim
        self.scales = pyramid_scales(self.patch_size) if pyramid == "multilevel" else [1.0]
        self.rescales = nn.ModuleList(_rescale(dim, s, norm)[0] for s in self.scales)
        self.load_report: dict[str, Any] | None = None

    @property
    def out_channels(self) -> list[int]:
        return [self.vit.embed_dim] * len(self.out_indices)

    def init_weights(self) -> None:
        """The ViT from the checkpoint (strict, declared transforms only); the rescaling layers keep PyTorch's
        initialisation. Without a checkpoint the ViT keeps MAE's initialisation from construction."""
        if self.checkpoint is not None:
            report = load_encoder(
                read_encoder(self.checkpoint), self.vit, interpolate_pos_embed=True, drop_final_norm=True
            )
            report.source = self.checkpoint
            self.load_report = report.to_dict()
        self._is_init = True

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        p = self.patch_size
        if x.shape[-2] % p or x.shape[-1] % p:
            raise ValueError(f"MIMViT: input {tuple(x.shape[-2:])} is not a multiple of the patch size {p}")
        vit = self.vit
        tokens = vit.patch_embed.proj(x)
        grid = (tokens.shape[-2], tokens.shape[-1])
        tokens = tokens.flatten(2).transpose(1, 2)
        pos = vit.pos_embed
        if grid != tuple(vit.patch_embed.grid_size):
            pos = resample_abs_pos_embed(
                pos, new_size=list(grid), num_prefix_tokens=1, interpolation="bicubic", antialias=False
            )
        tokens = tokens + pos[:, 1:]
        if self.use_cls_token:
            cls = (vit.cls_token + pos[:, :1]).expand(tokens.shape[0], -1, -1)
            tokens = torch.cat([cls, tokens], dim=1)
        return tokens, grid

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        tokens, (h, w) = self._tokens(x)
        skip = 1 if self.use_cls_token else 0
        taken = []
        for i, block in enumerate(self.vit.blocks):
            if self.window_size is not None and i not in self.global_blocks:
                tokens = windowed_block(block, tokens, (h, w), self.window_size)
            else:
                tokens = block(tokens)
            if i in self.out_indices:
                taken.append(tokens[:, skip:].transpose(1, 2).reshape(x.shape[0], -1, h, w))
        return tuple(rescale(t) for rescale, t in zip(self.rescales, taken))


class SimpleFeaturePyramid(BaseModule):
    """ViTDet's simple feature pyramid: the last block's map resized to strides 4, 8, 16, 32 (factors
    derived from ``patch_size``; upsampling halves the channels per 2x step, with LayerNorm + GELU between
    steps), then per level a 1x1 and a 3x3 convolution, each followed by a channel LayerNorm, and a stride-64
    level max-pooled (kernel 1, stride 2) from the last, as ViTDet's ``LastLevelMaxPool``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        patch_size: int = 16,
        num_outs: int = 5,
        init_cfg: Any = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_outs not in (4, 5):
            raise ValueError(f"SimpleFeaturePyramid.num_outs = {num_outs}; expected 4 or 5")
        self.num_outs = num_outs
        self.scales = pyramid_scales(patch_size)
        self.stages = nn.ModuleList()
        for scale in self.scales:
            resize, dim = _rescale(in_channels, scale, norm="LN", shrink_channels=True)
            self.stages.append(
                nn.Sequential(
                    resize,
                    nn.Conv2d(dim, out_channels, kernel_size=1, bias=False),
                    LayerNorm2d(out_channels),
                    nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
                    LayerNorm2d(out_channels),
                )
            )

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if len(inputs) != 1:
            raise ValueError(f"SimpleFeaturePyramid takes the last block's map only, got {len(inputs)} maps")
        outs = [stage(inputs[0]) for stage in self.stages]
        if self.num_outs == 5:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)


MMSEG_MODELS.register_module(module=MIMViT)
MMDET_MODELS.register_module(module=MIMViT)
MMDET_MODELS.register_module(module=SimpleFeaturePyramid)
