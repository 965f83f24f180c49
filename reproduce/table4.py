"""Table 4: DAVIS-2017 video object segmentation by label propagation on every method's frozen encoder
(DINO's procedure, the official metrics), with a visualisation of one sequence next to the table.

    python reproduce/table4.py [--budget tiny] [--methods mae,hpm] [--seeds N] [--checkpoint NAME=PATH ...]
                               [--data-root DIR] [--work-dir DIR] [--equalize epochs|flops] [--out-dir DIR]
                               [--results-md | --no-results-md] [--verbose]

For every discovered method (and variant) and every pretraining seed: pretrain, or reuse the finished run
with the same run key (Table 1's checkpoints, when Table 1 ran with the same budget, seeds and work dir; a
stale checkpoint is never reused). Then propagate the first annotation of each DAVIS ``val`` sequence
(``downstream/davis``), score the predictions as the davis2017-evaluation toolkit does, write one record per
encoder, and render Table 4 (J&F-Mean, J-Mean, F-Mean; markdown, CSV, LaTeX and ``table4_davis.png``, one
sequence's frames, ground truth and each row's masks, in ``<work-dir>/tables/<budget>/``; the Table 4 section
of RESULTS.md on the default run or with ``--results-md``, as Table 1). A
``random-init`` row (the budget's ViT at MAE's initialisation, never pretrained) is the floor;
``--no-baseline`` leaves it out. The protocol has no randomness: one evaluation per encoder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from downstream.datasets.davis import check_davis_root
from downstream.davis import run_davis
from downstream.davis.visualize import sequence_panel
from downstream.recipe import resolve_recipe
from downstream.result import ProtocolInputs
from reproduce.pipeline import Encoder, Protocol, TableRun, eval_dir, prepare_table, table_parser
from tables.specs import row_order_key

VISUALISATION = "table4_davis.png"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = table_parser(__doc__, script=__file__)
    p.add_argument("--sequence", default=None, help="visualised sequence (default: the split's first)")
    return p.parse_args(argv)


def check_data(cfg, data) -> dict:
    """The recipe and the DAVIS root, checked before anything runs (one-line errors)."""
    recipe = resolve_recipe(cfg, "davis")
    check_davis_root(data.davis, recipe["split"], recipe["resolution"])
    return recipe


def run_table(t: TableRun, sequence: str | None = None) -> Path | None:
    """Label propagation on every row's encoder, the rendered Table 4 and a panel of ``sequence`` (default:
    the split's first) for each row's first pretraining seed; None when ``t`` only prints its plan."""
    cfg, data, first_seed = t.cfg, t.data, t.eval_seeds()[0][0]
    recipe = resolve_recipe(cfg, "davis")
    shown: dict[str, Path] = {}  # row -> predictions of its first pretraining seed, for the visualisation
    scores: dict[str, float] = {}

    def run(enc: Encoder, seed: int) -> dict:
        out = eval_dir(t.work_dir, cfg, enc, "davis")
        result = run_davis(ProtocolInputs(enc.path, cfg, data.davis, out, seed, progress=sys.stderr.isatty()))
        if enc.pretrain_seed == first_seed:  # the visualised row
            shown[enc.method] = Path(result["results_dir"])
            scores[enc.method] = result["metrics"]["JF_mean"]
        return result

    if not t.run([Protocol("davis", "DAVIS label propagation", run)]):
        return None
    out = t.out_dir / cfg.budget
    rendered = t.render(4)
    rows = sorted(shown, key=row_order_key)
    panel = sequence_panel(
        data.davis,
        {f"{m} (J&F {scores[m]:.1f})": shown[m] for m in rows},
        out / VISUALISATION,
        sequence=sequence,
        split=recipe["split"],
        title=f"Table 4 ({cfg.budget}): DAVIS label propagation, first pretraining seed of each row",
    )
    t.show(rendered, visualisation=panel)
    return out / "table4.md"


def main(argv: list[str] | None = None) -> Path | None:
    args = parse_args(argv)
    return run_table(prepare_table(args, check_data), args.sequence)


if __name__ == "__main__":
    from reproduce import cli

    cli.run(main)
