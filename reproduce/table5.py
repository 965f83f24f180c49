"""Table 5: CMT-MAE's ablations under one budget (masking source, target, alpha, stage-1 length), and those
any other method folder declares.

    python reproduce/table5.py [--budget tiny] [--seeds N] [--work-dir DIR] [--skip finetune] [--out-dir DIR]
                               [--results-md | --no-results-md] [--verbose]

Rows: MAE (random masking, pixel target), then every method whose ``config.py`` declares ``ablations``, with
its default and variants: CMT-MAE's default, its teacher-only variant (alpha = 0 throughout) and its
ablations (one choice changed each: masking source random / teacher / student, target pixels / teacher /
student, stage 2's alpha, stage-1 length), and the CLIP teacher's own linear probe as a reference row.
Each row is pretrained (or reused, same run key rules as Table 1) and evaluated with the Table 1 protocols
and the same seeds policy (``TableRun.eval_seeds``); the table is rendered by ``tables/render.py``
(markdown, CSV and LaTeX in ``<work-dir>/tables/<budget>/``; the Table 5 section of RESULTS.md on the default
run or with ``--results-md``, as Table 1) and its cells are regression cells like Table 1's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

import methods  # noqa: E402
from methods.registry import list_ablations  # noqa: E402
from reproduce.pipeline import (  # noqa: E402
    TableParser,
    TableRun,
    add_run_args,
    in1k_protocols,
    open_table,
    results_md_for,
)
from tables.specs import TABLE5  # noqa: E402

#: the random-masking baseline every ablation is read against
BASELINE_ROW = "mae"


def rows() -> list[str]:
    """MAE, then every method whose ``config.py`` declares ``ablations`` (CMT-MAE's, and any new method
    folder's): its default, its variants and its ablations."""
    from methods.registry import get_spec

    ablated = [m for m in methods.list_methods(variants=False) if list_ablations(m)]
    family = lambda m: [n for n in methods.list_methods() if n == m or get_spec(n).base == m]
    return [BASELINE_ROW, *(n for m in ablated for n in [*family(m), *list_ablations(m)])]


def describe(name: str) -> str:
    """What a row changes with respect to its method's default, from the method config (the table notes)."""
    from methods.registry import get_spec

    if name == BASELINE_ROW:
        return f"`{name}`: random masking, pixel target (the budget's MAE)"
    base = get_spec(name).base or name
    default, own = methods.method_config(base), methods.method_config(name)
    changed = {k: v for k, v in own.items() if default.get(k) != v}
    if not changed:
        return f"`{name}`: {base}'s default config"
    return f"`{name}`: " + ", ".join(f"{k}={v!r}" for k, v in changed.items())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = TableParser(description=__doc__, script=__file__)
    add_run_args(p)
    p.add_argument("--rows", default=None, help="comma-separated rows (default: all, see --list)")
    p.add_argument("--list", action="store_true", help="print the rows and what each changes, then exit")
    p.add_argument("--seeds", type=int, default=None, help="pretraining and evaluation seeds (as Table 1)")
    p.add_argument("--skip", default="", help="comma-separated protocols to skip: linear_probe,finetune,knn")
    return p.parse_args(argv)


def run_table(
    t: TableRun, names: Sequence[str] | None = None, skip: frozenset[str] = frozenset()
) -> Path | None:
    """The rows ``names`` (default: all) with the ImageNet-1K protocols, then the rendered Table 5; None when
    ``t`` only prints its plan."""
    names = list(names or rows())
    unknown = sorted(set(names) - set(rows()))
    if unknown:
        raise SystemExit(f"unknown Table 5 row(s) {', '.join(unknown)}; known: {', '.join(rows())}")
    _, probe_seeds, ft_seeds, _ = t.eval_seeds()
    protocols = in1k_protocols(t.cfg, t.data, t.work_dir, probe_seeds, ft_seeds, skip)
    if not t.run(protocols, t.rows(names, baseline=False)):
        return None
    notes = "Rows: " + "; ".join(describe(n) for n in names) + "."
    t.show(t.render(dataclasses.replace(TABLE5, notes=(*TABLE5.notes, notes))))
    return t.out_dir / t.cfg.budget / "table5.md"


def main(argv: list[str] | None = None) -> Path | None:
    args = parse_args(argv)
    if args.list:
        for name in rows():
            print(describe(name))
        return None
    results = results_md_for(args)
    t = open_table(
        args.budget,
        work_dir=Path(args.work_dir),
        data_root=args.data_root,
        seeds=args.seeds,
        out_dir=Path(args.out_dir) if args.out_dir else None,
        results_md=results.path,
        results_md_note=results.note,
        plan_only=args.plan,
        verbose=args.verbose,
    )
    names = args.rows.split(",") if args.rows else None
    return run_table(t, names, frozenset(filter(None, args.skip.split(","))))


if __name__ == "__main__":
    from reproduce import cli

    cli.run(main)
