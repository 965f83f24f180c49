"""Table 2: ADE20K semantic segmentation, UperNet on every method's pretrained encoder (mmsegmentation, MAE's
protocol), with the papers' numbers and their protocols beside.

    python reproduce/table2.py [--budget tiny] [--methods mae,hpm] [--seeds N] [--checkpoint NAME=PATH ...]
                               [--data-root DIR] [--work-dir DIR] [--equalize epochs|flops] [--out-dir DIR]
                               [--results-md | --no-results-md] [--verbose]

For every discovered method (and variant) and every pretraining seed: pretrain, or reuse the finished run
with the same run key (Table 1's checkpoints, when Table 1 ran with the same budget, seeds and work dir; a
stale checkpoint is never reused). Then train UperNet on the encoder (``downstream/ade20k``: the budget's
``ade20k`` section written into mmseg's MAE config) and test once after the final iteration; write one record
per encoder and render Table 2 (mIoU, aAcc; markdown, CSV and LaTeX in ``<work-dir>/tables/<budget>/``, and
the Table 2 section of RESULTS.md on the default run or with ``--results-md``, as Table 1). A
``random-init`` row (the budget's ViT at MAE's initialisation, never pretrained) is the floor;
``--no-baseline`` leaves it out. One segmentation run per encoder (seed 0): the pretraining seeds vary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from downstream.ade20k import run_ade20k
from downstream.ade20k.protocol import num_classes_of
from downstream.datasets.ade20k_layout import check_ade20k_root
from downstream.recipe import resolve_recipe
from downstream.result import ProtocolInputs
from reproduce.pipeline import Encoder, Protocol, TableRun, eval_dir, prepare_table, table_parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = table_parser(__doc__, script=__file__)
    return p.parse_args(argv)


def check_data(cfg, data) -> dict:
    """The recipe and both splits of the ADE20K root, checked before anything runs (one-line errors)."""
    recipe = resolve_recipe(cfg, "ade20k")
    num_classes = num_classes_of(recipe["dataset"])
    for split in (recipe["train_split"], recipe["val_split"]):
        check_ade20k_root(data.ade20k, split, num_classes=num_classes)
    return recipe


def run_table(t: TableRun) -> Path | None:
    """UperNet on every row's encoder, then the rendered Table 2; None when ``t`` only prints its plan."""

    def run(enc: Encoder, seed: int) -> dict:
        out = eval_dir(t.work_dir, t.cfg, enc, "ade20k")
        return run_ade20k(
            ProtocolInputs(enc.path, t.cfg, t.data.ade20k, out, seed, progress=sys.stderr.isatty())
        )

    if not t.run([Protocol("ade20k", "ADE20K UperNet", run)]):
        return None
    t.show(t.render(2))
    return t.out_dir / t.cfg.budget / "table2.md"


def main(argv: list[str] | None = None) -> Path | None:
    return run_table(prepare_table(parse_args(argv), check_data))


if __name__ == "__main__":
    from reproduce import cli

    cli.run(main)
