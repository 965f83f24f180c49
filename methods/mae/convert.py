"""Convert an official MAE checkpoint (facebookresearch/mae) to this project's formats.

    python -m methods.mae.convert SRC DST [--trust-pickle]

Accepted: what the official scripts save (``{'model': state_dict, ...}``) or a bare state dict.

* Encoder-only files (the released ``mae_pretrain_vit_{base,large,huge}.pth``) become an **encoder file**,
  ``{'state_dict': timm keys, 'meta': {...}}``, which ``methods.encoder_file.load_encoder`` reads.
* Files with decoder keys (``*_full.pth``, training checkpoints) become our **MAE model state**,
  ``{'state_dict': MAE keys, 'meta': {...}}``: ``MAE.load_state_dict(out['state_dict'], strict=True)``, or
  mmengine's ``load_checkpoint``.

The encoder keys are timm's on both sides and pass unchanged (under ``encoder.`` in the model state); the
decoder keys are renamed (``decoder_embed`` -> ``decoder.embed``, ...). Any other key is an error.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import torch

from methods.backbone import ARCHS
from methods.convert_keys import MAE_DECODER_RENAMES, converter_parser, run_converter, to_model_keys
from methods.encoder_file import encoder_payload

SOURCE = "facebookresearch/mae (official MAE checkpoint)"


def convert(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Official checkpoint -> ``{'state_dict': ..., 'meta': {...}}``; ``meta['kind']`` is ``'encoder'``
    (an encoder file) or ``'mae'`` (our full MAE model state)."""
    state = checkpoint.get("model", checkpoint)
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise ValueError(f"not an MAE state dict: non-tensor entries {not_tensors}")
    ours = to_model_keys(state, MAE_DECODER_RENAMES)
    encoder = {k: v for k, v in ours.items() if k.startswith("encoder.")}
    decoder = {k: v for k, v in ours.items() if not k.startswith("encoder.")}

    meta = {"source": SOURCE, "converted_by": "methods.mae.convert", "arch": infer_arch(state)}
    if not decoder:
        encoder = {k.removeprefix("encoder."): v for k, v in encoder.items()}
        return encoder_payload(encoder, {**meta, "kind": "encoder", "method": "mae"})
    return {"state_dict": encoder | decoder, "meta": {**meta, "kind": "mae", "method": "mae"}}


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


def main(argv: list[str] | None = None) -> int:
    parser = converter_parser("methods.mae.convert", __doc__, "official MAE checkpoint (.pth)")
    return run_converter(parser, parser.parse_args(argv), convert, model_state="MAE model state")


if __name__ == "__main__":
    sys.exit(main())
