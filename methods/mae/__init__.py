"""MAE (He et al., CVPR 2022): the reference method every other folder starts from."""
