"""The ADE20K protocol: the config against mmseg's MAE config, layer decay on the built segmentor, strict
loading, recipe errors, a micro run end to end with its record, and Table 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config

from downstream.ade20k.protocol import build_config
from downstream.recipe import resolve_recipe
from downstream.result import ProtocolInputs
from methods.backbone import build_vit
from methods.encoder_file import EncoderLoadError, export_encoder, read_encoder
from reproduce import budget as budgets
from reproduce import data_root
from reproduce.pipeline import Encoder, protocol_record, random_init_encoder
from tables.records import read_record
from tests.protocol_helpers import assert_recipe_error, bad_root_exit

MMSEG_MAE = "mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py"


@pytest.fixture(scope="module")
def micro():
    return budgets.load_budget("micro")


@pytest.fixture(scope="module")
def micro_data(micro):
    return data_root.prepare(micro)


def short_run(cfg: Config, iters: int = 3) -> Config:
    """The budget with a few iterations (warm-up shortened to fit)."""
    cfg = Config(cfg.to_dict())
    cfg.ade20k.update(iters=iters, warmup_iters=1)
    return cfg


def build_segmentor(cfg: Config):
    from mmengine.registry import DefaultScope
    from mmengine.utils import import_modules_from_strings
    from mmseg.registry import MODELS

    import_modules_from_strings(**cfg.custom_imports)  # the config's own imports register MIMViT & co
    with DefaultScope.overwrite_default_scope("mmseg"):
        return MODELS.build(cfg.model)


def without_scope(x):
    if isinstance(x, dict):
        return {k: without_scope(v) for k, v in x.items() if k != "_scope_"}
    if isinstance(x, (list, tuple)):
        return [without_scope(v) for v in x]
    return x


# ---------------------------------------------------------------------------------------------------------
# The config
# ---------------------------------------------------------------------------------------------------------
def test_every_budget_has_a_valid_ade20k_recipe():
    for name in budgets.available_budgets():
        r = resolve_recipe(budgets.load_budget(name), "ade20k")
        assert r["name"] == "mae"


def test_base_budget_is_mmsegs_mae_protocol(tmp_path):
    """At the base budget the built config equals mmseg's MAE/UperNet config in everything but the backbone,
    the neck, the layer-decay constructor and the dataset class: the budget's values are mmseg's."""
    ours = build_config(
        resolve_recipe(budgets.load_budget("base"), "ade20k"),
        None,
        "data/ade",
        tmp_path,
        arch="vit_base_patch16",
    )
    theirs = get_config(MMSEG_MAE)
    assert without_scope(ours.model.decode_head) == without_scope(theirs.model.decode_head)
    assert without_scope(ours.model.auxiliary_head) == without_scope(theirs.model.auxiliary_head)
    assert (
        ours.model.test_cfg
        == theirs.model.test_cfg
        == dict(mode="slide", crop_size=(512, 512), stride=(341, 341))
    )
    assert without_scope(ours.model.data_preprocessor) == without_scope(theirs.model.data_preprocessor)
    assert without_scope(ours.param_scheduler) == without_scope(theirs.param_scheduler)
    assert ours.train_cfg.max_iters == theirs.train_cfg.max_iters == 160000
    for split in ("train", "test"):
        a, b = ours[f"{split}_dataloader"].dataset, theirs[f"{split}_dataloader"].dataset
        assert without_scope(a.pipeline) == without_scope(b.pipeline)
        assert a.data_prefix == b.data_prefix and a.type == "CheckedADE20KDataset"
    assert ours.train_dataloader.batch_size == theirs.train_dataloader.batch_size * 8  # one process, batch 16
    assert ours.optim_wrapper.optimizer == theirs.optim_wrapper.optimizer
    assert ours.optim_wrapper.paramwise_cfg.layer_decay == theirs.optim_wrapper.paramwise_cfg.layer_decay_rate
    assert ours.optim_wrapper.constructor == "LayerDecayOptimWrapperConstructor"
    assert ours.model.backbone.drop_path_rate == theirs.model.backbone.drop_path_rate
    assert ours.model.backbone.type == "MIMViT" and ours.model.neck is None
    assert ours.val_dataloader is None and ours.test_evaluator.iou_metrics == ["mIoU"]


def test_micro_config_is_the_budget_section(micro, tmp_path):
    r = resolve_recipe(micro, "ade20k")
    cfg = build_config(r, None, "/data/ade20k", tmp_path, seed=3, arch="micro")
    train = {s["type"]: s for s in cfg.train_dataloader.dataset.pipeline}
    assert train["RandomResize"]["scale"] == (128, 32) and train["RandomCrop"]["crop_size"] == (32, 32)
    assert {s["type"]: s for s in cfg.test_dataloader.dataset.pipeline}["Resize"]["scale"] == (128, 32)
    assert cfg.model.test_cfg == dict(mode="slide", crop_size=(32, 32), stride=(21, 21))
    assert cfg.model.backbone.img_size == (32, 32) and cfg.model.data_preprocessor.size == (32, 32)
    assert cfg.model.decode_head.num_classes == 8 and cfg.model.decode_head.in_channels == [64] * 4
    assert cfg.train_dataloader.dataset.type == cfg.test_dataloader.dataset.type == "SynthScenesSegDataset"
    assert cfg.test_dataloader.dataset.data_prefix.img_path == "images/validation"
    assert cfg.train_dataloader.batch_size == r["batch_size"] and cfg.train_cfg.max_iters == r["iters"]
    assert cfg.param_scheduler[1]["begin"] == r["warmup_iters"] and cfg.randomness.seed == 3
    no_photo = build_config({**r, "photometric_distortion": False}, None, "/d", tmp_path, arch="micro")
    assert "PhotoMetricDistortion" not in [s["type"] for s in no_photo.train_dataloader.dataset.pipeline]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("crop_size"), r"ade20k section: missing \['crop_size'\]"),
        (lambda d: d.update(crop=3), r"ade20k section: unknown \['crop'\]"),
        (lambda d: d.update(dataset="ADE20KDataset"), r"ade20k\.dataset = 'ADE20KDataset'; implemented"),
        (lambda d: d.update(iters=0), r"ade20k\.iters = 0 must be a positive integer"),
        (lambda d: d.update(warmup_iters=500), r"ade20k\.warmup_iters = 500 must be below iters"),
        (lambda d: d.update(slide_stride=40), r"ade20k\.slide_stride = 40 exceeds crop_size 32"),
    ],
)
def test_recipe_errors_are_one_line_and_name_the_key(micro, change, message):
    assert_recipe_error(micro, "ade20k", change, message)


# ---------------------------------------------------------------------------------------------------------
# The built segmentor
# ---------------------------------------------------------------------------------------------------------
def test_layer_decay_scales_on_the_built_segmentor(micro, tmp_path):
    """Built through mmseg's registry and mmengine's build_optim_wrapper: block N of the ViT gets
    lr * decay**(depth - N), the patch embedding and cls token decay**(depth + 1), everything else 1."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    r = resolve_recipe(micro, "ade20k")
    enc = random_init_encoder(micro, 0, tmp_path)
    cfg = build_config(r, enc.path, "/unused", tmp_path)
    model = build_segmentor(cfg)
    with DefaultScope.overwrite_default_scope("mmseg"):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr_of = {}
    for group in wrapper.optimizer.param_groups:
        for p in group["params"]:
            assert id(p) not in lr_of, "a parameter in two groups"
            lr_of[id(p)] = group["lr"]
    base, decay, depth = r["lr"], r["layer_decay"], 4
    seen_blocks, seen_embed, seen_head = set(), 0, 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert id(p) not in lr_of
            continue
        block = re.search(r"(?:^|\.)blocks\.(\d+)\.", name)
        if name.startswith("backbone.") and block:
            expected = base * decay ** (depth - int(block.group(1)))
            seen_blocks.add(int(block.group(1)))
        elif name.startswith("backbone.") and re.search(r"(?:^|\.)(patch_embed\.|cls_token$)", name):
            expected, seen_embed = base * decay ** (depth + 1), seen_embed + 1
        else:
            expected = base
            seen_head += name.startswith(("decode_head.", "auxiliary_head."))
        assert lr_of[id(p)] == pytest.approx(expected, rel=1e-12), name
    assert seen_blocks == set(range(depth)) and seen_embed == 3 and seen_head > 10


