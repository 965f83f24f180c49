"""CMT-MAE (Mo, AAAI 2025): a frozen CLIP teacher and a momentum student each give a CLS->patch attention map
and patch features; their weighted sum guides the mask, and two heads regress both features, weighted by alpha
(stage 1 teacher-only, stage 2 collaborative)."""
