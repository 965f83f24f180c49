"""A frozen CLIP image encoder as a teacher (CMT-MAE), and the CLIP checkpoint formats it is read from.

``CLIPTeacher`` wraps open_clip's vision tower. On a batch normalised for the student (ImageNet mean/std, what
the harness feeds every method) it re-normalises to CLIP's own mean/std, runs the tower once on the full image
and returns, per patch, the CLS->patch attention of one block (the last by default, as MILAN) and the patch
features (open_clip's output tokens after ``ln_post``, and their projection into the joint embedding space).

Three file formats are read by ``load_clip`` (none with ``weights_only=False``):

* ``mim-suite/clip-teacher``: ``{'state_dict': open_clip CLIP state dict, 'meta': {...}}`` written by
  ``save_clip`` (the micro/tiny teachers ``reproduce/clip_teacher_training.py`` trains), read with
  ``weights_only=True``;
* OpenAI's release (``ViT-B-16.pt``): a TorchScript archive. open_clip's ``create_model(pretrained=PATH)``
  reads a local file with ``torch.load(weights_only=True)``, which refuses TorchScript (torch >= 2.6).
  Here the archive is opened with ``torch.jit.load`` (no pickle), its state dict taken and rebuilt into
  open_clip's ``CLIP`` with ``open_clip.model.build_model_from_openai_state_dict`` (QuickGELU, fp16 -> fp32);
* the same OpenAI-keyed state dict saved with ``torch.save``: read with ``weights_only=True``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from methods.atomic import atomic_torch_save

CLIP_FORMAT = "mim-suite/clip-teacher"
CLIP_FORMAT_VERSION = 1
#: open_clip's OPENAI_DATASET_MEAN / _STD: what OpenAI's CLIP was trained on, and what our small teachers use.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: what the harness feeds every student (reproduce/pretrain_data.py: MAE's pretraining transform)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: keys OpenAI's TorchScript archives carry beside the weights (open_clip drops them too)
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")
#: the one OpenAI release the paper-scale budgets use, and where it is published
OPENAI_VIT_B16_FILE = "ViT-B-16.pt"
OPENAI_VIT_B16_URL = (
    "https://openaipublic.azureedge.net/clip/models/"
    "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt"
)

TARGETS = ("projected", "tokens")


class CLIPFormatError(ValueError):
    """A file that is neither a mim-suite CLIP teacher nor an OpenAI CLIP checkpoint."""


# ----------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------
def save_clip(model: nn.Module, path: str | os.PathLike, meta: Mapping[str, Any]) -> Path:
    """Write an open_clip ``CLIP`` as a mim-suite teacher file (atomically). ``meta`` must hold ``model_cfg``
    (the open_clip config dict the model was built from); it is stored with the format tag."""
    if "model_cfg" not in meta:
        raise ValueError("save_clip: meta needs 'model_cfg' (the open_clip config the model was built from)")
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    payload = {
        "state_dict": state,
        "meta": {**dict(meta), "format": CLIP_FORMAT, "format_version": CLIP_FORMAT_VERSION},
    }
    atomic_torch_save(payload, path)
    return Path(path)


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """A TorchScript archive (``torch.jit.save``) is a zip holding ``<name>/constants.pkl`` and code."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def read_clip_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``meta`` block of a mim-suite teacher file; ``{'format': 'openai'}`` for an OpenAI checkpoint."""
    path = Path(path)
    if is_torchscript_archive(path):
        return {"format": "openai", "source": str(path)}
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(payload, dict) and isinstance(payload.get("meta"), dict):
        return dict(payload["meta"])
    return {"format": "openai", "source": str(path)}


