"""Table 3: COCO detection and instance segmentation (Mask R-CNN, box and mask AP) on every method's
pretrained encoder, fine-tuned end to end through mmdet.

    python reproduce/table3.py [--budget tiny] [--methods mae,hpm] [--seeds N] [--checkpoint NAME=PATH ...]
                               [--protocol vitdet|fpn_li2021] [--data-root DIR] [--work-dir DIR]
                               [--equalize epochs|flops] [--out-dir DIR] [--results-md | --no-results-md]
                               [--verbose]

For every discovered method (and variant) and every pretraining seed: pretrain, or reuse the finished run
with the same run key (Table 1's checkpoints, when Table 1 ran with the same budget, seeds and work dir; a
stale checkpoint is never reused). Then fine-tune Mask R-CNN on the budget's COCO-layout train split and
evaluate it once on the val split with mmdet's COCO metric (``downstream/coco``: ViTDet by default, or
``--protocol fpn_li2021``, Li et al.'s FPN on four blocks), write one record per encoder, and render Table 3
(AP box, AP mask; markdown, CSV and LaTeX in ``<work-dir>/tables/<budget>/``, and the Table 3 section of
RESULTS.md on the default run or with ``--results-md``, as Table 1) with the papers' numbers and their
protocols beside. A ``random-init`` row (the budget's ViT at MAE's initialisation, never pretrained) is
the floor; ``--no-baseline`` leaves it out. One fine-tuning run (seed 0) per encoder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from downstream.coco.protocol import PROTOCOLS
from downstream.datasets.coco_layout import check_coco_root
from downstream.recipe import DEFAULT_RECIPE, resolve_recipe
from downstream.result import ProtocolInputs
from reproduce.pipeline import Encoder, Protocol, TableRun, eval_dir, prepare_table, table_parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = table_parser(__doc__, script=__file__)
    p.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default=None,
        help="ViTDet (simple feature pyramid) or Li et al. 2021 (FPN on four blocks); default: the budget's",
    )
    return p.parse_args(argv)


def check_coco(coco: Path, synthscenes: bool) -> None:
    """Both splits' annotation files parse and every listed image exists (decoding is the run's)."""
    from synthscenes.shapes import SHAPES

    for split in ("train2017", "val2017"):
        check_coco_root(coco, split, classes=SHAPES if synthscenes else None)


def checker(protocol: str | None = None):
    """The check of the recipe (with ``protocol``) and both COCO splits, for ``open_table``."""

    def check(cfg, data) -> None:
        resolve_recipe(cfg, "coco", protocol or DEFAULT_RECIPE)
        check_coco(data.coco, str(cfg.data.name).startswith("synthscenes"))

    return check


def run_table(t: TableRun, protocol: str | None = None) -> Path | None:
    """Mask R-CNN on every row's encoder, then the rendered Table 3; None when ``t`` only prints its plan."""

    def run(enc: Encoder, seed: int) -> dict:
        from downstream.coco import run_coco

        out = eval_dir(t.work_dir, t.cfg, enc, "coco")
        recipe = protocol or DEFAULT_RECIPE
        return run_coco(ProtocolInputs(enc.path, t.cfg, t.data.coco, out, seed, recipe, sys.stderr.isatty()))

    if not t.run([Protocol("coco", "COCO Mask R-CNN", run)]):
        return None
    t.show(t.render(3))
    return t.out_dir / t.cfg.budget / "table3.md"


def main(argv: list[str] | None = None) -> Path | None:
    args = parse_args(argv)
    return run_table(prepare_table(args, checker(args.protocol)), args.protocol)


if __name__ == "__main__":
    from reproduce import cli

    cli.run(main)
