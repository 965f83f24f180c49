"""IN-1K protocols: layer-decay groups, LARS, the schedule, k-NN voting, the frozen encoder in the probe, the
fine-tune run, the budget sections, and probe(pretrained) > probe(random init).

Data: a class-folder tree written in ``tmp_path`` (4 classes told apart by colour and stripe direction), so
the tests do not depend on SynthScenes. The pretrained-vs-random test uses the session fixture
``in1k_pretrained_encoder``: ``MIM_IN1K_ENCODER=/path/encoder.pth`` (``MIM_IN1K_DATA=<class-folder root>``,
default the micro SynthScenes tree, and ``MIM_IN1K_BUDGET``, default micro) points it at a real pretraining
run; a conftest fixture of the same name can replace it; without either the test skips.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from downstream.in1k import run_finetune, run_knn, run_linear_probe
from downstream.in1k.knn import knn_classify
from downstream.in1k.models import finetune_vit
from downstream.optim import (
    LARS,
    LayerDecayOptimWrapperConstructor,
    layer_decay_param_groups,
    warmup_cosine_lr,
)
from downstream.recipe import RecipeError, resolve_recipe
from downstream.result import ProtocolInputs
from methods.backbone import build_vit
from methods.encoder_file import export_encoder
from reproduce.budget import load_budget

REPO = Path(__file__).resolve().parents[1]

# The micro budget's recipes, shrunk for the tmp tree (test_budget_sections checks the budget files).
_MICRO = load_budget("micro")
LP = {
    **_MICRO.linear_probe.to_dict(),
    "epochs": 30,
    "warmup_epochs": 3,
    "batch_size": 16,
    "crop_scale": (0.2, 1.0),
    "feature_batch_size": 64,
}
FT = {
    **_MICRO.finetune.to_dict(),
    "warmup_epochs": 0.5,
    "batch_size": 8,
    "base_lr": 1e-3,
    "crop_scale": (0.2, 1.0),
    "log_interval": 50,
}
KNN = {**_MICRO.knn.to_dict(), "feature_batch_size": 64}
BUDGET = dict(budget="test", linear_probe=LP, finetune=FT, knn=KNN)


# ----------------------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def class_tree(tmp_path_factory) -> Path:
    """root/{train,val}/<class>/*.png, 32 px: 4 classes (2 colours x 2 stripe directions), noisy."""
    root = tmp_path_factory.mktemp("in1k_tree")
    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 40, 220)]
    for split, per_class in (("train", 16), ("val", 8)):
        for c in range(4):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 60, (32, 32, 3)).astype(np.float32)
                stripes = (np.arange(32) // 4) % 2 == 0
                mask = stripes[None, :] if c % 2 == 0 else stripes[:, None]
                img[np.broadcast_to(mask, (32, 32))] += colours[c // 2]
                Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def random_encoder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("enc") / "random_micro.pth"
    torch.manual_seed(0)
    export_encoder(build_vit("micro"), path, {"method": "random-init"})
    return path


@pytest.fixture(scope="session")
def in1k_pretrained_encoder() -> tuple[Path, Path]:
    """(pretrained encoder file, class-folder root) from the environment (a conftest fixture may override)."""
    path = os.environ.get("MIM_IN1K_ENCODER")
    if not path:
        # deliberate opt-in (any encoder, any budget); CI checks the same floor on the micro run in
        # test_regression.py (test_pretrained_mae_beats_the_random_init_baseline) and test_signal.py
        pytest.skip(
            "opt-in: set MIM_IN1K_ENCODER to a pretrained encoder.pth (reproduce/pretrain.py --budget "
            "micro); CI covers this in tests/test_regression.py"
        )
    root = Path(os.environ.get("MIM_IN1K_DATA", REPO / "data" / "synthscenes-micro" / "imagenet"))
    if not (root / "train").is_dir():
        # the check was asked for (MIM_IN1K_ENCODER is set): a missing dataset is an error, not a skip
        pytest.fail(f"{root}: no class-folder tree (python reproduce/data.py --budget micro)")
    return Path(path), root


# ----------------------------------------------------------------------------------------------------------
# layer-wise lr decay
# ----------------------------------------------------------------------------------------------------------
def expected_layer(name: str, depth: int) -> int:
    """MAE's get_layer_id_for_vit, written out independently for the test."""
    if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1


class Wrapped(nn.Module):
    """A ViT under a prefix, plus a module outside it (as in a segmentation model)."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.backbone = vit
        self.decode = nn.Linear(4, 2)


@pytest.mark.parametrize("wrapped", [False, True])
def test_layer_decay_groups_scales_and_decay(random_encoder: Path, wrapped: bool) -> None:
    vit, _ = finetune_vit(random_encoder, num_classes=5, drop_path=0.1)  # fc_norm + head, pos_embed trained
    model = Wrapped(vit) if wrapped else vit
    prefix = "backbone." if wrapped else ""
    depth, decay, base_lr, wd = 4, 0.65, 1e-3, 0.05
    constructor = LayerDecayOptimWrapperConstructor(
        dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=base_lr, weight_decay=wd)),
        paramwise_cfg=dict(layer_decay=decay),
    )
    optimizer = constructor(model).optimizer
    by_name = {n: g for g in optimizer.param_groups for n in g["param_names"]}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(by_name) == trainable and f"{prefix}pos_embed" in trainable

    for name, param in model.named_parameters():
        group = by_name[name]
        local = name[len(prefix) :] if name.startswith(prefix) else None
        layer = expected_layer(local, depth) if local is not None else depth + 1
        scale = decay ** (depth + 1 - layer)
        assert group["lr_scale"] == pytest.approx(scale), name
        assert group["lr"] == pytest.approx(base_lr * scale), name
        no_decay = param.ndim == 1 or local in ("cls_token", "pos_embed")
        assert group["weight_decay"] == (0.0 if no_decay else wd), name

    # spot checks against hand-computed values
    g = lambda n: by_name[prefix + n]
    assert g("cls_token")["lr_scale"] == pytest.approx(0.65**5) and g("cls_token")["weight_decay"] == 0.0
    assert g("patch_embed.proj.weight")["lr_scale"] == pytest.approx(0.65**5)
    assert g("patch_embed.proj.weight")["weight_decay"] == wd
    assert g("blocks.0.attn.qkv.weight")["lr_scale"] == pytest.approx(0.65**4)
    assert g("blocks.3.mlp.fc2.weight")["lr_scale"] == pytest.approx(0.65)
    assert g("blocks.3.norm1.weight")["weight_decay"] == 0.0
    assert g("fc_norm.weight")["lr_scale"] == 1.0 and g("head.weight")["weight_decay"] == wd
    assert len({(grp["layer_id"], grp["weight_decay"]) for grp in optimizer.param_groups}) == len(
        optimizer.param_groups
    )


def test_layer_decay_skips_frozen_and_requires_a_vit() -> None:
    vit = build_vit("micro")  # pos_embed is frozen in the pretraining ViT
    names = {n for g in layer_decay_param_groups(vit, 1.0, 0.05, 0.75) for n in g["param_names"]}
    assert "pos_embed" not in names and "cls_token" in names
    with pytest.raises(TypeError, match="VisionTransformer"):
        layer_decay_param_groups(nn.Linear(2, 2), 1.0, 0.05, 0.75)


# ----------------------------------------------------------------------------------------------------------
# LARS and the schedule
# ----------------------------------------------------------------------------------------------------------
def test_lars_matches_hand_computed_steps() -> None:
    w = nn.Parameter(torch.tensor([[3.0, 4.0]]))  # |w| = 5
    b = nn.Parameter(torch.tensor([1.0]))
    opt = LARS([w, b], lr=2.0, weight_decay=0.1, momentum=0.9, trust_coefficient=0.001)
    # step 1: d = g + 0.1 w = [0.9, 1.2], |d| = 1.5, ratio = 0.001 * 5 / 1.5 -> d = [0.003, 0.004]
    #         bias: no decay, no ratio -> d = 0.5; w -= 2 * d, b -= 2 * 0.5
    w.grad, b.grad = torch.tensor([[0.6, 0.8]]), torch.tensor([0.5])
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([[2.994, 3.992]]))
    torch.testing.assert_close(b.detach(), torch.tensor([0.0]))
    # step 2: zero grad -> d = 0.1 w = [0.2994, 0.3992], ratio = 0.001 |w| / (0.1 |w|) = 0.01 -> d = 1e-3 w
    #         mu = 0.9 * [0.003, 0.004] + 1e-3 * w; bias mu = 0.9 * 0.5 + 0
    w_prev = w.detach().clone()
    w.grad, b.grad = torch.zeros(1, 2), torch.zeros(1)
    opt.step()
    mu = 0.9 * torch.tensor([[0.003, 0.004]]) + 1e-3 * w_prev
    torch.testing.assert_close(w.detach(), w_prev - 2.0 * mu)
    torch.testing.assert_close(b.detach(), torch.tensor([-0.9]))


def test_lars_zero_weight_keeps_the_raw_gradient() -> None:
    w = nn.Parameter(torch.zeros(2, 2))
    opt = LARS([w], lr=1.0, momentum=0.0)
    w.grad = torch.ones(2, 2)
    opt.step()
    torch.testing.assert_close(w.detach(), -torch.ones(2, 2))


def test_warmup_cosine_lr() -> None:
    f = lambda e: warmup_cosine_lr(e, lr=1.0, min_lr=0.1, warmup_epochs=2, epochs=10)
    assert f(0) == 0.0 and f(1) == pytest.approx(0.5) and f(2) == pytest.approx(1.0)
    assert f(6) == pytest.approx(0.55) and f(10) == pytest.approx(0.1)


# ----------------------------------------------------------------------------------------------------------
# k-NN
# ----------------------------------------------------------------------------------------------------------
def test_knn_weighted_vote_by_hand() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # normalised: e0, e1, (e0 + e1) / sqrt 2
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[2.0, 0.0]])
    scores = knn_classify(bank, labels, query, num_classes=2, k=2, temperature=0.5)
    # neighbours: bank 0 (cos 1) and bank 2 (cos 1/sqrt 2); bank 1 (cos 0) is not among the top 2
    expected = torch.tensor([[math.exp(1 / 0.5), math.exp((1 / math.sqrt(2)) / 0.5)]])
    torch.testing.assert_close(scores, expected)
    assert knn_classify(bank, labels, query, 2, k=50).shape == (1, 2)  # k larger than the bank


# ----------------------------------------------------------------------------------------------------------
# the protocol runs on the tmp tree
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("augment", [False, True])
def test_probe_keeps_encoder_frozen_and_learns(class_tree, random_encoder, tmp_path, augment) -> None:
    epochs = 2 if augment else 30  # augmented views run the encoder every step
    budget = {**BUDGET, "linear_probe": {**LP, "augment": augment, "epochs": epochs, "warmup_epochs": 1}}
    out = run_linear_probe(
        ProtocolInputs(random_encoder, budget, class_tree, tmp_path, seed=1, progress=False)
    )
    assert out["encoder_sha256_after"] == out["load_report"]["sha256"]  # weights unchanged after training
    assert out["load_report"]["fraction_loaded"] == 1.0
    assert out["recipe"]["name"] == "mae" and out["recipe"]["lr"] == pytest.approx(40.0 * 16 / 256)
    assert out["recipe"]["total_steps"] == epochs * (64 // 16) and len(out["history"]) == epochs
    assert set(out["metrics"]) == {"top1", "top5"} and out["metrics"]["top5"] == 100.0  # 4 classes
    if not augment:
        # the colour half of the label is linearly readable from random features (chance: 25 %); a probe
        # that does not train (blr 0.1 here) stays near chance
        assert out["metrics"]["top1"] > 37.5
        again = run_linear_probe(
            ProtocolInputs(random_encoder, budget, class_tree, tmp_path, seed=1, progress=False)
        )
        assert again["timings"]["feature_cache_hit"] and again["metrics"] == out["metrics"]  # seeded


def test_knn_run(class_tree, random_encoder) -> None:
    out = run_knn(ProtocolInputs(random_encoder, BUDGET, class_tree, progress=False))
    assert out["recipe"]["k_used"] == 20 and 25.0 < out["metrics"]["top1"] <= 100.0


def test_finetune_run(class_tree, random_encoder, tmp_path) -> None:
    out = run_finetune(
        ProtocolInputs(random_encoder, BUDGET, class_tree, tmp_path, recipe="hpm", progress=False)
    )
    assert out["recipe"]["name"] == "hpm" and out["recipe"]["layer_decay"] == 0.8
    assert out["recipe"]["total_steps"] == 64 // 8 and out["recipe"]["lr"] == pytest.approx(1e-3 * 8 / 256)
    assert set(out["metrics"]) == {"top1", "top5"} and math.isfinite(out["history"][-1])
    assert len(out["initial_weights_sha256"]) == 64  # checked unchanged when training starts
    report = out["load_report"]
    assert report["fraction_loaded"] == 1.0 and report["dropped"] == ["norm.weight", "norm.bias"]
    assert {"fc_norm.weight", "head.weight"} <= set(report["left_to_protocol"])


# ----------------------------------------------------------------------------------------------------------
# recipes and budgets
# ----------------------------------------------------------------------------------------------------------
def test_recipes() -> None:
    assert resolve_recipe(BUDGET, "linear_probe")["optimizer"] == "lars"
    hpm = resolve_recipe(BUDGET, "linear_probe", "hpm")
    assert (
        hpm["optimizer"] == "sgd"
        and hpm["base_lr"] == pytest.approx(LP["base_lr"] / 100)
        and hpm["name"] == "hpm"
    )
    with pytest.raises(RecipeError, match="unknown recipe"):
        resolve_recipe(BUDGET, "finetune", "nope")
    with pytest.raises(RecipeError, match="no 'knn' section"):
        resolve_recipe({"budget": "x"}, "knn")


def test_a_method_folder_brings_its_own_recipe(mae_copy) -> None:
    """A method's official recipe is its folder's ``recipes.py``, found as the method itself is; a protocol
    it does not override runs as the budget's section under its name."""
    (mae_copy / "recipes.py").write_text('RECIPES = {"maecopy": {"knn": lambda s: dict(k=s["k"] + 1)}}\n')
    r = resolve_recipe(BUDGET, "knn", "maecopy")
    assert r == {**KNN, "k": KNN["k"] + 1, "name": "maecopy"}
    assert resolve_recipe(BUDGET, "linear_probe", "maecopy") == {**LP, "name": "maecopy"}
    with pytest.raises(RecipeError) as e:
        resolve_recipe(BUDGET, "knn", "nope")
    assert str(e.value) == "unknown recipe 'nope' for knn; known: mae, hpm, maecopy"
    with pytest.raises(
        RecipeError, match="unknown protocol 'segm'; known: linear_probe, finetune, knn, ade20k"
    ):
        resolve_recipe(BUDGET, "segm")


@pytest.mark.parametrize("budget", ["micro", "tiny", "small", "base", "base-800e"])
def test_budget_sections(budget: str) -> None:
    from reproduce.budget import load_budget

    cfg = load_budget(budget)
    for protocol, template in (("linear_probe", LP), ("finetune", FT), ("knn", KNN)):
        missing = set(template) - set(resolve_recipe(cfg, protocol))
        assert not missing, f"{budget}.{protocol} lacks {sorted(missing)}"
    if budget.startswith("base"):  # MAE's official values
        lp, ft = cfg.linear_probe, cfg.finetune
        assert (lp.batch_size, lp.base_lr, lp.epochs, lp.warmup_epochs, lp.augment) == (
            16384,
            0.1,
            90,
            10,
            True,
        )
        assert (ft.batch_size, ft.base_lr, ft.layer_decay, ft.epochs, ft.drop_path) == (
            1024,
            5e-4,
            0.65,
            100,
            0.1,
        )
        assert (ft.mixup, ft.cutmix, ft.reprob, ft.auto_augment) == (0.8, 1.0, 0.25, "rand-m9-mstd0.5-inc1")


# ----------------------------------------------------------------------------------------------------------
# pretrained beats random init
# ----------------------------------------------------------------------------------------------------------
def test_probe_pretrained_beats_random_init(in1k_pretrained_encoder, tmp_path) -> None:
    from reproduce.budget import load_budget

    encoder, root = in1k_pretrained_encoder
    budget = load_budget(os.environ.get("MIM_IN1K_BUDGET", "micro"))
    arch = torch.load(encoder, weights_only=True)["meta"]["arch"]
    random_path = tmp_path / "random.pth"
    torch.manual_seed(0)
    from downstream.in1k.models import encoder_arch

    export_encoder(build_vit(encoder_arch({"meta": {"arch": arch}})), random_path, {"method": "random-init"})
    pretrained = run_linear_probe(ProtocolInputs(encoder, budget, root, tmp_path / "p", progress=False))
    random_init = run_linear_probe(ProtocolInputs(random_path, budget, root, tmp_path / "r", progress=False))
    assert random_init["metrics"]["top1"] < pretrained["metrics"]["top1"]


def test_randaugment_posterize_zero_bits_under_pillow() -> None:
    """rand-m9-mstd0.5-inc1 can ask PosterizeIncreasing for 0 bits; Pillow 13 raises on it, so the fine-tune
    transform swaps in a posterize that returns a black image, as Pillow < 11 did."""
    from timm.data import auto_augment

    from downstream.in1k.data import _posterize, finetune_train_transform

    img = Image.fromarray(np.full((8, 8, 3), 200, np.uint8))
    assert np.asarray(_posterize(img, 0)).max() == 0 and _posterize(img, 8) is img
    transform = finetune_train_transform(32, dict(auto_augment="rand-m9-mstd0.5-inc1"))
    ops = [op for t in transform.transforms for op in getattr(t, "ops", [])]
    assert ops and not any(op.aug_fn is auto_augment.posterize for op in ops)
