"""Renaming official MAE-family checkpoint keys to ours, shared by the ``convert.py`` of every method folder.

The official MAE code (and RC-MAE's and HPM's, which extend it) keeps the encoder under timm's names, which
ours are too, and flattens the decoder into the model (``decoder_embed``, ``mask_token``, ...), which ours
holds as ``decoder.*`` (``methods.decoder.MAEDecoder``). A method whose official model adds networks passes
their renames too (HPM's loss predictor). A key that is neither an encoder key nor a renamed one is an error:
a converted file either loads with ``strict=True`` or is refused here.

The command line every ``convert.py`` shares lives here too: ``converter_parser`` (``SRC DST``, the method's
switches, ``--trust-pickle``) and ``run_converter`` (load, convert, write atomically, print one line).
"""

from __future__ import annotations

import argparse
import math
import pickle
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from methods.atomic import atomic_torch_save
from methods.cli import one_line

#: timm's ViT keys: the official encoder keys, unchanged in ours
ENCODER_KEY = re.compile(
    r"^(cls_token|pos_embed|patch_embed\.proj\.(weight|bias)|blocks\.\d+\..+|norm\.(weight|bias))$"
)
#: official MAE decoder name -> ours; a name ending in "." renames a prefix, any other one a whole key
MAE_DECODER_RENAMES = {
    "decoder_embed.": "decoder.embed.",
    "mask_token": "decoder.mask_token",
    "decoder_pos_embed": "decoder.pos_embed",
    "decoder_blocks.": "decoder.blocks.",
    "decoder_norm.": "decoder.norm.",
    "decoder_pred.": "decoder.pred.",
}


def rename(key: str, renames: Mapping[str, str]) -> str | None:
    """Our name for an official non-encoder key, or None when no rename applies."""
    for old, new in renames.items():
        if key == old or (old.endswith(".") and key.startswith(old)):
            return new + key[len(old) :]
    return None


def to_model_keys(
    state: Mapping[str, torch.Tensor], renames: Mapping[str, str], prefix: str = "", what: str = ""
) -> dict[str, torch.Tensor]:
    """An official state dict under our model's names, in its order: encoder keys as ``encoder.<key>``, the
    others renamed, all under ``prefix`` (e.g. ``teacher.module.`` for an EMA copy). Keys neither encoder
    keys nor renamed raise a ValueError ``f"keys that are {what}: [...]"``."""
    out, unknown = {}, []
    for key, value in state.items():
        new = f"encoder.{key}" if ENCODER_KEY.match(key) else rename(key, renames)
        if new is None:
            unknown.append(key)
        else:
            out[prefix + new] = value
    if unknown:
        raise ValueError(f"keys that are {what or 'neither MAE encoder nor decoder keys'}: {sorted(unknown)}")
    return out


