"""Every table of RESULTS.md from one command: Tables 1-5 on one budget, one dataset and one work dir.

    python reproduce/all.py [--budget tiny] [--tables 1,2,3,4,5] [--work-dir DIR] [--data-root DIR] [--plan]
                            [--results-md | --no-results-md] [--verbose]
    make reproduce-all

Everything is checked first (the budget, the dataset root, each table's recipe and layout), then every table's
jobs are planned and their expected time printed (``pipeline.EXPECTED_MINUTES``) before the first one runs.
The jobs then run in one sequence with one progress display: each encoder is pretrained once and serves every
table (Tables 2-4 evaluate Table 1's checkpoints; Table 5's MAE and CMT-MAE rows are Table 1's), a job run
for one table is never repeated for another, and a finished run in the work dir is reused by run key. Each
table is rendered as soon as its jobs are done. RESULTS.md is updated on the default run (budget tiny, every
table) or with ``--results-md``, as by the table scripts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from reproduce import table1, table2, table3, table4, table5  # noqa: E402
from reproduce.pipeline import (  # noqa: E402
    Job,
    Progress,
    TableParser,
    TableRun,
    add_run_args,
    open_table,
    results_md_for,
)

TABLES = (1, 2, 3, 4, 5)
RUNS = {
    1: table1.run_table,
    2: table2.run_table,
    3: table3.run_table,
    4: table4.run_table,
    5: table5.run_table,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = TableParser(description=__doc__, script=__file__)
    add_run_args(p, plan_help="print every table's jobs and the estimate, then exit")
    p.add_argument(
        "--tables", default=",".join(map(str, TABLES)), help="comma-separated tables (default: 1,2,3,4,5)"
    )
    return p.parse_args(argv)


def selected_tables(arg: str) -> list[int]:
    from methods.cli import UserInputError

    try:
        chosen = sorted({int(t) for t in arg.split(",") if t.strip()})
    except ValueError:
        chosen = []
    if not chosen or set(chosen) - set(TABLES):
        raise UserInputError(f"--tables {arg!r}: expected comma-separated table numbers among {TABLES}")
    return chosen


def unique(jobs: list[Job]) -> list[Job]:
    """The jobs in order, each once: an encoder job per row, a protocol job per (row, protocol, seed)."""
    seen, kept = set(), []
    for job in jobs:
        key = (job.row, job.protocol.name if job.protocol else None, job.seed)
        if key not in seen:
            seen.add(key)
            kept.append(job)
    return kept


def plan_all(t: TableRun, tables: list[int]) -> list[Job]:
    """Every job of ``tables``, each once, in the order the tables run them."""
    t.collect = []
    for number in tables:
        RUNS[number](t)
    jobs, t.collect = unique(t.collect), None
    return jobs


def estimate(budget: str, jobs: list[Job]) -> str:
    """One line: how many jobs, and the minutes they are expected to take (an upper bound: a finished run in
    the work dir is reused in seconds)."""
    pretrain = sum(1 for j in jobs if j.protocol is None and j.row.kind == "pretrain")
    minutes = Progress.of(budget, jobs).minutes
    return (
        f"{len(jobs)} jobs on budget {budget} ({pretrain} pretrainings): expected ~{minutes:.0f} min on a "
        "2-core CPU machine, less where finished runs in the work dir are reused"
    )


def main(argv: list[str] | None = None) -> list[Path]:
    args = parse_args(argv)
    tables = selected_tables(args.tables)
    if tables == list(TABLES):  # every table, in whatever order it was typed: the default run
        args.changed = [c for c in args.changed if not c.startswith("--tables")]
    results = results_md_for(args)
    checks = {2: table2.check_data, 3: table3.checker(), 4: table4.check_data}
    t = open_table(
        args.budget,
        work_dir=Path(args.work_dir),
        data_root=args.data_root,
        checks=[checks[n] for n in tables if n in checks],
        out_dir=Path(args.out_dir) if args.out_dir else None,
        results_md=results.path,
        results_md_note=results.note,
        verbose=args.verbose,
    )
    jobs = plan_all(t, tables)
    print(estimate(t.cfg.budget, jobs), flush=True)
    if args.plan:
        print("\n".join(f"  {job.label}" for job in jobs))
        return []
    t.pipeline.progress = Progress.of(t.cfg.budget, jobs)
    written = [path for number in tables if (path := RUNS[number](t)) is not None]
    print(t.pipeline.progress.summary(), flush=True)
    return written


if __name__ == "__main__":
    from reproduce import cli

    cli.run(main)
