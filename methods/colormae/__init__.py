"""ColorMAE (Hinojosa et al., ECCV 2024): MAE masked by windows of filtered ("coloured") noise."""
