"""The COCO protocol (Mask R-CNN through mmdet): layer decay on the built detector, the paper-scale budget
equal to the config files, both protocols' forward and loss, recipe errors, a micro run end to end, and
Table 3's early stop on a bad root."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from downstream.coco.protocol import CONFIG_DIR, PROTOCOLS, detector_config
from downstream.mm_run import quiet_mmengine
from downstream.recipe import RecipeError, resolve_recipe
from downstream.result import ProtocolInputs
from methods.backbone import ARCHS, ENCODER_ARCH_KEYS
from reproduce import data_root
from reproduce.budget import load_budget
from reproduce.pipeline import protocol_record, random_init_encoder
from tables.records import read_record
from tests.protocol_helpers import bad_root_exit


@pytest.fixture(scope="module")
def micro():
    quiet_mmengine()
    return load_budget("micro")


@pytest.fixture(scope="module")
def micro_data(micro):
    return data_root.prepare(micro)


@pytest.fixture(scope="module")
def encoder(micro, tmp_path_factory):
    return random_init_encoder(micro, 0, tmp_path_factory.mktemp("enc"))


def micro_config(micro, micro_data, encoder, tmp_path, protocol="vitdet") -> Config:
    arch = {k: ARCHS[micro.model.arch][k] for k in ENCODER_ARCH_KEYS}
    return detector_config(
        resolve_recipe(micro, "coco", protocol),
        encoder_path=encoder.path,
        arch=arch,
        coco_root=micro_data.root / "coco",
        work_dir=tmp_path,
    )


def build_detector(cfg: Config):
    from mmdet.registry import MODELS

    with DefaultScope.overwrite_default_scope("mmdet"):
        model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_layer_decay_scales_on_the_built_detector(micro, micro_data, encoder, tmp_path):
    """Built through mmdet's registry and mmengine's build_optim_wrapper, as the Runner does: block N of the
    ViT at base_lr * decay**(depth - N), the embeddings at decay**(depth + 1), neck and heads at base_lr."""
    from mmengine.optim import build_optim_wrapper

    cfg = micro_config(micro, micro_data, encoder, tmp_path)
    model = build_detector(cfg)
    with DefaultScope.overwrite_default_scope("mmdet"):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr, decay = micro.coco.lr, micro.coco.layer_decay
    depth = ARCHS[micro.model.arch]["depth"]
    lr_of = {id(p): g["lr"] for g in wrapper.optimizer.param_groups for p in g["params"]}
    checked = {"block": 0, "embedding": 0, "outside": 0}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            # MAE's fixed sin-cos position embedding; the CLS token, unused with window attention
            assert id(param) not in lr_of, name
            continue
        if name.startswith("backbone.vit.blocks."):
            block = int(name.split(".")[3])
            expected, kind = base_lr * decay ** (depth - block), "block"
        elif name.startswith("backbone.vit.patch_embed."):
            expected, kind = base_lr * decay ** (depth + 1), "embedding"
        else:
            assert not name.startswith("backbone.vit."), name
            expected, kind = base_lr, "outside"
        assert lr_of[id(param)] == pytest.approx(expected, rel=1e-9), name
        checked[kind] += 1
    assert checked["block"] == 12 * depth and checked["embedding"] == 2 and checked["outside"] > 20
    assert sum(len(g["params"]) for g in wrapper.optimizer.param_groups) == len(lr_of)


def test_base_budget_is_the_config_file():
    """The paper-scale recipe (budgets/base.py) written into the config changes nothing in it: the budget and
    the mmdet config files cannot drift apart."""
    base = load_budget("base")
    arch = {k: ARCHS["vit_base_patch16"][k] for k in ENCODER_ARCH_KEYS}
    for protocol, (filename, _) in PROTOCOLS.items():
        plain = Config.fromfile(str(CONFIG_DIR / filename))
        cfg = detector_config(
            resolve_recipe(base, "coco", protocol),
            encoder_path=None,
            arch=arch,
            coco_root="data/coco",
            work_dir="work",
            synthscenes=False,
            world_size=16,  # ViTDet: 4 images per GPU on 16 GPUs
            on_gpu=True,
        )
        cfg.model.backbone.arch = plain.model.backbone.arch  # what the run fills in from the encoder file
        got, paper = cfg.to_dict(), plain.to_dict()
        for key in ("model", "optim_wrapper", "param_scheduler", "train_cfg"):
            assert got[key] == paper[key], (protocol, key)
        for loader in ("train_dataloader", "test_dataloader"):
            assert cfg[loader].batch_size == plain[loader].batch_size
            assert cfg[loader].dataset.pipeline == plain[loader].dataset.pipeline, (protocol, loader)
        assert cfg.default_hooks.checkpoint == plain.default_hooks.checkpoint


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_both_protocols_build_and_train_on_a_batch(micro, micro_data, encoder, tmp_path, protocol):
    """Each config builds from mmdet's registry with the encoder loaded strictly, its pyramid has mmdet's
    strides 4..64 on the 64-px crop (patch 4), and a loss forward on two LSJ training samples is finite and
    reaches the ViT."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    cfg = micro_config(micro, micro_data, encoder, tmp_path, protocol)
    model = build_detector(cfg)
    assert model.backbone.load_report["fraction_loaded"] == 1.0
    with DefaultScope.overwrite_default_scope("mmdet"):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        batch = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    size = micro.coco.image_size
    assert tuple(batch["inputs"].shape) == (2, 3, size, size)
    feats = model.extract_feat(batch["inputs"])
    assert [f.shape[-1] for f in feats] == [size // s for s in (4, 8, 16, 32, 64)]
    losses = model.loss(batch["inputs"], batch["data_samples"])
    total = sum(v for k, v in losses.items() if "loss" in k and isinstance(v, torch.Tensor))
    assert math.isfinite(float(total.detach()))
    total.backward()
    assert model.backbone.vit.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_recipe_errors_name_the_key(micro):
    cfg = copy.deepcopy(micro)
    del cfg.coco["anchor_scale"]
    with pytest.raises(RecipeError, match=r"micro.py: coco section: missing \['anchor_scale'\]"):
        resolve_recipe(cfg, "coco")
    cfg = copy.deepcopy(micro)
    cfg.coco["anchors"] = 4
    with pytest.raises(RecipeError, match=r"unknown \['anchors'\]"):
        resolve_recipe(cfg, "coco")
    with pytest.raises(
        RecipeError, match=r"unknown recipe 'detr' for coco; known: mae, vitdet, fpn_li2021, hpm"
    ):
        resolve_recipe(micro, "coco", "detr")
    with pytest.raises(
        RecipeError, match=r"micro.py: coco protocol 'detr'; implemented: \['vitdet', 'fpn_li2021'\]"
    ):
        resolve_recipe({**micro, "coco": {**micro.coco, "protocol": "detr"}}, "coco")
    cfg = copy.deepcopy(micro)
    cfg.coco["lr_steps"] = [10**6]
    with pytest.raises(RecipeError, match=r"coco.lr_steps .* within max_iters"):
        resolve_recipe(cfg, "coco")
    # the budget's protocol is the shared default recipe; another protocol is its own (its own rows)
    assert resolve_recipe(micro, "coco")["name"] == resolve_recipe(micro, "coco", "vitdet")["name"] == "mae"
    fpn = resolve_recipe(micro, "coco", "fpn_li2021")
    assert fpn["name"] == fpn["protocol"] == "fpn_li2021"
    assert resolve_recipe(micro, "coco", "hpm")["name"] == "hpm"  # a method's recipe, the budget's protocol


def test_run_coco_micro_writes_a_record(micro, micro_data, encoder, tmp_path):
    """A few iterations end to end through mmengine's Runner and mmdet's COCO metric."""
    from downstream.coco import run_coco

    cfg = copy.deepcopy(micro)
    cfg.coco.update(max_iters=3, warmup_iters=1, lr_steps=[2, 3], batch_size=4, test_max_per_img=10)
    result = run_coco(
        ProtocolInputs(encoder.path, cfg, micro_data.root / "coco", tmp_path / "run", progress=False)
    )
    assert result["protocol"] == "coco" and result["recipe"]["protocol"] == "vitdet"
    for key in ("AP_box", "AP_mask", "AP50_box", "AP75_box", "AP50_mask", "AP75_mask"):
        assert 0.0 <= result["metrics"][key] <= 100.0, key
    assert result["load_report"]["fraction_loaded"] == 1.0 and len(result["history"]) == 3
    assert result["data"]["num_val"] == micro.data.coco.val
    assert result["data"]["dataset"] == "SynthScenesCocoDataset"
    if not result["data"]["no_detections"]:  # else CocoMetric had nothing to score: AP 0 by definition
        assert "Average Precision" in (tmp_path / "run" / "coco_eval.txt").read_text()
    path = protocol_record(
        result, cfg=micro, encoder=encoder, manifest_hash=micro_data.manifest_hash, work_dir=tmp_path
    )
    record = read_record(path)
    assert record.protocol == "coco" and record.extra["recipe"] == "mae"
    assert record.metrics["AP_box"] == result["metrics"]["AP_box"]


def test_table3_stops_early_on_a_bad_coco_root(tmp_path, monkeypatch, capsys):
    """A missing COCO annotation file is one line naming the path before any pretraining starts."""
    from reproduce import table3

    message = bad_root_exit(table3, "coco", tmp_path, monkeypatch, capsys)
    assert "coco/annotations/instances_train2017.json: missing annotation file" in message
    assert not Path(tmp_path / "records").exists()