def encoder_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder tensors of an official state dict (timm keys)."""
    return {k: v for k, v in state.items() if ENCODER_KEY.match(k)}


def without_ddp_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict saved from a DDP-wrapped model, without the wrapper's ``module.`` prefix."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_official(path: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """Load an official checkpoint with ``weights_only=True``. The MAE-family training scripts also pickle
    their ``args`` (an argparse.Namespace), which is allowed explicitly; anything else (mmengine's message
    hub: ``HistoryBuffer``, NumPy arrays) is a one-line ValueError naming it, unless ``trust_pickle``."""
    if trust_pickle:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        needs = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        raise ValueError(
            f"{path} pickles objects besides tensors ({', '.join(needs)}), as training checkpoints may; pass "
            "--trust-pickle for a file you trust"
        ) from None


def converter_parser(
    module: str, doc: str, src_help: str, *switches: tuple[str, str]
) -> argparse.ArgumentParser:
    """The command line of ``python -m <module>``: ``SRC DST``, the method's on/off ``switches`` (``(flag,
    help)`` pairs, in order), then ``--trust-pickle``. The description is the first paragraph of ``doc`` (the
    module's docstring); a method adds any further option to the parser returned."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])
    parser.add_argument("src", type=Path, help=src_help)
    parser.add_argument("dst", type=Path, help="output file (.pth)")
    for flag, help_text in switches:
        parser.add_argument(flag, action="store_true", help=help_text)
    parser.add_argument(
        "--trust-pickle", action="store_true", help="load SRC with weights_only=False (files you trust only)"
    )
    return parser


def run_converter(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    convert: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    model_state: str | None = None,
) -> int:
    """Load ``args.src`` (``load_official``), ``convert`` it, check that it maps completely
    (``check_complete``), record ``meta['source_file']``, write the result to ``args.dst`` atomically and
    print ``"SRC -> DST: <kind>, N tensors"``. ``<kind>`` is ``meta['kind']``, or, when ``model_state`` names
    the full conversion, ``"encoder file"`` / ``model_state`` followed by ``", arch {...}"``. A ValueError
    from loading, converting or checking is printed as ``"<prog>: error: ..."`` on one line and gives exit
    status 2 with nothing written. Returns 0 on success."""
    try:
        out = convert(load_official(args.src, args.trust_pickle))
        check_complete(out)
    except ValueError as error:
        print(f"{parser.prog}: error: {one_line(error)}", file=sys.stderr)
        return 2
    out["meta"]["source_file"] = args.src.name
    atomic_torch_save(out, args.dst)
    summary = f"{args.src} -> {args.dst}: "
    if model_state is None:
        summary += f"{out['meta']['kind']}, {len(out['state_dict'])} tensors"
    else:
        kind = "encoder file" if out["meta"]["kind"] == "encoder" else model_state
        summary += f"{kind}, {len(out['state_dict'])} tensors, arch {out['meta']['arch']}"
    print(summary)
    return 0


def check_complete(out: Mapping[str, Any]) -> None:
    """Refuse a conversion that does not map completely onto our networks: an encoder file must load strictly
    into the ViT of its shapes (``methods.encoder_file.load_encoder``), a model state must hold exactly the
    tensors, by name and shape, of the method's model at those shapes. One ValueError names every missing,
    unexpected and wrong-shape key."""
    from methods.backbone import build_vit
    from methods.encoder_file import load_encoder

    state, kind = out["state_dict"], out["meta"]["kind"]
    if kind == "encoder":
        load_encoder(out, build_vit(shapes_of(state)))  # an EncoderLoadError (a ValueError) names the keys
        return
    import methods

    # ColorMAE changes only the mask: its networks, hence its tensors, are MAE's
    model = methods.build("mae" if kind == "colormae" else kind, shapes_of(state, "encoder."))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or wrong_shape:
        found = [("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)]
        detail = "; ".join(f"{what}: {keys}" for what, keys in found if keys)
        raise ValueError(f"the converted {kind} state does not map onto our {kind} model: {detail}")


def shapes_of(state: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, Any]:
    """The architecture keys a state dict's tensor shapes fix (encoder keys under ``prefix``; the decoder's
    from ``decoder.*`` when present). Head counts leave no trace in the shapes: 1 head each."""
    needed = [f"{prefix}{k}" for k in ("patch_embed.proj.weight", "pos_embed", "blocks.0.mlp.fc1.weight")]
    if absent := [k for k in needed if k not in state]:
        raise ValueError(f"missing {absent}: the tensors the encoder's shapes are read from")
    width, _, patch, _ = state[f"{prefix}patch_embed.proj.weight"].shape
    blocks = {int(k.removeprefix(prefix).split(".")[1]) for k in state if k.startswith(f"{prefix}blocks.")}
    arch = dict(
        img_size=math.isqrt(state[f"{prefix}pos_embed"].shape[1] - 1) * patch,
        patch_size=patch,
        embed_dim=width,
        depth=max(blocks) + 1,
        num_heads=1,
        mlp_ratio=state[f"{prefix}blocks.0.mlp.fc1.weight"].shape[0] / width,
    )
    if "decoder.embed.weight" in state:
        decoder_blocks = {int(k.split(".")[2]) for k in state if k.startswith("decoder.blocks.")}
        arch.update(
            decoder_embed_dim=state["decoder.embed.weight"].shape[0],
            decoder_depth=max(decoder_blocks, default=-1) + 1,
            decoder_num_heads=1,
        )
    return arch
