"""The golden traces (tests/golden/__init__.py) and the mutation suite that proves they bite.

Every trace runs once, unmutated, in a session fixture that also records which mutation targets each trace
calls. ``test_trace_matches_its_committed_file`` compares each run with its committed file. Each mutation is
then applied in-process and re-runs the traces that call its target: exactly the traces it declares must
fail, each with a message naming the trace, the step and the term that moved first, and every other trace
that runs the mutated code must still match.
"""

from __future__ import annotations

import contextlib
import io

import pytest

from tests.golden import mutations, traces
from tests.golden.compare import Comparison, compare

NAMES = traces.trace_names()


def quiet_run(name: str, setting: traces.Setting, stop_early: bool = False) -> traces.Trace:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return traces.run_trace(name, setting, stop_early=stop_early)


@pytest.fixture(scope="session")
def setting(golden_setting) -> traces.Setting:
    return golden_setting


@pytest.fixture(scope="session")
def runs(setting):
    """{trace: (the unmutated run, the mutation targets it called)}."""
    return mutations.baseline(setting, NAMES, lambda name: quiet_run(name, setting))


@pytest.mark.parametrize("name", NAMES)
def test_trace_matches_its_committed_file(name, runs):
    path = traces.trace_path(name)
    assert path.is_file(), (
        f"{path} is missing: record it with `python -m tests.golden --update --only {name}`"
    )
    trace, _ = runs[name]
    result = compare(traces.read_trace(name), trace)
    assert result.ok, result.message()


def test_every_committed_trace_belongs_to_a_trace():
    stale = sorted(p.stem for p in traces.TRACE_DIR.glob("*.json") if p.stem not in NAMES)
    assert not stale, f"trace files without a trace (a removed method?): {stale}; delete them"


def test_the_comparison_names_the_first_step_and_term_that_moved():
    recorded = traces.read_trace("mae")
    moved = traces.Trace.from_dict(
        {
            **vars(recorded),
            "steps": [dict(s) for s in recorded.steps],
            "fingerprints": dict(recorded.fingerprints),
        }
    )
    moved.steps[5]["loss_rec"] *= 1 + 2e-5  # just outside the 1e-5 tolerance
    moved.steps[9]["loss"] *= 1 + 5e-6  # inside it
    result = compare(recorded, moved)
    assert not result.ok and len(result.differences) == 1
    assert str(result.first).startswith("step 5, loss_rec: recorded")
    assert "'mae' diverged first at step 5, loss_rec" in result.message()
    fp = dict(
        recorded.fingerprints["encoder_file"], sumsq=recorded.fingerprints["encoder_file"]["sumsq"] * 1.00001
    )
    moved.steps[5]["loss_rec"] = recorded.steps[5]["loss_rec"]
    moved.fingerprints["encoder_file"] = fp
    assert compare(recorded, moved).first.where == "fingerprint encoder_file"


@pytest.mark.parametrize("mutation", mutations.MUTATIONS, ids=lambda m: m.name)
def test_mutation_fails_exactly_the_traces_that_run_it(mutation, runs, setting):
    expected = mutation.fails(NAMES)
    touched = {n for n, (_, called) in runs.items() if mutation.target in called}
    assert expected <= touched, (
        f"{mutation.name}: declared to fail {sorted(expected - touched)}, which never call it"
    )
    for name in touched:  # the same traces pass when nothing is mutated
        assert compare(traces.read_trace(name), runs[name][0]).ok, f"{name} fails even unmutated"
    run = lambda name: quiet_run(name, setting, stop_early=True)
    outcome = mutations.run_mutation(mutation, setting, runs, run)
    failed: dict[str, Comparison] = {n: r for n, r in outcome.results.items() if not r.ok}
    assert set(failed) == expected, (
        f"{mutation.name} ({mutation.fault}) should fail {sorted(expected)}, failed {sorted(failed)}"
    )
    for name, result in failed.items():
        message = result.message()
        assert message.startswith(f"golden trace {name!r} diverged first at {result.first.where}, ")
        assert result.first.term in message
