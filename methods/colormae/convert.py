"""Convert an official ColorMAE checkpoint (carlosh93/ColorMAE, trained with mmpretrain) to our formats.

    python -m methods.colormae.convert SRC DST [--encoder-only] [--trust-pickle] [--num-heads H]

Accepted: what the official training (``tools/train.py``, mmengine's ``CheckpointHook``) saves,
``{'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'}``, the released
``colormae-green-epoch_*.pth``, or a bare state dict. Only ``state_dict`` is read. Its keys are mmpretrain's
``MAE`` model: ``backbone.*`` (``ColorMAEViT``, which adds no parameters to mmpretrain's
``VisionTransformer``), ``neck.*`` (``MAEPretrainDecoder``); the head (``MAEPretrainHead``) has none.

* With ``neck.*`` keys the result is our **ColorMAE model state**, ``{'state_dict': ColorMAE keys, 'meta'}``:
  ``ColorMAE(**arch).load_state_dict(out['state_dict'], strict=True)``.
* Without them, or with ``--encoder-only``, it is an **encoder file** (timm keys), which
  ``methods.encoder_file.read_encoder`` / ``load_encoder`` read.

Renames (``N`` a block index; one per-block rule for ``backbone.layers.N`` and ``neck.decoder_blocks.N``):

    backbone.cls_token, backbone.pos_embed        -> encoder.cls_token, encoder.pos_embed
    backbone.patch_embed.projection.*             -> encoder.patch_embed.proj.*
    backbone.layers.N.ln1.* / ln2.*               -> encoder.blocks.N.norm1.* / norm2.*
    backbone.layers.N.attn.qkv.* / attn.proj.*    -> encoder.blocks.N.attn.qkv.* / attn.proj.*
    backbone.layers.N.ffn.layers.0.0.*            -> encoder.blocks.N.mlp.fc1.*
    backbone.layers.N.ffn.layers.1.*              -> encoder.blocks.N.mlp.fc2.*
    backbone.ln1.*   (the final norm)             -> encoder.norm.*
    neck.decoder_embed.*, neck.mask_token         -> decoder.embed.*, decoder.mask_token
    neck.decoder_pos_embed                        -> decoder.pos_embed
    neck.decoder_blocks.N.*                       -> decoder.blocks.N.*  (per-block rule above)
    neck.ln1.*       (the decoder norm)           -> decoder.norm.*
    neck.decoder_pred.*                           -> decoder.pred.*

No tensor is reshaped: mmpretrain's position tables already hold the cls position first ([1, 1 + N, D]), the
mask token is [1, 1, D_dec], and qkv is packed (q, k, v) x heads as in timm. The position tables are kept as
stored: mmpretrain's sin-cos table puts the row encoding in the first half of the channels (MAE's puts the
column there), so it must not be regenerated. ``data_preprocessor.mean`` / ``.std`` (normalisation constants,
not weights; mmengine does not normally save them) are dropped and listed in ``meta['dropped']``. Any other
key, a missing key, or a layer-scale / extra-norm variant is an error naming the keys.
"""

from __future__ import annotations

import math
import re
import sys
from functools import partial
from typing import Any

import torch

from methods.backbone import ARCHS, ENCODER_ARCH_KEYS
from methods.convert_keys import converter_parser, run_converter  # pickled state needs --trust-pickle
from methods.encoder_file import encoder_payload

SOURCE = "carlosh93/ColorMAE (official ColorMAE checkpoint, mmpretrain 1.0.2 MAE naming)"

# One layer: mmpretrain's TransformerEncoderLayer (ln1, attn, ln2, ffn = mmcv's FFN) -> timm's Block.
LAYER_RENAMES = {
    "ln1": "norm1",
    "attn.qkv": "attn.qkv",
    "attn.proj": "attn.proj",
    "ln2": "norm2",
    "ffn.layers.0.0": "mlp.fc1",
    "ffn.layers.1": "mlp.fc2",
}
# Whole-model keys (without the weight/bias suffix where there is one): official -> ours.
FIXED_RENAMES = {
    "backbone.cls_token": "encoder.cls_token",
    "backbone.pos_embed": "encoder.pos_embed",
    "backbone.patch_embed.projection": "encoder.patch_embed.proj",
    "backbone.ln1": "encoder.norm",
    "neck.decoder_embed": "decoder.embed",
    "neck.mask_token": "decoder.mask_token",
    "neck.decoder_pos_embed": "decoder.pos_embed",
    "neck.ln1": "decoder.norm",
    "neck.decoder_pred": "decoder.pred",
}
TOKENS = ("backbone.cls_token", "backbone.pos_embed", "neck.mask_token", "neck.decoder_pos_embed")
BLOCK_PREFIXES = {"backbone.layers.": "encoder.blocks.", "neck.decoder_blocks.": "decoder.blocks."}
DROPPED = ("data_preprocessor.mean", "data_preprocessor.std")
_BLOCK_KEY = re.compile(r"^(backbone\.layers\.|neck\.decoder_blocks\.)(\d+)\.(.+)\.(weight|bias)$")
_PARAM_KEY = re.compile(r"^(.+)\.(weight|bias)$")


