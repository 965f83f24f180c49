"""MAE's own config keys: none. Everything MAE needs (architecture, ``mask_ratio``, ``norm_pix_loss``)
belongs to the budget, so every method trains under the same values."""

#: the MIMModel subclass in model.py
model = "MAE"
#: method-specific keys passed to the model's constructor (a budget key here is refused by the harness)
config: dict = {}
#: named variants: name -> overrides of the keys above; each becomes its own row in every table
variants: dict[str, dict] = {}
