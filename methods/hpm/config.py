"""HPM's own keys. The architecture, ``mask_ratio`` and ``norm_pix_loss`` belong to the budget."""

#: the MIMModel subclass in model.py
model = "HPM"
#: method-specific keys passed to the model's constructor (a budget key here is refused by the harness)
config: dict = dict(
    # loss-prediction objective: 'relative' (pairwise ranking, ``--relative``, the released scripts) or
    # 'absolute' (MSE to the per-image standardised losses)
    objective="relative",
    # reconstruction target: 'pixels' (ImageNet-normalised pixels: the released scripts do not pass
    # --norm_pix_loss), 'norm_pixels' (per-patch normalised, MAE's), or 'budget' (the budget's norm_pix_loss)
    pixel_target="pixels",
    # the share of the masked patches chosen as the hardest: hard_ratio * (epoch + 1) / epochs ('linear',
    # the code's easy-to-hard curriculum) or hard_ratio throughout ('constant', generate_mask's guide=False)
    hard_ratio=0.5,
    curriculum="linear",
    # EMA momentum: 'budget' = the harness's teacher_momentum (the budget's EMA rule) when it sets one, else
    # the code's epoch ramp; 'code' = always the code's ramp (0.999 -> 0.9999 over the first 100 epochs)
    momentum_schedule="budget",
)
#: named variants: name -> overrides of the keys above; each becomes its own row in every table
variants: dict[str, dict] = {}
