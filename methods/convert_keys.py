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
import pickle
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from methods.atomic import atomic_torch_save

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
    one_line_errors: bool = False,
) -> int:
    """Load ``args.src`` (``load_official``), ``convert`` it, record ``meta['source_file']``, write the result
    to ``args.dst`` atomically and print ``"SRC -> DST: <kind>, N tensors"``. ``<kind>`` is ``meta['kind']``,
    or, when ``model_state`` names the full conversion, ``"encoder file"`` / ``model_state`` followed by
    ``", arch {...}"``. A ValueError from loading or converting propagates, or with ``one_line_errors`` is
    printed as ``"<prog>: error: ..."`` and gives exit status 2 with nothing written. Returns 0 on success."""
    try:
        out = convert(load_official(args.src, args.trust_pickle))
    except ValueError as error:
        if not one_line_errors:
            raise
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
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
