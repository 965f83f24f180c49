"""ColorMAE's own keys: the noise colour and how the patterns are made. The architecture, ``mask_ratio`` and
``norm_pix_loss`` belong to the budget."""

#: the MIMModel subclass in model.py
model = "ColorMAE"
#: method-specific keys passed to the model's constructor (a budget key here is refused by the harness)
config: dict = dict(
    color="green",  # green = band-pass (the paper's best and the released default); see variants
    sigma_fine=1.0,  # Gaussian filter widths in patches (noise.py); the official values were not published
    sigma_coarse=2.0,
    num_patterns=256,  # patterns in the cache, each pattern_size x pattern_size patches
    pattern_size=64,
    pattern_seed=0,  # the patterns are fixed files in the official code: independent of the run's seed
    crop="sample",  # 'sample': crop/flips/pattern keyed per sample; 'batch': one crop per batch (official)
    cache_dir=None,  # None: $MIM_CACHE_DIR/colormae or ~/.cache/mim-suite/colormae
)
#: named variants: name -> overrides of the keys above; each becomes its own row in every table
variants: dict[str, dict] = {
    "colormae-red": dict(color="red"),  # low-pass: large blobs
    "colormae-blue": dict(color="blue"),  # high-pass: fine, evenly spread
    "colormae-purple": dict(color="purple"),  # band-stop: low + high frequencies
}
