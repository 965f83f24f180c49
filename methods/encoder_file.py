"""The encoder file: the one thing a pretraining hands to the protocols, and the one strict loader.

An encoder file is ``{'state_dict': timm-keyed tensors, 'meta': {...}}`` (``export_encoder``), written
atomically, with the format, version and a sha256 of the tensors in its metadata. ``load_encoder`` loads it
into a ``methods.backbone.ViT`` strictly: every key must fit, apart from the modules a protocol adds itself.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

from methods.atomic import atomic_torch_save
from methods.backbone import vit_arch

ENCODER_FORMAT = "mim-suite/encoder"
ENCODER_FORMAT_VERSION = 1
# Modules a protocol adds on top of the encoder; they never come from an encoder file.
PROTOCOL_PREFIXES = ("head.", "fc_norm.", "attn_pool.")
FINAL_NORM_KEYS = ("norm.weight", "norm.bias")


class EncoderLoadError(ValueError):
    """An encoder file does not fit the model exactly; the message names every offending key."""


def tensors_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in sorted key order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def encoder_payload(state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The encoder file's content: detached CPU tensors plus a metadata block (format, version, sha256)."""
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}
    meta = {
        **dict(metadata),
        "format": ENCODER_FORMAT,
        "format_version": ENCODER_FORMAT_VERSION,
        "sha256": tensors_sha256(tensors),
    }
    return {"state_dict": tensors, "meta": meta}


def export_encoder(model: nn.Module, path: str | os.PathLike, metadata: Mapping[str, Any]) -> str:
    """Write the encoder of ``model`` (a ``MIMModel`` or timm ViT) to ``path`` atomically; return its sha256.

    A ``MIMModel`` decides which tensors are exported (``export_encoder_state()``, e.g. RC-MAE's teacher).
    The metadata block gets the encoder arch when the model has one, plus format, version and sha256.
    """
    if hasattr(model, "export_encoder_state"):
        state, vit = model.export_encoder_state(), model.encoder
    else:
        state, vit = model.state_dict(), model
    meta = {"arch": vit_arch(vit), **metadata} if isinstance(vit, VisionTransformer) else dict(metadata)
    payload = encoder_payload(state, meta)
    atomic_torch_save(payload, path)
    return payload["meta"]["sha256"]


