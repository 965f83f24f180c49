# The paper setting with 800 pretraining epochs (see base.py).
_base_ = ["./base.py"]

budget = "base-800e"

pretrain = dict(epochs=800)
