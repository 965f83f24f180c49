"""Record the regression numbers of a budget: run its tables (1, then 4 and 5 on the same checkpoints) with
several pretraining seeds and write every cell (mean, spread over pretraining seeds, provenance) to
``tables/recorded/<budget>.csv``.

    python reproduce/record.py --budget micro [--seeds 3] [--work-dir DIR] [--tables 1,4,5]

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

from reproduce import table1, table4, table5  # noqa: E402
from tables.regression import cells_from_records, recorded_path, write_recorded  # noqa: E402

# Pretraining seeds of the recorded run: pretraining is the largest source of variance, and the regression
# tolerance is derived from its spread, so it needs at least three.
MIN_SEEDS = 3


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="micro", help="budget to record (default: micro, the CI budget)")
    p.add_argument("--seeds", type=int, default=MIN_SEEDS, help=f"pretraining seeds (at least {MIN_SEEDS})")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: all discovered)")
    p.add_argument("--work-dir", default=None, help="runs and records (default: a temporary folder)")
    p.add_argument("--out", default=None, help="CSV to write (default: tables/recorded/<budget>.csv)")
    p.add_argument(
        "--tables",
        default="1,4,5",
        help="tables to run, in one work dir (Tables 4 and 5 reuse Table 1's runs); default: 1,4,5",
    )
    args = p.parse_args(argv)
    if args.seeds < MIN_SEEDS:
        raise SystemExit(
            f"--seeds {args.seeds}: the recorded spread needs at least {MIN_SEEDS} pretraining seeds"
        )
    with tempfile.TemporaryDirectory(prefix="mim-record-") as tmp:
        work_dir = Path(args.work_dir or tmp)
        table_args = [
            "--budget",
            args.budget,
            "--seeds",
            str(args.seeds),
            "--work-dir",
            str(work_dir),
            "--out-dir",
            str(work_dir / "out"),
            "--no-results-md",
        ]
        tables = set(args.tables.split(","))
        if "1" in tables:
            table1.main([*table_args, *(["--methods", args.methods] if args.methods else [])])
        if "4" in tables:  # DAVIS on the encoders Table 1 just pretrained (reused by run key)
            table4.main([*table_args, *(["--methods", args.methods] if args.methods else [])])
        if "5" in tables:
            table5.main(table_args)
        cells = cells_from_records(work_dir, args.budget)
        path = write_recorded(cells, args.out or recorded_path(args.budget))
    print(f"recorded {len(cells)} cells of budget '{args.budget}' to {path}")
    return path


if __name__ == "__main__":
    main()
