"""Convert an official MAE checkpoint (facebookresearch/mae) to this project's formats.

    python -m methods.mae.convert SRC DST [--trust-pickle]

Accepted: what the official scripts save (``{'model': state_dict, ...}``) or a bare state dict.

* Encoder-only files (the released ``mae_pretrain_vit_{base,large,huge}.pth``) become an **encoder file**,
  ``{'state_dict': timm keys, 'meta': {...}}``, which ``methods.backbone.load_encoder`` reads.
* Files with decoder keys (``*_full.pth``, training checkpoints) become our **MAE model state**,
  ``{'state_dict': MAE keys, 'meta': {...}}``: ``MAE.load_state_dict(out['state_dict'], strict=True)``, or
  mmengine's ``load_checkpoint``.

The encoder keys are timm's on both sides and pass unchanged (under ``encoder.`` in the model state); the
decoder keys are renamed (``decoder_embed`` -> ``decoder.embed``, ...). Any other key is an error.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

import torch

from methods.backbone import ARCHS, atomic_torch_save, encoder_payload

ENCODER_KEY = re.compile(
    r"^(cls_token|pos_embed|patch_embed\.proj\.(weight|bias)|blocks\.\d+\..+|norm\.(weight|bias))$"
)
DECODER_RENAMES = {
    "decoder_embed.": "decoder.embed.",
    "mask_token": "decoder.mask_token",
    "decoder_pos_embed": "decoder.pos_embed",
    "decoder_blocks.": "decoder.blocks.",
    "decoder_norm.": "decoder.norm.",
    "decoder_pred.": "decoder.pred.",
}
SOURCE = "facebookresearch/mae (official MAE checkpoint)"


def convert(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Official checkpoint -> ``{'state_dict': ..., 'meta': {...}}``; ``meta['kind']`` is ``'encoder'``
    (an encoder file) or ``'mae'`` (our full MAE model state)."""
    state = checkpoint.get("model", checkpoint)
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise ValueError(f"not an MAE state dict: non-tensor entries {not_tensors}")

    encoder, decoder, unknown = {}, {}, []
    for key, value in state.items():
        if ENCODER_KEY.match(key):
            encoder[key] = value
        elif (renamed := _rename_decoder(key)) is not None:
            decoder[renamed] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"keys that are neither MAE encoder nor decoder keys: {sorted(unknown)}")

    meta = {"source": SOURCE, "converted_by": "methods.mae.convert", "arch": infer_arch(state)}
    if not decoder:
        return encoder_payload(encoder, {**meta, "kind": "encoder", "method": "mae"})
    full = {f"encoder.{k}": v for k, v in encoder.items()} | decoder
    return {"state_dict": full, "meta": {**meta, "kind": "mae", "method": "mae"}}


def _rename_decoder(key: str) -> str | None:
    for old, new in DECODER_RENAMES.items():
        if key == old or (old.endswith(".") and key.startswith(old)):
            return new + key[len(old) :]
    return None


def infer_arch(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The arch keys readable from tensor shapes, and the matching ARCHS name if any. Head counts are not
    stored in the weights; ``num_heads`` is filled in only from a matching ARCHS entry."""
    w = state["patch_embed.proj.weight"]  # [D, 3, p, p]
    embed_dim, patch_size = w.shape[0], w.shape[-1]
    grid = math.isqrt(state["pos_embed"].shape[1] - 1)
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    arch: dict[str, Any] = dict(
        img_size=grid * patch_size,
        patch_size=patch_size,
        embed_dim=embed_dim,
        depth=depth,
        mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / embed_dim,
    )
    if "decoder_embed.weight" in state:
        arch["decoder_embed_dim"] = state["decoder_embed.weight"].shape[0]
        arch["decoder_depth"] = 1 + max(
            int(k.split(".")[1]) for k in state if k.startswith("decoder_blocks.")
        )
    for name, known in ARCHS.items():
        if all(known.get(k) == v for k, v in arch.items()):
            arch.update(name=name, num_heads=known["num_heads"])
            break
    return arch


def load_official(path: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """Load an official file. Training checkpoints also pickle ``args`` (an argparse.Namespace), which
    ``weights_only`` loading allows explicitly; anything else needs ``trust_pickle``."""
    if trust_pickle:
        return torch.load(path, map_location="cpu", weights_only=False)
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m methods.mae.convert", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("src", type=Path, help="official MAE checkpoint (.pth)")
    parser.add_argument("dst", type=Path, help="output file (.pth)")
    parser.add_argument(
        "--trust-pickle", action="store_true", help="load SRC with weights_only=False (files you trust only)"
    )
    args = parser.parse_args(argv)
    out = convert(load_official(args.src, args.trust_pickle))
    out["meta"]["source_file"] = args.src.name
    atomic_torch_save(out, args.dst)
    kind = "encoder file" if out["meta"]["kind"] == "encoder" else "MAE model state"
    print(f"{args.src} -> {args.dst}: {kind}, {len(out['state_dict'])} tensors, arch {out['meta']['arch']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
