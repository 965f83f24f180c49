"""The micro regression can tell a pretrained encoder from an untrained one.

The recorded micro numbers (``tables/recorded/micro.csv``, 3 pretraining seeds) must put MAE's linear probe
more than 3σ above the random-init row's, and the regression's own tolerance rule must then fail MAE's cell
when the current run scores what random-init scores, i.e. when MAE's exported encoder has been replaced by an
untrained one. (The golden traces catch that replacement in the code itself; this is the check that the
recorded table can.) The signal target of the default budget (tiny) is shown in the README's Status section.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from tables import regression, signal
from tables.specs import BASELINE

RECORDED = regression.recorded_path("micro")


@pytest.fixture(scope="module")
def cells():
    return {c.key: c for c in regression.read_recorded(RECORDED)}


def test_the_recorded_probe_puts_mae_beyond_3_sigma_above_random_init(cells):
    mae, rand = cells["table1/mae/lin_top1"], cells[f"table1/{BASELINE}/lin_top1"]
    assert mae.n_pretrain_seeds >= 3 and rand.n_pretrain_seeds >= 3
    assert signal.target_failures(signal.table1_spreads(cells.values()), "micro", chance=100 / 8) == []


def _spreads(mae_lin, rand_lin, mae_ft=(45.0, 1.0), rand_ft=(36.0, 1.0)):
    return {
        ("mae", "lin_top1"): signal.Spread(*mae_lin),
        (BASELINE, "lin_top1"): signal.Spread(*rand_lin),
        ("mae", "ft_top1"): signal.Spread(*mae_ft),
        (BASELINE, "ft_top1"): signal.Spread(*rand_ft),
    }


@pytest.mark.parametrize(
    ("spreads", "missed"),
    [
        (_spreads((33.0, 1.5), (23.0, 0.6)), []),  # pilot H: 10 points, 6.7 sigma
        (_spreads((27.0, 1.5), (23.0, 0.6)), ["lin_top1"]),  # 4 points: under 5
        (_spreads((33.0, 3.5), (23.0, 0.6)), ["lin_top1"]),  # 10 points at 2.9 sigma (the larger std counts)
        (_spreads((33.0, math.nan), (23.0, 0.6)), ["lin_top1"]),  # one pretraining seed: not assessed
        (_spreads((33.0, 1.5), (23.0, 0.6), mae_ft=(40.0, 1.0)), ["ft_top1"]),  # FT gap 4
        # random-init's fine-tune under twice chance
        (_spreads((33.0, 1.5), (23.0, 0.6), rand_ft=(20.0, 1.0), mae_ft=(30.0, 1.0)), ["ft_top1"]),
    ],
)
def test_the_tiny_target_misses_exactly_what_it_should(spreads, missed):
    failures = signal.target_failures(spreads, "tiny", chance=100 / 8)
    assert [f.split(":")[0] for f in failures] == missed, failures


def test_micro_asks_sigma_only_and_budgets_without_a_target_miss_nothing():
    three_sigma = _spreads((25.0, 0.6), (23.0, 0.6))  # 2 points at 3.3 sigma
    assert signal.target_failures(three_sigma, "micro", chance=12.5) == []
    assert signal.target_failures(_spreads((24.0, 0.6), (23.0, 0.6)), "micro", chance=12.5)
    assert signal.target_failures({}, "small", chance=1.0) == []


def test_a_gap_reads_against_the_larger_spread_and_borrows_a_missing_one():
    assert signal.gap(signal.Spread(30.0, 1.0), signal.Spread(20.0, 2.0)).text() == "+10.0 (5.0σ)"
    assert signal.gap(signal.Spread(30.0, math.nan), signal.Spread(20.0, 2.0)).sigmas == 5.0
    assert signal.gap(signal.Spread(19.0, math.nan), signal.Spread(20.0, math.nan)).text() == "-1.0 (σ n/a)"


def test_the_regression_fails_mae_replaced_by_an_untrained_encoder(cells):
    """The current run's MAE cell at random-init's recorded value (an untrained encoder exported in MAE's
    place) fails the comparison on MAE's probe cell, under the unchanged tolerance rule."""
    rand = cells[f"table1/{BASELINE}/lin_top1"]
    current = [
        dataclasses.replace(c, mean=rand.mean) if c.key == "table1/mae/lin_top1" else c
        for c in cells.values()
    ]
    failures = regression.compare(cells.values(), current)
    assert len(failures) == 1 and failures[0].startswith("table1/mae/lin_top1: "), failures
    pooled = regression.pooled_spread(cells.values())[("table1", "lin_top1")]
    tol = regression.tolerance(cells["table1/mae/lin_top1"], pooled=pooled)
    assert not math.isnan(tol) and cells["table1/mae/lin_top1"].mean - rand.mean > tol
