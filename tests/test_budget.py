"""The equal-budget guard, the EMA rule, lr scaling and step counts."""

from __future__ import annotations

import pytest

from reproduce import budget as budgets


@pytest.fixture(scope="module")
def micro():
    return budgets.load_budget("micro")


def test_every_budget_loads_with_its_sections():
    names = budgets.available_budgets()
    assert {"micro", "tiny", "small", "base", "base-300e", "base-800e", "base-1600e"} <= set(names)
    for name in names:
        cfg = budgets.load_budget(name)
        assert cfg.budget == name
        assert cfg.pretrain.batch_size > 0 and cfg.pretrain.epochs > 0
    assert budgets.load_budget("base-1600e").pretrain.epochs == 1600
    assert budgets.load_budget("base-1600e").pretrain.batch_size == 4096  # inherited from base.py


def test_unknown_budget_names_the_choices():
    with pytest.raises(budgets.BudgetError, match=r"no budget 'huge'.*available: .*micro"):
        budgets.load_budget("huge")


@pytest.mark.parametrize(
    "method_cfg, key",
    [
        ({"mask_ratio": 0.5}, "mask_ratio"),
        ({"pretrain": {"epochs": 10}}, "pretrain"),
        ({"rc": {"batch_size": 32}}, "rc.batch_size"),
        ({"hpm": {"loss": {"base_lr": 1.0}}}, "hpm.loss.base_lr"),
        ({"embed_dim": 96}, "embed_dim"),
    ],
)
def test_method_config_may_not_override_budget_keys(micro, method_cfg, key):
    with pytest.raises(budgets.BudgetError, match=f"sets '{key}'.*budget 'micro' fixes"):
        budgets.check_method_config("m", method_cfg, micro)


def test_method_keys_of_its_own_pass(micro):
    budgets.check_method_config("rcmae", {"consistency_weight": 1.0, "teacher": {"export": True}}, micro)


def test_lr_scales_with_batch():
    assert budgets.learning_rate({"base_lr": 1.5e-4, "batch_size": 4096}) == pytest.approx(2.4e-3)


def test_ema_rule_half_life_and_paper_cap():
    ema = {"half_life_fraction": 0.1, "paper_momentum": 0.996}
    m = budgets.ema_momentum(ema, total_steps=100)
    assert m**10 == pytest.approx(0.5)  # half-life = 10 % of 100 steps
    assert budgets.ema_momentum(ema, total_steps=10**6) == 0.996  # never slower than the paper's m


def test_steps_equal_epochs_or_flops():
    pre = {"epochs": 3, "batch_size": 64, "equalize": "epochs"}
    assert budgets.steps_for(pre, 2048) == (96, 32)
    assert budgets.steps_for({**pre, "equalize": "flops"}, 2048, cost_ratio=2.0) == (48, 32)
    with pytest.raises(budgets.BudgetError, match="fewer than one batch"):
        budgets.steps_for(pre, 10)
