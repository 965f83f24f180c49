"""HPM (Wang et al., CVPR 2023): an EMA model predicts per-patch reconstruction losses and the hardest patches
are masked, with an easy-to-hard curriculum; a second decoder learns the relative loss ranking."""
