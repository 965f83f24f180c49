"""RC-MAE's own keys. The architecture, ``mask_ratio`` and ``norm_pix_loss`` belong to the budget."""

#: the MIMModel subclass in model.py
model = "RCMAE"
#: method-specific keys passed to the model's constructor (a budget key here is refused by the harness)
config: dict = dict(
    # weight of the consistency loss (``--gamma``; 1.0 in every released script and the default)
    gamma=1.0,
    # base EMA momentum m (``--momentum_teacher``), used when the harness sets no ``teacher_momentum``
    momentum_teacher=0.996,
    # 'code': cosine from m to 1 indexed by the step WITHIN the epoch, as engine_pretrain.py does;
    # 'paper': the same cosine indexed by the global step (the schedule the argument's help text describes)
    momentum_schedule="code",
)
#: named variants: name -> overrides of the keys above; each becomes its own row in every table
variants: dict[str, dict] = {}