def read_encoder(path: str | os.PathLike) -> dict[str, Any]:
    """Read an encoder file (tensors only, ``weights_only=True``) and check its format."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        hint = (
            " (an official MAE file? convert it: python -m methods.mae.convert SRC DST)"
            if (isinstance(payload, dict) and "model" in payload)
            else ""
        )
        raise EncoderLoadError(f"{path}: not an encoder file, expected {{'state_dict', 'meta'}}{hint}")
    fmt = payload.get("meta", {}).get("format")
    if fmt != ENCODER_FORMAT:
        raise EncoderLoadError(f"{path}: meta.format is {fmt!r}, expected {ENCODER_FORMAT!r}")
    return payload


@dataclass
class LoadReport:
    """What ``load_encoder`` did, for the result record."""

    source: str
    num_loaded: int  # encoder tensors copied into the model
    num_expected: int  # encoder tensors in the file, less those a declared transform drops
    fraction_loaded: float  # num_loaded / num_expected; load_encoder guarantees 1.0
    sha256: str  # of the tensors as loaded (after transforms)
    source_sha256: str  # of the file's tensors as stored
    transforms: list[str] = field(default_factory=list)  # declared transforms actually applied
    dropped: list[str] = field(default_factory=list)  # file keys a declared transform removed
    left_to_protocol: list[str] = field(default_factory=list)  # model keys a protocol initialises (head...)
    meta: dict[str, Any] = field(default_factory=dict)  # the file's metadata block

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_encoder(
    path_or_state: str | os.PathLike | Mapping[str, Any],
    vit: VisionTransformer,
    *,
    interpolate_pos_embed: bool = False,
    drop_final_norm: bool = False,
) -> LoadReport:
    """Load an encoder file (or its payload, or a bare timm-keyed state dict) into ``vit``, strictly.

    Every encoder tensor in the file must land in the model and every model tensor must come from the file,
    except the modules a protocol adds on top (``head.*``, ``fc_norm.*``, ``attn_pool.*``). A missing key,
    an unexpected key or a wrong shape raises one ``EncoderLoadError`` naming all of them. Two transforms
    exist and run only when asked for, and the report lists them:

    * ``interpolate_pos_embed``: resample the position embedding to the model's grid (bicubic, cls row kept,
      as the official MAE fine-tuning code does);
    * ``drop_final_norm``: drop the file's ``norm.*`` for a protocol that uses its own (the model's
      ``norm.*``, if any, is then left to the protocol).
    """
    source, state, meta = _source_state(path_or_state)
    source_sha, num_in_file = tensors_sha256(state), len(state)
    state, transforms, dropped = dict(state), [], []

    if drop_final_norm:
        dropped = [k for k in FINAL_NORM_KEYS if k in state]
        for k in dropped:
            del state[k]
        transforms.append(f"drop_final_norm: removed {dropped}")

    model_state = vit.state_dict()
    if interpolate_pos_embed and "pos_embed" in state and "pos_embed" in model_state:
        old, new = state["pos_embed"], model_state["pos_embed"]
        if old.shape != new.shape:
            num_prefix = getattr(vit, "num_prefix_tokens", 1)
            new_grid = tuple(vit.patch_embed.grid_size)  # (rows, cols): a video frame's grid is not square
            state["pos_embed"] = _resample_pos_embed(old, new_grid, num_prefix)
            g_old = math.isqrt(old.shape[1] - num_prefix)
            transforms.append(
                f"interpolate_pos_embed: {g_old}x{g_old} -> {new_grid[0]}x{new_grid[1]} "
                "(bicubic, prefix tokens kept, as official MAE)"
            )

    protocol_keys = {k for k in model_state if k.startswith(PROTOCOL_PREFIXES)}
    if drop_final_norm:
        protocol_keys |= {k for k in FINAL_NORM_KEYS if k in model_state}
    missing = sorted(set(model_state) - set(state) - protocol_keys)
    unexpected = sorted(set(state) - set(model_state))
    wrong_shape = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(model_state[k].shape)}"
        for k in set(state) & set(model_state)
        if state[k].shape != model_state[k].shape
    )
    if missing or unexpected or wrong_shape:
        lines = [f"cannot load encoder from {source} strictly:"]
        lines += [f"  missing in file: {missing}"] if missing else []
        lines += [f"  unexpected in file: {unexpected}"] if unexpected else []
        lines += [f"  wrong shape: {wrong_shape}"] if wrong_shape else []
        if wrong_shape and any(s.startswith("pos_embed") for s in wrong_shape) and not interpolate_pos_embed:
            lines.append("  (a different grid? pass interpolate_pos_embed=True if the protocol declares it)")
        raise EncoderLoadError("\n".join(lines))

    result = vit.load_state_dict(state, strict=False)
    num_loaded = len(set(state) - set(result.unexpected_keys))
    num_expected = num_in_file - len(dropped)
    if num_loaded != num_expected or set(result.missing_keys) - protocol_keys:  # unreachable after the checks
        raise EncoderLoadError(f"{source}: loaded {num_loaded} of {num_expected} encoder tensors")
    return LoadReport(
        source=source,
        num_loaded=num_loaded,
        num_expected=num_expected,
        fraction_loaded=num_loaded / num_expected,
        sha256=tensors_sha256(state),
        source_sha256=source_sha,
        transforms=transforms,
        dropped=dropped,
        left_to_protocol=sorted(protocol_keys),
        meta=meta,
    )


def _source_state(
    path_or_state: str | os.PathLike | Mapping[str, Any],
) -> tuple[str, Mapping[str, torch.Tensor], dict[str, Any]]:
    if isinstance(path_or_state, (str, os.PathLike)):
        payload = read_encoder(path_or_state)
        return str(path_or_state), payload["state_dict"], dict(payload.get("meta", {}))
    if "state_dict" in path_or_state and isinstance(path_or_state["state_dict"], Mapping):
        return "<payload>", path_or_state["state_dict"], dict(path_or_state.get("meta", {}))
    not_tensors = [k for k, v in path_or_state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise EncoderLoadError(f"not a state dict: non-tensor entries {sorted(not_tensors)}")
    return "<state_dict>", path_or_state, {}


def _resample_pos_embed(old: torch.Tensor, new_grid: tuple[int, int], num_prefix: int) -> torch.Tensor:
    g_old = math.isqrt(old.shape[1] - num_prefix)
    if g_old * g_old != old.shape[1] - num_prefix:
        raise EncoderLoadError(f"pos_embed of {old.shape[1] - num_prefix} patches is not a square grid")
    return resample_abs_pos_embed(
        old,
        new_size=list(new_grid),
        num_prefix_tokens=num_prefix,
        interpolation="bicubic",
        antialias=False,
    )
