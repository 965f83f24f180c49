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

import sys
from typing import Any

import torch

from methods.convert_keys import (
    MAE_DECODER_RENAMES,
    converter_parser,
    encoder_keys,
    run_converter,  # load_official: MAE's file format, tensors plus a pickled argparse.Namespace
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
    parser = converter_parser(
        "methods.rcmae.convert",
        __doc__,
        "official RC-MAE checkpoint (.pth)",
        ("--encoder-only", "write the teacher's encoder file"),
    )
    args = parser.parse_args(argv)
    return run_converter(parser, args, teacher_encoder if args.encoder_only else convert)


if __name__ == "__main__":
    sys.exit(main())
