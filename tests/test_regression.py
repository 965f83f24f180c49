"""The micro regression: re-run Tables 1-5 on the micro budget with one pretraining seed (Tables 2-5 reuse
Table 1's checkpoints) and compare every cell with ``tables/recorded/micro.csv`` (written by
``python reproduce/record.py --budget micro``), within the tolerance ``tables.regression.tolerance``
derives from the recorded spread over pretraining seeds.

Only methods that have recorded cells are re-run: a method added since the last recording is not compared
until ``reproduce/record.py`` is run again (the test says which ones). A table with no recorded cell fails,
with the command that records it."""

from __future__ import annotations

import dataclasses
import math
import warnings

import pytest

from reproduce import table1, table2, table3, table4, table5
from tables import regression
from tables.specs import BASELINE

pytestmark = pytest.mark.e2e

RECORDED = regression.recorded_path("micro")
TABLES = (1, 2, 3, 4, 5)  # the tables the regression re-runs and compares


@pytest.fixture(scope="module")
def recorded():
    if not RECORDED.is_file():
        pytest.fail(f"{RECORDED} is missing: run `python reproduce/record.py --budget micro` and commit it")
    return regression.read_recorded(RECORDED)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One work dir for every table: Tables 2-5 reuse Table 1's runs (and the CLIP teacher) by run key."""
    return tmp_path_factory.mktemp("regression")


@pytest.fixture(scope="module")
def current(recorded, work):
    import methods

    def recorded_methods(number: int) -> str:
        """The methods with recorded cells in that table. The reference rows (random-init, the CLIP
        teacher) come by themselves; a recorded method that no longer exists is not re-run, so its recorded
        cells fail the comparison as missing. Per table: Table 1's rows also hold the variants that only
        Table 5 runs (their probe, fine-tune and k-NN records), which Tables 2-4 never recorded."""
        rows = {c.row.split("@")[0] for c in recorded if c.table == f"table{number}"}
        return ",".join(sorted(rows & set(methods.list_methods())))

    new = sorted(set(methods.list_methods()) - set(recorded_methods(1).split(",")))
    if new:
        warnings.warn(
            f"not compared (no recorded cells yet): {', '.join(new)}; run reproduce/record.py", stacklevel=1
        )
    args = ["--budget", "micro", "--seeds", "1", "--work-dir", str(work)]
    args += ["--out-dir", str(work / "out"), "--no-results-md"]
    table1.main([*args, "--methods", recorded_methods(1)])
    for number, table in ((2, table2), (3, table3), (4, table4)):  # on Table 1's checkpoints (run keys)
        table.main([*args, "--methods", recorded_methods(number)])
    rows5 = {c.row for c in recorded if c.table == "table5"}
    table5.main([*args, "--rows", ",".join(r for r in table5.rows() if r in rows5)])
    return regression.cells_from_records(work, "micro", [regression.TABLES[t] for t in TABLES])


def _recorded_table(recorded, number: int):
    cells = [c for c in recorded if c.table == f"table{number}"]
    if not cells:
        pytest.fail(
            f"{RECORDED} has no table{number} cells: run `python reproduce/record.py --budget micro` "
            "and commit the CSV"
        )
    return cells


@pytest.mark.parametrize("number", TABLES)
def test_micro_table_matches_the_recorded_numbers(recorded, current, number):
    table_recorded = _recorded_table(recorded, number)
    table_current = [c for c in current if c.table == f"table{number}"]
    failures = regression.compare(table_recorded, table_current)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("number", TABLES)
def test_a_recorded_value_moved_beyond_tolerance_fails(recorded, current, number):
    """The comparison is not vacuous: shifting any compared recorded cell by just over its tolerance makes
    the same current run fail, on exactly that cell."""
    table_recorded = _recorded_table(recorded, number)
    table_current = [c for c in current if c.table == f"table{number}"]
    compared = [c for c in table_recorded if c.kind not in regression.NOT_COMPARED]
    assert compared
    pooled = regression.pooled_spread(table_recorded)  # moving a mean leaves every std as it is
    for cell in compared:
        now = next(c.mean for c in table_current if c.key == cell.key)
        tol = regression.tolerance(cell, pooled=pooled.get((cell.table, cell.column), math.nan))
        moved = dataclasses.replace(cell, mean=now + 1.01 * tol + 1e-9)
        others = [c for c in table_recorded if c.key != cell.key]
        failures = regression.compare([*others, moved], table_current)
        assert len(failures) == 1 and failures[0].startswith(cell.key), failures


def test_pretrained_mae_beats_the_random_init_baseline(current):
    """The floor of Table 1: on the micro run, MAE's linear probe (pooled patch tokens) scores above the
    same ViT at its random initialisation (the recorded run puts it more than 3σ above: test_signal.py)."""
    lin = {c.row: c.mean for c in current if c.column == "lin_top1"}
    assert lin["mae"] > lin[BASELINE], lin
