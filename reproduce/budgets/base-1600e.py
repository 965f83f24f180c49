# The paper setting with 1600 pretraining epochs (see base.py).
_base_ = ["./base.py"]

budget = "base-1600e"

pretrain = dict(epochs=1600)