def rename(key: str) -> str | None:
    """Our model key for one official key, or None when the key is not one of mmpretrain's MAE keys."""
    if key in TOKENS:
        return FIXED_RENAMES[key]
    if m := _BLOCK_KEY.match(key):
        prefix, index, layer, suffix = m.groups()
        if layer in LAYER_RENAMES:
            return f"{BLOCK_PREFIXES[prefix]}{index}.{LAYER_RENAMES[layer]}.{suffix}"
        return None
    if (m := _PARAM_KEY.match(key)) and m.group(1) in FIXED_RENAMES and m.group(1) not in TOKENS:
        return f"{FIXED_RENAMES[m.group(1)]}.{m.group(2)}"
    return None


def expected_keys(depth: int, decoder_depth: int | None) -> list[str]:
    """Every key of mmpretrain's MAE state dict for ColorMAE's configuration (no decoder: backbone only)."""

    def params(name: str) -> list[str]:
        return [f"{name}.weight", f"{name}.bias"]

    def layer(prefix: str) -> list[str]:
        return [k for name in LAYER_RENAMES for k in params(f"{prefix}.{name}")]

    keys = ["backbone.cls_token", "backbone.pos_embed", *params("backbone.patch_embed.projection")]
    keys += [k for i in range(depth) for k in layer(f"backbone.layers.{i}")] + params("backbone.ln1")
    if decoder_depth is not None:
        keys += ["neck.mask_token", "neck.decoder_pos_embed", *params("neck.decoder_embed")]
        keys += [k for i in range(decoder_depth) for k in layer(f"neck.decoder_blocks.{i}")]
        keys += params("neck.ln1") + params("neck.decoder_pred")
    return keys


