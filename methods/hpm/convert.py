"""Convert an official HPM checkpoint (Haochen-Wang409/HPM) to our HPM model state.

    python -m methods.hpm.convert SRC DST [--encoder-only [--ema]] [--trust-pickle]

``main_pretrain.py`` saves ``{'epoch', 'state_dict', 'optimizer', 'model', 'ema_state_dict', 'loss_scaler'}``:
``state_dict`` is the trained model (with DDP's ``module.`` prefix when run distributed), ``model`` the
architecture's NAME (a string), ``ema_state_dict`` timm ModelEma's copy (never prefixed). The MAE-style
``util/misc.py::save_model`` layout, ``{'model': state_dict, ...}``, and ``model_ema`` for the EMA are
accepted too, as is a bare state dict. Every network is ``models_mae_learn_loss.MaskedAutoencoderViT``:
encoder keys are timm's and pass unchanged, the reconstructor's are renamed as for MAE (``decoder_embed`` ->
``decoder.embed``, ...), the loss predictor's ``decoder_{blocks,norm,pred}_losspred`` become
``loss_predictor.{blocks,norm,pred}``. The trained model goes to ``encoder.*`` / ``decoder.*`` /
``loss_predictor.*``, the EMA to ``teacher.module.*``, so ``HPM.load_state_dict(out['state_dict'],
strict=True)`` restores both. Without an EMA entry the EMA is set to the trained model (what ModelEma holds
when it is created; ``meta['ema']`` says so). Any other key (``vis_mask_token`` of ``--vis_mask_ratio`` > 0
runs included) is an error.

``--encoder-only`` writes an encoder file: the trained model's encoder, which the official fine-tuning and
linear-probe scripts load; ``--ema`` takes the EMA's (``main_finetune.py --teacher``).
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

RENAMES = {  # official models_mae_learn_loss.py name -> ours: the loss predictor's, then MAE's decoder's
    "decoder_blocks_losspred.": "loss_predictor.blocks.",
    "decoder_norm_losspred.": "loss_predictor.norm.",
    "decoder_pred_losspred.": "loss_predictor.pred.",
    **MAE_DECODER_RENAMES,
}
UNKNOWN = "not HPM encoder, reconstructor or loss-predictor keys"
STUDENT_ENTRIES = ("state_dict", "model")  # main_pretrain.py; util/misc.py::save_model
EMA_ENTRIES = ("ema_state_dict", "model_ema")
SOURCE = "Haochen-Wang409/HPM (official HPM checkpoint)"


def convert(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Official checkpoint -> ``{'state_dict': HPM keys (trained model and EMA), 'meta': {...}}``."""
    student = _network(checkpoint, STUDENT_ENTRIES, bare_ok=True)
    ema = _network(checkpoint, EMA_ENTRIES)
    state = to_model_keys(student, RENAMES, what=UNKNOWN)
    state |= to_model_keys(
        ema if ema is not None else student, RENAMES, prefix="teacher.module.", what=UNKNOWN
    )
    meta = {
        "source": SOURCE,
        "converted_by": "methods.hpm.convert",
        "kind": "hpm",
        "method": "hpm",
        "ema": "from the checkpoint" if ema is not None else "copied from the trained model (no EMA entry)",
    }
    if isinstance(checkpoint.get("model"), str):
        meta["official_arch"] = checkpoint["model"]
    return {"state_dict": state, "meta": meta}


def encoder_file(checkpoint: dict[str, Any], ema: bool = False) -> dict[str, Any]:
    """The trained model's encoder (or the EMA's) as an encoder file payload."""
    network = (
        _network(checkpoint, EMA_ENTRIES) if ema else _network(checkpoint, STUDENT_ENTRIES, bare_ok=True)
    )
    if network is None:
        raise ValueError(f"no EMA in this checkpoint (looked for {', '.join(EMA_ENTRIES)})")
    encoder = encoder_keys(network)
    meta = {
        "source": SOURCE,
        "converted_by": "methods.hpm.convert",
        "kind": "encoder",
        "method": "hpm",
        "network": "ema" if ema else "model",
    }
    return encoder_payload(encoder, meta)


def _network(checkpoint: dict[str, Any], entries: tuple[str, ...], bare_ok: bool = False):
    for key in entries:
        if isinstance(checkpoint.get(key), dict):
            return without_ddp_prefix(checkpoint[key])
    if bare_ok and checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return without_ddp_prefix(checkpoint)
    if bare_ok:
        raise ValueError(
            f"not an HPM checkpoint: no state dict under {', '.join(entries)} and not a bare one"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = converter_parser(
        "methods.hpm.convert",
        __doc__,
        "official HPM checkpoint (.pth)",
        ("--encoder-only", "write an encoder file"),
        ("--ema", "with --encoder-only: the EMA's encoder"),
    )
    args = parser.parse_args(argv)
    if args.ema and not args.encoder_only:
        parser.error("--ema needs --encoder-only (the full conversion always holds both networks)")
    if args.encoder_only:
        return run_converter(parser, args, lambda checkpoint: encoder_file(checkpoint, args.ema))
    return run_converter(parser, args, convert)


if __name__ == "__main__":
    sys.exit(main())