def test_segmentor_gives_unet_strides_and_loads_strictly(micro, tmp_path):
    """The four maps UperNet reads are at strides 4/8/16/32 for the patch-4 ViT, and a wrong encoder file
    stops the build with the key named (never a silent partial load)."""
    enc = random_init_encoder(micro, 0, tmp_path)
    model = build_segmentor(build_config(resolve_recipe(micro, "ade20k"), enc.path, "/unused", tmp_path))
    model.init_weights()
    assert model.backbone.load_report["fraction_loaded"] == 1.0
    maps = model.backbone(torch.zeros(2, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(2, 64, 8, 8), (2, 64, 4, 4), (2, 64, 2, 2), (2, 64, 1, 1)]

    payload = read_encoder(enc.path)
    del payload["state_dict"]["blocks.2.mlp.fc1.weight"]
    torch.save(payload, tmp_path / "broken.pth")
    broken = build_segmentor(
        build_config(resolve_recipe(micro, "ade20k"), tmp_path / "broken.pth", "/unused", tmp_path)
    )
    with pytest.raises(EncoderLoadError, match=r"blocks\.2\.mlp\.fc1\.weight"):
        broken.init_weights()


# ---------------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------------
def test_run_ade20k_on_micro_gives_a_record(micro, micro_data, tmp_path):
    from downstream.ade20k import run_ade20k

    cfg = short_run(micro)
    enc = random_init_encoder(cfg, 0, tmp_path)
    result = run_ade20k(
        ProtocolInputs(enc.path, cfg, micro_data.root / "ade20k", tmp_path / "run", progress=False)
    )
    assert result["protocol"] == "ade20k" and set(result["metrics"]) == {"mIoU", "aAcc"}
    assert all(0.0 <= v <= 100.0 for v in result["metrics"].values())
    assert result["metrics"]["aAcc"] > 0  # some pixel right after 3 steps: the test ran on real labels
    report = result["load_report"]
    assert report["fraction_loaded"] == 1.0 and report["num_loaded"] == report["num_expected"]
    assert report["sha256"] and report["meta"]["method"] == "random-init"
    assert result["final_epoch"]["iteration"] == 3 and result["recipe"]["out_indices"] == [0, 1, 2, 3]
    assert result["data"]["num_train"] == 512 and result["data"]["num_val"] == 128
    assert result["data"]["num_classes"] == 8
    record = read_record(
        protocol_record(
            result, cfg=cfg, encoder=enc, manifest_hash=micro_data.manifest_hash, work_dir=tmp_path
        )
    )
    assert record.protocol == "ade20k" and record.metrics == result["metrics"]
    assert "UperNet on blocks [0, 1, 2, 3], crop 32" in record.extra["protocol_detail"]
    assert "stride 21" in record.extra["protocol_detail"]


@pytest.mark.e2e
def test_table2_renders(micro, tmp_path, monkeypatch):
    """Table 2 end to end on a 3-iteration micro budget; pretraining is replaced by a random-init encoder
    labelled 'mae' (what is under test is the table script, not MAE)."""
    from reproduce import pipeline, table2

    def fake_pretrain(method, seed, *, cfg, data, work_dir):
        vit = build_vit(micro.model.arch)
        path = Path(work_dir) / "fake" / f"{method}{seed}.pth"
        export_encoder(vit, path, {"method": method, "budget": cfg.budget})
        return Encoder(method, seed, path)

    monkeypatch.setattr(pipeline, "pretrain_encoder", fake_pretrain)
    budget = tmp_path / "micro_short.py"
    micro_file = Path(budgets.BUDGET_DIR / "micro.py")
    budget.write_text(f"_base_ = [{str(micro_file)!r}]\nade20k = dict(iters=3, warmup_iters=1)\n")
    out = tmp_path / "out"
    args = ["--budget", str(budget), "--methods", "mae", "--seeds", "1", "--work-dir", str(tmp_path)]
    table2.main([*args, "--out-dir", str(out), "--no-results-md"])
    markdown = (out / "micro" / "table2.md").read_text()
    for row in ("mae", "random-init"):
        line = next(x for x in markdown.splitlines() if x.startswith(f"| {row} |"))
        assert float(line.strip("|").split("|")[1].strip(" *≈").split()[0]) >= 0  # a measured mIoU
    assert "ADE20K: UperNet on blocks [0, 1, 2, 3]" in markdown  # the protocol detail in the notes
    assert "48.1" in markdown  # MAE's paper number beside it
    assert (tmp_path / "records" / "micro" / "mae" / "ade20k" / "pretrain0-seed0.json").is_file()


def test_table2_stops_early_on_a_bad_ade20k_root(tmp_path, monkeypatch, capsys):
    """A missing ADE20K split is one line naming the path before any pretraining starts."""
    from reproduce import table2

    message = bad_root_exit(table2, "ade20k/images/training", tmp_path, monkeypatch, capsys)
    assert "ade20k/annotations/training" in message
