"""Record the regression numbers of a budget: run its tables (1, then 2-5 on the same checkpoints) with
several pretraining seeds and write every cell (mean, spread over pretraining seeds, provenance) to
``tables/recorded/<budget>.csv``.

    python reproduce/record.py --budget micro [--seeds 3] [--work-dir DIR] [--tables 1,2,3,4,5] [--merge]
                               [--methods M1,M2] [--rows5 R1,R2] [--verbose]

``--merge`` re-records only the tables named by ``--tables`` and keeps the CSV's cells of the others (a new
protocol's table, without re-running the rest).

CI re-runs the budget with one seed (``tests/test_regression.py``) and compares every cell with these
values, within a tolerance derived from the recorded spread (``tables.regression.tolerance``). Re-record
deliberately whenever a change is meant to move the numbers (a new method, a fixed bug, a new recipe), and
commit the CSV with that change.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from reproduce import table1, table2, table3, table4, table5  # noqa: E402
from reproduce.pipeline import open_table  # noqa: E402
from tables.regression import cells_from_records, read_recorded, recorded_path, write_recorded  # noqa: E402
from tables.specs import TABLES  # noqa: E402

# Pretraining seeds of the recorded run: pretraining is the largest source of variance, and the regression
# tolerance is derived from its spread, so it needs at least three.
MIN_SEEDS = 3
#: the Table 5 rows the regression records and re-runs by default
RECORDED_TABLE5_ROWS = ("mae", "cmtmae", "cmtmae-teacher-only")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="micro", help="budget to record (default: micro, the CI budget)")
    p.add_argument("--seeds", type=int, default=MIN_SEEDS, help=f"pretraining seeds (at least {MIN_SEEDS})")
    p.add_argument(
        "--methods", default=None, help="comma-separated methods (default: the tables' default, every method)"
    )
    p.add_argument(
        "--rows5",
        default=",".join(RECORDED_TABLE5_ROWS),
        help="Table 5 rows to record (default: MAE, CMT-MAE and its teacher-only variant; the ablations' "
        "code is covered by the golden traces; each adds ~10 min of recording and ~3 of CI)",
    )
    p.add_argument("--work-dir", default=None, help="runs and records (default: a temporary folder)")
    p.add_argument("--out", default=None, help="CSV to write (default: tables/recorded/<budget>.csv)")
    p.add_argument(
        "--tables",
        default="1,2,3,4,5",
        help="tables to run, in one work dir (Tables 2-5 reuse Table 1's runs); default: all five, the "
        "tables the regression test compares",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the recorded cells of the tables not run (default: the CSV holds only this run's cells)",
    )
    p.add_argument("--verbose", action="store_true", help="show mmengine's logs on the console too")
    args = p.parse_args(argv)
    if args.seeds < MIN_SEEDS:
        raise SystemExit(
            f"--seeds {args.seeds}: the recorded spread needs at least {MIN_SEEDS} pretraining seeds"
        )
    tables = sorted({int(t) for t in args.tables.split(",")})
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise SystemExit(f"--tables: unknown table(s) {unknown}; known: {sorted(TABLES)}")
    with tempfile.TemporaryDirectory(prefix="mim-record-") as tmp:
        work_dir = Path(args.work_dir or tmp)
        # one budget, dataset and work dir for every table; each table's recipe and data are checked first
        checks = {2: table2.check_data, 3: table3.checker(), 4: table4.check_data}
        t = open_table(
            args.budget,
            work_dir=work_dir,
            methods=args.methods,
            checks=[checks[n] for n in tables if n in checks],
            seeds=args.seeds,
            results_md=None,  # never RESULTS.md: the cells go to the CSV, the tables to <work-dir>/tables/
            verbose=args.verbose,
        )
        # Tables 2-4 evaluate the encoders Table 1 pretrained (reused by run key); Table 5 has its own rows
        runs = {1: table1.run_table, 2: table2.run_table, 3: table3.run_table, 4: table4.run_table}
        for number in tables:
            if number == 5:
                table5.run_table(t, args.rows5.split(","))
            else:
                runs[number](t)
        out = Path(args.out or recorded_path(args.budget))
        cells = cells_from_records(work_dir, args.budget, [TABLES[t] for t in tables])
        if args.merge and out.is_file():
            run = {f"table{t}" for t in tables}
            cells = [c for c in read_recorded(out) if c.table not in run] + cells
        path = write_recorded(cells, out)
    print(f"recorded {len(cells)} cells of budget '{args.budget}' to {path}")
    return path


if __name__ == "__main__":
    from reproduce import cli

    cli.run(main)