def load_clip(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """(open_clip ``CLIP`` in fp32, eval mode; its meta) from any of the three formats (module docstring)."""
    import open_clip

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CLIP teacher file {path} does not exist")
    if is_torchscript_archive(path):
        archive = torch.jit.load(str(path), map_location="cpu")
        state = {k: v for k, v in archive.state_dict().items() if k not in _OPENAI_EXTRA_KEYS}
        return _from_openai_state(state), {"format": "openai", "source": str(path)}
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(payload, dict) and isinstance(payload.get("meta"), dict):
        meta = dict(payload["meta"])
        if meta.get("format") != CLIP_FORMAT:
            raise CLIPFormatError(f"{path}: meta.format is {meta.get('format')!r}, expected {CLIP_FORMAT!r}")
        model = open_clip.CLIP(**meta["model_cfg"])
        model.load_state_dict(payload["state_dict"], strict=True)
        return model.float().eval(), meta
    if isinstance(payload, dict) and "visual.proj" in payload:
        state = {k: v for k, v in payload.items() if k not in _OPENAI_EXTRA_KEYS}
        return _from_openai_state(state), {"format": "openai", "source": str(path)}
    raise CLIPFormatError(
        f"{path}: not a CLIP teacher file (expected a {CLIP_FORMAT} payload, OpenAI's TorchScript release or "
        "an OpenAI-keyed state dict with 'visual.proj')"
    )


def _from_openai_state(state: dict[str, torch.Tensor]) -> nn.Module:
    from open_clip.model import build_model_from_openai_state_dict

    if "visual.proj" not in state:
        raise CLIPFormatError("an OpenAI CLIP state dict needs a ViT image tower ('visual.proj' is missing)")
    return build_model_from_openai_state_dict(dict(state)).float().eval()


def build_random_clip(model_name: str) -> nn.Module:
    """A randomly initialised open_clip model of a named config (the project's configs are registered first).
    For tests and cost probes only: a random teacher is meaningless for training."""
    import open_clip

    from methods import clip_configs

    clip_configs.register()
    return open_clip.create_model(model_name, pretrained=None).float().eval()


# ----------------------------------------------------------------------------------------------------------
# The teacher
# ----------------------------------------------------------------------------------------------------------
class CLIPTeacher(nn.Module):
    """A frozen open_clip vision tower: re-normalises the student's batch, returns attention and features.

    Frozen (no parameter requires a gradient), always in eval mode, and run under ``torch.no_grad``.
    """

    def __init__(
        self,
        visual: nn.Module,
        clip_mean: Sequence[float] = CLIP_MEAN,
        clip_std: Sequence[float] = CLIP_STD,
        student_mean: Sequence[float] = IMAGENET_MEAN,
        student_std: Sequence[float] = IMAGENET_STD,
        block: int = -1,
    ) -> None:
        super().__init__()
        if not isinstance(getattr(visual, "transformer", None), nn.Module) or not hasattr(visual, "proj"):
            raise TypeError(f"CLIPTeacher needs an open_clip VisionTransformer, got {type(visual).__name__}")
        self.visual = visual
        self.visual.requires_grad_(False)
        self.visual.eval()
        self.visual.output_tokens = True  # forward returns (pooled, tokens); the teacher owns this tower
        self.block = block
        attn = self.visual.transformer.resblocks[block].attn
        if not isinstance(attn, nn.MultiheadAttention):
            raise TypeError(
                f"the teacher's block {block} uses {type(attn).__name__}; attention weights are read from "
                "nn.MultiheadAttention (open_clip's default ResidualAttentionBlock)"
            )
        # x_clip = (x * s_std + s_mean - c_mean) / c_std = x * scale + shift, per channel
        s_mean, s_std = torch.tensor(student_mean), torch.tensor(student_std)
        c_mean, c_std = torch.tensor(clip_mean), torch.tensor(clip_std)
        self.register_buffer("scale", (s_std / c_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((s_mean - c_mean) / c_std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> CLIPTeacher:
        return super().train(False)

    @property
    def grid_size(self) -> tuple[int, int]:
        return tuple(self.visual.grid_size)

    @property
    def width(self) -> int:
        return self.visual.conv1.out_channels

    @property
    def embed_dim(self) -> int:
        return self.visual.proj.shape[1]

    def feature_dim(self, target: str) -> int:
        return self.embed_dim if target == "projected" else self.width

    def clip_input(self, images: torch.Tensor) -> torch.Tensor:
        """The student's batch (ImageNet-normalised) re-normalised with CLIP's mean and std."""
        return images * self.scale + self.shift

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images [B, 3, H, W] normalised for the student -> (attention [B, heads, N] of the CLS query over
        the N patch keys in block ``self.block`` (softmax over all 1 + N keys, CLS column dropped, not
        renormalised), tokens [B, N, width] after ``ln_post``, projected tokens [B, N, embed_dim])."""
        x = self.clip_input(images)
        attn = self.visual.transformer.resblocks[self.block].attn
        store: dict[str, torch.Tensor] = {}

        def want_weights(module, args, kwargs):  # open_clip calls its MHA with need_weights=False
            return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

        def keep_weights(module, args, output):
            store["weights"] = output[1]

        hooks = [
            attn.register_forward_pre_hook(want_weights, with_kwargs=True),
            attn.register_forward_hook(keep_weights),
        ]
        try:
            _, tokens = self.visual(x)
        finally:
            for h in hooks:
                h.remove()
        weights = store["weights"]  # [B, heads, 1 + N, 1 + N]
        return weights[:, :, 0, 1:], tokens, tokens @ self.visual.proj


def clip_teacher_from_file(path: str | os.PathLike, **kwargs: Any) -> tuple[CLIPTeacher, dict[str, Any]]:
    """A ``CLIPTeacher`` on the vision tower of a CLIP file (any format ``load_clip`` reads), and its meta.
    The mean/std stored in a mim-suite file's meta are used; OpenAI's are CLIP_MEAN/CLIP_STD."""
    model, meta = load_clip(path)
    mean, std = tuple(meta.get("image_mean", CLIP_MEAN)), tuple(meta.get("image_std", CLIP_STD))
    return CLIPTeacher(model.visual, clip_mean=mean, clip_std=std, **kwargs), meta
