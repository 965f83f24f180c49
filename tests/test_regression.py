"""The micro regression: re-run Table 1 on the micro budget with one pretraining seed and compare every cell
with ``tables/recorded/micro.csv`` (written by ``python reproduce/record.py --budget micro``), within the
tolerance ``tables.regression.tolerance`` derives from the recorded spread over pretraining seeds.

Only methods that have recorded cells are re-run: a method added since the last recording is not compared
until ``reproduce/record.py`` is run again (the test says which ones)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from reproduce import table1, table5
from tables import regression
from tables.specs import BASELINE

pytestmark = pytest.mark.slow

RECORDED = regression.recorded_path("micro")


@pytest.fixture(scope="module")
def recorded():
    if not RECORDED.is_file():
        pytest.fail(f"{RECORDED} is missing: run `python reproduce/record.py --budget micro` and commit it")
    return regression.read_recorded(RECORDED)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One work dir for both tables: Table 5 reuses Table 1's MAE, CMT-MAE and teacher runs by run key."""
    return tmp_path_factory.mktemp("regression")


@pytest.fixture(scope="module")
def current(recorded, work):
    import methods

    rows = {c.row.split("@")[0] for c in recorded if c.table == "table1"}
    recorded_methods = sorted(rows - {BASELINE})  # table1 adds the random-init row by itself
    new = sorted(set(methods.list_methods()) - set(recorded_methods))
    if new:
        warnings.warn(
            f"not compared (no recorded cells yet): {', '.join(new)}; run reproduce/record.py", stacklevel=1
        )
    table1.main(
        [
            "--budget",
            "micro",
            "--seeds",
            "1",
            "--methods",
            ",".join(recorded_methods),
            "--work-dir",
            str(work),
            "--out-dir",
            str(work / "out"),
            "--no-results-md",
        ]
    )
    return regression.cells_from_records(work, "micro", [regression.TABLES[1]])


def test_micro_table1_matches_the_recorded_numbers(recorded, current):
    table1_recorded = [c for c in recorded if c.table == "table1"]
    failures = regression.compare(table1_recorded, current)
    assert not failures, "\n".join(failures)


def test_a_recorded_value_moved_beyond_tolerance_fails(recorded, current):
    """The comparison is not vacuous: shifting any compared recorded cell by just over its tolerance makes
    the same current run fail, on exactly that cell."""
    table1_recorded = [c for c in recorded if c.table == "table1"]
    compared = [c for c in table1_recorded if c.kind not in regression.NOT_COMPARED]
    assert compared
    for cell in compared:
        now = next(c.mean for c in current if c.key == cell.key)
        moved = dataclasses.replace(cell, mean=now + 1.01 * regression.tolerance(cell) + 1e-9)
        others = [c for c in table1_recorded if c.key != cell.key]
        failures = regression.compare([*others, moved], current)
        assert len(failures) == 1 and failures[0].startswith(cell.key), failures


def test_pretrained_mae_beats_the_random_init_baseline(current):
    """The floor of Table 1: on the micro run, MAE's linear probe (CLS token) scores above the same ViT at its
    random initialisation (pilot: 23.1 and 20.7 % over two pretraining seeds, random init 18.5 %)."""
    lin = {c.row: c.mean for c in current if c.column == "lin_top1"}
    assert lin["mae"] > lin[BASELINE], lin


@pytest.fixture(scope="module")
def current_table5(recorded, current, work):
    """Table 5 (CMT-MAE ablations) re-run on micro with one pretraining seed, for its recorded rows, in
    Table 1's work dir (``current`` runs first)."""
    recorded_rows = {c.row for c in recorded if c.table == "table5"}
    if not recorded_rows:
        pytest.fail("no Table 5 cells recorded: run `python reproduce/record.py --budget micro`, commit it")
    rows = [r for r in table5.rows() if r in recorded_rows]  # the teacher's reference row comes by itself
    table5.main(
        [
            "--budget",
            "micro",
            "--seeds",
            "1",
            "--rows",
            ",".join(rows),
            "--work-dir",
            str(work),
            "--out-dir",
            str(work / "out"),
            "--no-results-md",
        ]
    )
    return regression.cells_from_records(work, "micro", [regression.TABLES[5]])


def test_micro_table5_matches_the_recorded_numbers(recorded, current_table5):
    table5_recorded = [c for c in recorded if c.table == "table5"]
    failures = regression.compare(table5_recorded, current_table5)
    assert not failures, "\n".join(failures)
