"""The shared ViT as mmseg / mmdet backbone (downstream/mm_backbone.py): strides for any patch size, strict
loading through both libraries' registries, window attention, inputs of other sizes."""

from __future__ import annotations

import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as MMSEG_MODELS

from downstream.mm_backbone import (
    MIMViT,
    SimpleFeaturePyramid,
    default_out_indices,
    pyramid_scales,
    windowed_block,
)
from methods.backbone import build_vit
from methods.encoder_file import EncoderLoadError, export_encoder, read_encoder

REGISTRIES = {"mmseg": MMSEG_MODELS, "mmdet": MMDET_MODELS}


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("enc") / "encoder.pth"
    export_encoder(build_vit("micro"), path, {"method": "test"})
    return path


def _build(registry: str, **kwargs) -> MIMViT:
    # in the library's scope: a Runner that ran earlier in this process leaves its own default scope behind
    with DefaultScope.overwrite_default_scope(registry):
        return REGISTRIES[registry].build(dict(type="MIMViT", **kwargs))


def test_pyramid_scales_follow_the_patch_size():
    assert pyramid_scales(16) == [4, 2, 1, 0.5]
    assert pyramid_scales(8) == [2, 1, 0.5, 0.25]
    assert pyramid_scales(4) == [1, 0.5, 0.25, 0.125]
    with pytest.raises(ValueError, match="patch size 12"):
        pyramid_scales(12)


def test_out_indices_are_the_papers_at_depth_12_and_evenly_spaced_otherwise():
    assert default_out_indices(12) == (3, 5, 7, 11)
    assert default_out_indices(24) == (7, 11, 15, 23)
    assert default_out_indices(4) == (0, 1, 2, 3)
    assert default_out_indices(8) == (1, 3, 5, 7)


@pytest.mark.parametrize("registry", ["mmseg", "mmdet"])
@pytest.mark.parametrize("arch,size", [("micro", 32), ("tiny", 64)])
def test_multilevel_maps_have_strides_4_to_32_whatever_the_patch(registry, arch, size):
    model = _build(registry, arch=arch, img_size=size).eval()
    x = torch.randn(2, 3, size, size)
    outs = model(x)
    dim = model.vit.embed_dim
    assert [tuple(o.shape) for o in outs] == [(2, dim, size // s, size // s) for s in (4, 8, 16, 32)]


def test_simple_pyramid_from_the_last_block_has_strides_4_to_64():
    backbone = _build("mmdet", arch="tiny", img_size=64, pyramid="last", window_size=4, global_blocks=(1, 3))
    dim = backbone.vit.embed_dim
    with DefaultScope.overwrite_default_scope("mmdet"):
        neck = MMDET_MODELS.build(
            dict(type="SimpleFeaturePyramid", in_channels=dim, out_channels=32, patch_size=8)
        )
    assert isinstance(neck, SimpleFeaturePyramid)
    feats = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, dim, 8, 8)]
    outs = neck(feats)
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    assert all(o.shape[1] == 32 for o in outs)


@pytest.mark.parametrize("registry", ["mmseg", "mmdet"])
def test_a_correct_file_loads_every_encoder_tensor(registry, encoder_file):
    model = _build(registry, checkpoint=str(encoder_file), img_size=64)  # arch from the file's meta
    model.init_weights()
    report = model.load_report
    state = read_encoder(encoder_file)["state_dict"]
    assert report["fraction_loaded"] == 1.0
    assert report["num_loaded"] == len(state) - 2  # the final norm is dropped, as a declared transform
    assert report["source"] == str(encoder_file)
    assert any(t.startswith("interpolate_pos_embed: 8x8 -> 16x16") for t in report["transforms"])
    assert report["dropped"] == ["norm.weight", "norm.bias"]
    loaded = model.vit.state_dict()
    for key in ("blocks.3.mlp.fc2.weight", "patch_embed.proj.weight", "cls_token"):
        assert torch.equal(loaded[key], state[key])
    assert loaded["pos_embed"].shape[1] == 1 + 16 * 16


def _corrupt(encoder_file, tmp_path, change) -> str:
    payload = read_encoder(encoder_file)
    change(payload["state_dict"])
    path = tmp_path / "bad.pth"
    torch.save(payload, path)
    return str(path)


def _rename(state):
    state["blocks.0.attn.qkv.weights"] = state.pop("blocks.0.attn.qkv.weight")


def _drop_block(state):
    for key in [k for k in state if k.startswith("blocks.3.")]:
        del state[key]


def _reshape(state):
    state["blocks.1.mlp.fc1.weight"] = state["blocks.1.mlp.fc1.weight"][:-1]


@pytest.mark.parametrize("registry", ["mmseg", "mmdet"])
@pytest.mark.parametrize(
    "change,named",
    [
        (_rename, "blocks.0.attn.qkv.weights"),
        (_drop_block, "blocks.3.attn.proj.bias"),
        (_reshape, "blocks.1.mlp.fc1.weight: file (255, 64) vs model (256, 64)"),
    ],
)
def test_a_wrong_file_stops_the_run_with_the_key_named(registry, change, named, encoder_file, tmp_path):
    model = _build(registry, arch="micro", checkpoint=_corrupt(encoder_file, tmp_path, change))
    with pytest.raises(EncoderLoadError, match=named.replace("(", r"\(").replace(")", r"\)")):
        model.init_weights()


def test_window_attention_keeps_windows_apart():
    torch.manual_seed(0)
    block = build_vit("micro").blocks[0].eval()
    x = torch.randn(1, 8 * 8, 64)
    y = windowed_block(block, x, (8, 8), 4)
    x2 = x.clone().view(1, 8, 8, 64)
    x2[:, :4, :4] += 1.0  # the top-left window only
    y2 = windowed_block(block, x2.view(1, 64, 64), (8, 8), 4).view(1, 8, 8, 64)
    y = y.view(1, 8, 8, 64)
    assert not torch.allclose(y[:, :4, :4], y2[:, :4, :4])
    assert torch.equal(y[:, 4:], y2[:, 4:]) and torch.equal(y[:, :4, 4:], y2[:, :4, 4:])
    # one window over the whole (unpadded) map is global attention
    assert torch.allclose(windowed_block(block, x, (8, 8), 8), block(x), atol=1e-6)


def test_window_attention_pads_a_map_that_is_not_a_multiple_of_the_window():
    block = build_vit("micro").blocks[0].eval()
    x = torch.randn(2, 5 * 7, 64)
    assert windowed_block(block, x, (5, 7), 4).shape == x.shape


def test_inputs_of_another_size_resample_the_position_embedding():
    model = _build("mmdet", arch="micro", img_size=32).eval()
    outs = model(torch.randn(1, 3, 48, 64))
    assert [tuple(o.shape[-2:]) for o in outs] == [(12, 16), (6, 8), (3, 4), (1, 2)]
    with pytest.raises(ValueError, match="not a multiple of the patch size 4"):
        model(torch.randn(1, 3, 30, 32))


def test_the_cls_token_is_frozen_and_unused_with_windows():
    model = _build("mmdet", arch="micro", pyramid="last", window_size=4, global_blocks=(3,))
    assert not model.vit.cls_token.requires_grad
    out = model(torch.randn(1, 3, 32, 32))[0]
    out.sum().backward()
    assert model.vit.cls_token.grad is None
    assert model.vit.blocks[0].attn.qkv.weight.grad is not None
