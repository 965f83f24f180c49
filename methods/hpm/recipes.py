"""HPM's official evaluation recipes, opt-in (``recipe='hpm'``; found by ``downstream.recipe``).

Each override is a function of the budget's protocol section and returns the keys it changes, so it follows
the budget's scaling: a key HPM's paper sets absolutely is set, a learning rate keeps HPM's ratio to MAE's.

HPM (Haochen-Wang409/HPM@c15ae90: ``main_linprob.py``, ``FINETUNE.md``): the linear probe uses SGD
(momentum 0.9, wd 0) with blr 1e-3 where MAE uses LARS with blr 0.1 [CODE]; fine-tuning uses layer decay 0.8
[README].
On scaled budgets the probe's base lr keeps HPM's ratio to MAE's (1e-3 / 0.1) [INF: no source scales it].
"""

RECIPES = {
    "hpm": {
        "linear_probe": lambda s: dict(optimizer="sgd", base_lr=s["base_lr"] * 1e-3 / 0.1),
        "finetune": lambda s: dict(layer_decay=0.8),
    },
}
