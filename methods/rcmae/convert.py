"""Convert an official RC-MAE training checkpoint (youngwanLEE/rc-mae) to our RC-MAE model state.

    python -m methods.rcmae.convert SRC DST [--trust-pickle]

``util/misc.py::save_model_distill`` saves ``{'student', 'teacher', 'student_without_ddp',
'teacher_without_ddp', 'optimizer', 'epoch', 'scaler', 'args'}``. Under DDP the ``student`` entry carries the
``module.`` prefix (the teacher is never wrapped); the ``*_without_ddp`` entries never do. Either spelling is
accepted, the ``*_without_ddp`` pair first. Both networks go into our model: the student's keys under
``encoder.`` / ``decoder.``, the teacher's under ``teacher.module.encoder.`` / ``teacher.module.decoder.``,
so ``RCMAE.load_state_dict(out['state_dict'], strict=True)`` restores both. The official networks are MAE
networks (``models_rc.MaskedAutoencoderViT``): encoder keys are timm's and pass unchanged, decoder keys are
renamed as for MAE (``decoder_embed`` -> ``decoder.embed``, ...). Any other key is an error.

For evaluation, ``--encoder-only`` writes the teacher's encoder as an encoder file (the official scripts use
``--checkpoint_key teacher``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from methods.atomic import atomic_torch_save
from methods.convert_keys import (
    MAE_DECODER_RENAMES,
    encoder_keys,
    load_official,  # the same file format as MAE's: tensors plus a pickled argparse.Namespace
    to_model_keys,
    without_ddp_prefix,
)
from methods.encoder_file import encoder_payload

SOURCE = "youngwanLEE/rc-mae (official RC-MAE checkpoint)"


def convert(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Official checkpoint -> ``{'state_dict': RCMAE keys (student and teacher), 'meta': {...}}``."""
    student = _network(checkpoint, "student")
    teacher = _network(checkpoint, "teacher")
    state = to_model_keys(student, MAE_DECODER_RENAMES)
    state |= to_model_keys(teacher, MAE_DECODER_RENAMES, prefix="teacher.module.")
    meta = {"source": SOURCE, "converted_by": "methods.rcmae.convert", "kind": "rcmae", "method": "rcmae"}
    return {"state_dict": state, "meta": meta}


def teacher_encoder(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The teacher's encoder as an encoder file payload (what the official evaluation loads)."""
    encoder = encoder_keys(_network(checkpoint, "teacher"))
    meta = {"source": SOURCE, "converted_by": "methods.rcmae.convert", "kind": "encoder", "method": "rcmae"}
    return encoder_payload(encoder, meta)


def _network(checkpoint: dict[str, Any], name: str) -> dict[str, torch.Tensor]:
    for key in (f"{name}_without_ddp", name):
        if key in checkpoint:
            return without_ddp_prefix(checkpoint[key])
    raise ValueError(f"not an RC-MAE checkpoint: no {name!r} or {name + '_without_ddp'!r} entry")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m methods.rcmae.convert", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("src", type=Path, help="official RC-MAE checkpoint (.pth)")
    parser.add_argument("dst", type=Path, help="output file (.pth)")
    parser.add_argument("--encoder-only", action="store_true", help="write the teacher's encoder file")
    parser.add_argument(
        "--trust-pickle", action="store_true", help="load SRC with weights_only=False (files you trust only)"
    )
    args = parser.parse_args(argv)
    checkpoint = load_official(args.src, args.trust_pickle)
    out = teacher_encoder(checkpoint) if args.encoder_only else convert(checkpoint)
    out["meta"]["source_file"] = args.src.name
    atomic_torch_save(out, args.dst)
    print(f"{args.src} -> {args.dst}: {out['meta']['kind']}, {len(out['state_dict'])} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
