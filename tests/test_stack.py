"""Smoke tests of the pinned stack: it imports at the pinned versions, mmcv's compiled ops give known values,
an mmengine Runner trains, checkpoints and resumes under torch >= 2.6, open_clip builds offline from a config
the project ships, and cross-package config bases resolve."""

from __future__ import annotations

import importlib
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(m.groups() for d in deps if (m := re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", d)))


def test_stack_imports_at_pinned_versions():
    pins = _pins()
    assert {"torch", "mmcv", "mmengine", "mmsegmentation", "mmdet", "timm", "open_clip_torch"} <= set(pins)
    for dist, pinned in pins.items():
        installed = version(dist).split("+")[0]  # the local torch wheels carry a +cuXXX tag
        assert installed == pinned, f"{dist}: installed {installed}, pyproject pins {pinned}"
    for module in (
        "torch",
        "torchvision",
        "mmengine",
        "mmcv.ops",
        "mmseg.models",
        "mmdet.models",
        "timm",
        "open_clip",
        "pandas",
        "pycocotools.mask",
        "pkg_resources",
    ):
        importlib.import_module(module)


def test_mmcv_nms_keeps_expected_boxes():
    from mmcv.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert dets[:, 4].tolist() == pytest.approx([0.9, 0.7])


def test_mmcv_roi_align_matches_bilinear_sampling():
    from mmcv.ops import RoIAlign

    feat = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    rois = torch.tensor([[0, 0, 0, 3, 3]], dtype=torch.float32)
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=0, aligned=True)(feat, rois)
    # What the compiled CPU op gave when the stack was first pinned, checked by hand: 1.5625 is the mean of
    # the four bilinear samples at (-0.125, -0.125), (-0.125, 0.625), (0.625, -0.125), (0.625, 0.625) of bin
    # (0, 0) (negatives clamp to 0).
    assert out.flatten().tolist() == pytest.approx([1.5625, 3.0, 7.3125, 8.75], abs=1e-6)


def test_runner_trains_saves_and_resumes(tmp_path):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    import methods  # noqa: F401  (installs the checkpoint-loading fix)

    class Regressor(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)

        def forward(self, inputs, targets=None, mode="tensor"):
            out = self.linear(inputs)
            return {"loss_mse": ((out - targets) ** 2).mean()} if mode == "loss" else out

    class Toy(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            x = torch.full((4,), float(i))
            return {"inputs": x, "targets": x.sum(0, keepdim=True)}

    def run(max_iters: int, resume: bool) -> Runner:
        return Runner(
            model=Regressor(),
            work_dir=str(tmp_path),
            train_dataloader=dict(
                dataset=Toy(),
                sampler=dict(type="DefaultSampler", shuffle=False),
                batch_size=4,
                num_workers=0,
                collate_fn=dict(type="default_collate"),
            ),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=1e-3)),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            default_hooks=dict(
                checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False),
                logger=dict(type="LoggerHook", interval=1),
            ),
            resume=resume,
            default_scope="mmengine",
            experiment_name=f"smoke{max_iters}",
        )

    first = run(2, resume=False)
    first.train()
    assert (tmp_path / "iter_2.pth").is_file()
    weights_at_2 = first.model.linear.weight.detach().clone()

    second = run(4, resume=True)
    second.train()
    assert second.iter == 4 and (tmp_path / "iter_4.pth").is_file()
    # Resumed from iteration 2 (not from scratch): loading iter_2 restores the weights the first run had.
    ckpt = torch.load(tmp_path / "iter_2.pth", weights_only=False)
    assert ckpt["meta"]["iter"] == 2
    assert torch.equal(ckpt["state_dict"]["linear.weight"], weights_at_2)


def test_checkpoint_fix_is_registered_once_for_local_paths():
    import methods  # noqa: F401
    from methods import compat

    loader = compat.installed_loader()
    assert loader is compat._load_from_local
    compat.install()  # idempotent
    assert compat.installed_loader() is loader


def test_open_clip_builds_offline_from_shipped_config():
    import open_clip

    from methods import clip_configs

    names = clip_configs.register()
    assert names == ("synthclip-micro", "synthclip-tiny")
    for name, size, grid in (("synthclip-micro", 32, 8), ("synthclip-tiny", 64, 8)):
        model = open_clip.create_model(name, pretrained=None)
        tokenizer = open_clip.get_tokenizer(name)
        image = torch.randn(2, 3, size, size)
        text = tokenizer(["a red star and a blue ring on stripes", "a green hexagon on noise"])
        with torch.no_grad():
            img_emb, txt_emb = model.encode_image(image), model.encode_text(text)
        assert img_emb.shape == txt_emb.shape == (2, model.text_projection.shape[1])
        assert model.visual.grid_size == (grid, grid)


@pytest.mark.parametrize(
    ("base", "key", "expected"),
    [
        ("mmseg::_base_/models/upernet_vit-b16_ln_mln.py", "decode_head", "UPerHead"),
        ("mmdet::_base_/models/mask-rcnn_r50_fpn.py", "roi_head", "StandardRoIHead"),
    ],
)
def test_cross_package_config_bases_resolve(tmp_path, base, key, expected):
    from mmengine.config import Config

    cfg_path = tmp_path / "cfg.py"
    cfg_path.write_text(f"_base_ = ['{base}']\nmodel = dict({key}=dict(num_classes=9))\n")
    cfg = Config.fromfile(str(cfg_path))
    assert cfg.model[key].type == expected
    assert cfg.model[key].num_classes == 9  # our override merged into the library's base
