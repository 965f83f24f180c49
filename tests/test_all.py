"""reproduce/all.py: every table planned first, each job once, one estimate; the shared pipeline skips what
another table already ran."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from methods.cli import UserInputError
from reproduce import all as all_tables
from reproduce import pipeline
from reproduce.pipeline import EXPECTED_MINUTES, Pipeline, Protocol, Row, TableRun, expected_minutes

ROOT = Path(__file__).resolve().parents[1]


def protocol(name: str, seeds=(0,)) -> Protocol:
    return Protocol(name, name, lambda encoder, seed: {}, seeds=seeds)


def test_every_table_is_planned_first_and_each_job_kept_once(monkeypatch):
    probe, ade = protocol("linear_probe", (0, 1)), protocol("ade20k")
    mae, init = Row("mae", 0), Row("random-init", 0, "random-init")

    def table1(t):
        return t.run([probe], [mae, init])

    def table2(t):
        return t.run([ade], [mae, init])

    def table5(t):  # Table 5's MAE row is Table 1's
        return t.run([probe], [mae, Row("cmtmae-alpha-1", 0)])

    monkeypatch.setattr(all_tables, "RUNS", {1: table1, 2: table2, 5: table5})
    t = TableRun(SimpleNamespace(budget="tiny"), None, Path("w"), [])
    jobs = all_tables.plan_all(t, [1, 2, 5])
    assert [j.label for j in jobs] == [
        "mae (pretrain seed 0): pretrain",
        "mae (pretrain seed 0): linear_probe, seed 0",
        "mae (pretrain seed 0): linear_probe, seed 1",
        "random-init (init seed 0): initialise",
        "random-init (init seed 0): linear_probe, seed 0",
        "random-init (init seed 0): linear_probe, seed 1",
        "mae (pretrain seed 0): ade20k",
        "random-init (init seed 0): ade20k",
        "cmtmae-alpha-1 (pretrain seed 0): pretrain",
        "cmtmae-alpha-1 (pretrain seed 0): linear_probe, seed 0",
        "cmtmae-alpha-1 (pretrain seed 0): linear_probe, seed 1",
    ]
    assert t.collect is None  # planning leaves the TableRun ready to run
    tiny = EXPECTED_MINUTES["tiny"]
    expected = tiny["pretrain"] + tiny["pretrain:cmtmae"] + 6 * tiny["linear_probe"] + 2 * tiny["ade20k"]
    assert sum(expected_minutes("tiny", j) for j in jobs) == pytest.approx(expected)
    assert f"11 jobs on budget tiny (2 pretrainings): expected ~{expected:.0f} min" in all_tables.estimate(
        "tiny", jobs
    )


def test_the_shared_pipeline_never_repeats_a_job(monkeypatch):
    ran = []
    probe = Protocol("linear_probe", "probe", lambda encoder, seed: ran.append((encoder.method, seed)) or {})
    monkeypatch.setattr(pipeline, "protocol_record", lambda result, **kw: Path("record.json"))
    run = Pipeline(SimpleNamespace(budget="micro"), SimpleNamespace(manifest_hash="h"), Path("w"))
    rows = [Row("ext:a", 0, "file", Path("a"))]
    run.run(pipeline.plan(rows, [probe]))
    run.run(pipeline.plan(rows, [probe]))  # a second table with the same row and protocol
    assert ran == [("ext:a", 0)]
    left = run.pending(pipeline.plan(rows, [probe, protocol("knn")]))
    assert [j.label for j in left] == ["ext:a: knn"]


@pytest.mark.parametrize("arg", ["", "6", "1,x"])
def test_unknown_tables_are_refused(arg):
    with pytest.raises(UserInputError, match="--tables"):
        all_tables.selected_tables(arg)


def test_the_default_run_updates_results_md_and_a_subset_does_not():
    assert all_tables.parse_args([]).changed == []
    assert all_tables.parse_args(["--tables", "1,3"]).changed == ["--tables 1,3"]


@pytest.mark.e2e
def test_plan_prints_the_estimate_and_runs_nothing(tmp_path):
    work = tmp_path / "w"
    cmd = [
        sys.executable,
        str(ROOT / "reproduce/all.py"),
        "--budget",
        "micro",
        "--plan",
        "--work-dir",
        str(work),
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    head = out.splitlines()[0]
    assert head.startswith("378 jobs on budget micro (51 pretrainings): expected ~") and not work.exists()