def official_state(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The mmengine checkpoint's ``state_dict`` (or the bare state dict), checked to hold tensors only."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict):
        raise ValueError(f"not a ColorMAE checkpoint: 'state_dict' is a {type(state).__name__}")
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise ValueError(f"not an mmpretrain state dict: non-tensor entries {not_tensors}")
    return state


def convert(
    checkpoint: dict[str, Any], *, num_heads: int | None = None, decoder_num_heads: int | None = None
) -> dict[str, Any]:
    """Official checkpoint -> ``{'state_dict': ..., 'meta': {...}}``; ``meta['kind']`` is ``'colormae'`` (our
    full ColorMAE model state) or ``'encoder'`` (an encoder file, when the file holds no decoder).

    Head counts are not in the weights: ``meta['arch']`` takes them from the ARCHS entry the shapes match
    (ViT-B/16 for the released files), or from ``num_heads`` / ``decoder_num_heads`` when given."""
    state = official_state(checkpoint)
    renamed, dropped, unknown = {}, sorted(k for k in state if k in DROPPED), []
    for key, value in state.items():
        if key in DROPPED:
            continue
        if (new := rename(key)) is None:
            unknown.append(key)
        else:
            renamed[new] = value
    if unknown:
        raise ValueError(f"keys that are not mmpretrain MAE backbone/neck keys: {sorted(unknown)}")
    arch = infer_arch(state)
    missing = sorted(set(expected_keys(arch["depth"], arch.get("decoder_depth"))) - set(state))
    if missing:
        raise ValueError(f"keys missing from the mmpretrain MAE state dict: {missing}")
    given = dict(
        num_heads=num_heads, decoder_num_heads=decoder_num_heads if "decoder_depth" in arch else None
    )
    arch |= {k: v for k, v in given.items() if v is not None}

    meta = {"source": SOURCE, "converted_by": "methods.colormae.convert", "arch": arch, "method": "colormae"}
    meta |= {"dropped": dropped} if dropped else {}
    if "decoder_depth" not in arch:
        return _encoder_payload(renamed, meta)
    return {"state_dict": renamed, "meta": {**meta, "kind": "colormae"}}


def encoder_file(checkpoint: dict[str, Any], **heads: int | None) -> dict[str, Any]:
    """The encoder of an official checkpoint as an encoder file payload (timm keys, for the protocols);
    ``heads`` as for ``convert``."""
    out = convert(checkpoint, **heads)
    return out if out["meta"]["kind"] == "encoder" else _encoder_payload(out["state_dict"], out["meta"])


def _encoder_payload(state: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Our ``encoder.*`` tensors as an encoder file; its ``meta['arch']`` keeps the encoder keys only."""
    encoder = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    arch = {k: v for k, v in meta["arch"].items() if k in (*ENCODER_ARCH_KEYS, "name")}
    return encoder_payload(encoder, {**meta, "arch": arch, "kind": "encoder"})


def infer_arch(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The arch keys readable from tensor shapes (official names), and the matching ARCHS name if any. Head
    counts are not stored in the weights; they are filled in only from a matching ARCHS entry."""
    needed = ["backbone.patch_embed.projection.weight", "backbone.pos_embed"]
    needed += ["backbone.layers.0.ffn.layers.0.0.weight"]
    needed += ["neck.decoder_embed.weight"] if any(k.startswith("neck.") for k in state) else []
    if missing := [k for k in needed if k not in state]:
        raise ValueError(f"keys missing from the mmpretrain MAE state dict: {missing}")
    w = state["backbone.patch_embed.projection.weight"]  # [D, 3, p, p]
    embed_dim, patch_size = w.shape[0], w.shape[-1]
    pos_embed = state["backbone.pos_embed"]  # [1, 1 + G*G, D]: the cls position first, as ours
    grid = math.isqrt(max(pos_embed.shape[1] - 1, 0)) if pos_embed.dim() == 3 else 0
    if pos_embed.dim() != 3 or grid * grid != pos_embed.shape[1] - 1:
        raise ValueError(f"backbone.pos_embed has shape {tuple(pos_embed.shape)}, expected (1, 1 + G*G, D)")
    arch: dict[str, Any] = dict(
        img_size=grid * patch_size,
        patch_size=patch_size,
        embed_dim=embed_dim,
        depth=1 + max(_block_indices(state, "backbone.layers.")),
        mlp_ratio=state["backbone.layers.0.ffn.layers.0.0.weight"].shape[0] / embed_dim,
    )
    shapes = {"backbone.pos_embed": (1, 1 + grid * grid, embed_dim), "backbone.cls_token": (1, 1, embed_dim)}
    if "neck.decoder_embed.weight" in state:
        dec_dim = state["neck.decoder_embed.weight"].shape[0]
        shapes |= {
            "neck.decoder_pos_embed": (1, 1 + grid * grid, dec_dim),
            "neck.mask_token": (1, 1, dec_dim),
        }
        arch["decoder_embed_dim"] = dec_dim
        arch["decoder_depth"] = 1 + max(_block_indices(state, "neck.decoder_blocks."), default=-1)
    for key, shape in shapes.items():  # the tokens as ours: cls position first, no reshaping
        if key in state and tuple(state[key].shape) != shape:
            raise ValueError(
                f"{key} has shape {tuple(state[key].shape)}, expected {shape} (cls position first)"
            )
    for name, known in ARCHS.items():
        if all(known.get(k) == v for k, v in arch.items()):
            arch.update(name=name, num_heads=known["num_heads"])
            if "decoder_depth" in arch:
                arch["decoder_num_heads"] = known["decoder_num_heads"]
            break
    return arch


def _block_indices(state: dict[str, torch.Tensor], prefix: str) -> list[int]:
    return [int(m.group(2)) for k in state if (m := _BLOCK_KEY.match(k)) and m.group(1) == prefix]


def main(argv: list[str] | None = None) -> int:
    parser = converter_parser(
        "methods.colormae.convert",
        __doc__,
        "official ColorMAE checkpoint (mmengine .pth)",
        ("--encoder-only", "write the encoder file only"),
    )
    parser.add_argument("--num-heads", type=int, help="encoder heads, for shapes no ARCHS entry matches")
    parser.add_argument("--decoder-num-heads", type=int, help="decoder heads, likewise")
    args = parser.parse_args(argv)
    heads = dict(num_heads=args.num_heads, decoder_num_heads=args.decoder_num_heads)
    conversion = partial(encoder_file if args.encoder_only else convert, **heads)
    return run_converter(parser, args, conversion, model_state="ColorMAE model state")


if __name__ == "__main__":
    sys.exit(main())
