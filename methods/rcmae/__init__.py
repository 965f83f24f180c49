"""RC-MAE (Lee et al., ICLR 2023): MAE plus an EMA teacher whose reconstruction is a second target."""
