"""The result-record format: round trip, validation, atomic writes."""

from __future__ import annotations

import json

import pytest

from tables import records

PROV = {k: "x" for k in records.REQUIRED_PROVENANCE} | {"world_size": 1, "batch_size": 64, "seed": 0}


def make(**kw):
    base = dict(
        budget="micro", method="mae", protocol="linear_probe", seed=1, metrics={"top1": 12.5}, provenance=PROV
    )
    return records.Record(**(base | kw))


def test_round_trip_and_filtering(tmp_path):
    path = records.write_record(make(), tmp_path)
    assert path == tmp_path / "records/micro/mae/linear_probe/seed1.json"
    assert records.read_record(path) == make(created=records.read_record(path).created)
    records.write_record(make(method="hpm"), tmp_path)
    assert [r.method for r in records.iter_records(tmp_path, method="hpm")] == ["hpm"]
    assert len(list(records.iter_records(tmp_path, budget="micro"))) == 2
    # Protocol runs on encoders of different pretraining seeds do not overwrite each other.
    a = records.write_record(make(pretrain_seed=0), tmp_path)
    b = records.write_record(make(pretrain_seed=1), tmp_path)
    assert a.name == "pretrain0-seed1.json" and b.name == "pretrain1-seed1.json"
    assert {r.pretrain_seed for r in records.iter_records(tmp_path, method="mae")} == {None, 0, 1}
    # ... nor do runs with a method's own downstream recipe.
    c = records.write_record(make(pretrain_seed=0, extra={"recipe": "hpm"}), tmp_path)
    assert c.name == "pretrain0-seed1@hpm.json" and a.is_file()
    assert records.read_record(c).extra["recipe"] == "hpm"


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"metrics": {"top1": float("nan")}}, "metric 'top1' must be a finite number"),
        ({"method": "a/b"}, "'method' must be a non-empty string"),
        ({"seed": "0"}, "'seed' must be an integer"),
        ({"pretrain_seed": 1.0}, "'pretrain_seed' must be an integer"),
        ({"provenance": {"seed": 0}}, "provenance lacks code_commit"),
    ],
)
def test_invalid_records_are_refused(tmp_path, kw, message):
    with pytest.raises(records.RecordError, match=message):
        records.write_record(make(**kw), tmp_path)


def test_reading_a_broken_file_names_it(tmp_path):
    bad = tmp_path / "seed0.json"
    bad.write_text("{not json")
    with pytest.raises(records.RecordError, match=r"seed0\.json: not valid JSON"):
        records.read_record(bad)
    bad.write_text(json.dumps(make().to_dict() | {"schema_version": 99}))
    with pytest.raises(records.RecordError, match="schema_version 99"):
        records.read_record(bad)


def test_atomic_write_keeps_the_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "r.json"
    records.write_json_atomic({"a": 1}, path)
    with pytest.raises(TypeError):
        records.write_json_atomic({"a": object()}, path)  # not JSON-serialisable
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_the_code_commit_is_dirty_for_code_changes_only(tmp_path, monkeypatch):
    import subprocess

    from reproduce import provenance

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "RESULTS.md").write_text("tables\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    clean = provenance.code_commit()
    assert len(clean) == 40
    (tmp_path / "RESULTS.md").write_text("tables, updated by a run\n")
    assert provenance.code_commit() == clean, "RESULTS.md is an output"
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.code_commit() == clean + "+dirty"
