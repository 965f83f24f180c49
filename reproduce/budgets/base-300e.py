# The paper setting with 300 pretraining epochs (see base.py).
_base_ = ["./base.py"]

budget = "base-300e"

pretrain = dict(epochs=300)
