"""Table 1: ImageNet-1K linear probe, fine-tune and k-NN of every method under one budget, with each
method's training cost and the papers' reported numbers beside them.

    python reproduce/table1.py [--budget tiny] [--methods mae,hpm] [--seeds N] [--checkpoint NAME=PATH ...]
                               [--data-root DIR] [--work-dir DIR] [--equalize epochs|flops] [--out-dir DIR]
                               [--results-md | --no-results-md] [--verbose]

For every discovered method (and variant), and every pretraining seed: pretrain, or reuse a finished run with
the same run key (config, training code and dataset; a stale checkpoint is never reused). Then run the linear
probe (several seeds on cached features), the fine-tune and the k-NN, write one record per run, and render
Table 1 from the records: markdown, CSV, LaTeX and the compute plot in ``<work-dir>/tables/<budget>/``, and
the Table 1 section of RESULTS.md on the default run (budget tiny, the default methods and seeds, no
``--checkpoint``) or with ``--results-md``; any other run prints the command that would update it.
A ``random-init`` row (the budget's ViT at MAE's initialisation, evaluated the same way, never pretrained) is
the floor every method has to clear; ``--no-baseline`` leaves it out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from reproduce.pipeline import TableRun, in1k_protocols, prepare_table, table_parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = table_parser(
        __doc__,
        "pretraining seeds and evaluation seeds per method (default: per budget, see DEFAULT_SEEDS: micro 3 "
        "pretraining x 3 probe seeds, tiny 1 x 3)",
        script=__file__,
    )
    p.add_argument("--skip", default="", help="comma-separated protocols to skip: linear_probe,finetune,knn")
    return p.parse_args(argv)


def run_table(t: TableRun, skip: frozenset[str] = frozenset()) -> Path | None:
    """Every row's pretraining and ImageNet-1K protocols (``skip`` leaves some out), then the rendered
    Table 1; None when ``t`` only prints its plan."""
    _, probe_seeds, ft_seeds, _ = t.eval_seeds()
    if not t.run(in1k_protocols(t.cfg, t.data, t.work_dir, probe_seeds, ft_seeds, skip)):
        return None
    t.show(t.render(1))
    return t.out_dir / t.cfg.budget / "table1.md"


def main(argv: list[str] | None = None) -> Path | None:
    args = parse_args(argv)
    return run_table(prepare_table(args), frozenset(filter(None, args.skip.split(","))))


if __name__ == "__main__":
    from reproduce import cli

    cli.run(main)
