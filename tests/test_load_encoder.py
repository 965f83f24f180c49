"""The encoder file and the one strict loader."""

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

import methods
from methods.backbone import build_vit
from methods.encoder_file import EncoderLoadError, export_encoder, load_encoder, read_encoder

MICRO_TIMM = dict(img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = methods.build("mae", "micro")
    path = tmp_path_factory.mktemp("enc") / "encoder.pth"
    sha = export_encoder(model, path, {"method": "mae", "budget": "micro"})
    return model, path, sha


def test_export_is_atomic_and_tensor_only(exported):
    model, path, sha = exported
    assert [p.name for p in path.parent.iterdir()] == ["encoder.pth"]  # no temporary file left behind
    payload = read_encoder(path)  # weights_only=True
    assert payload["meta"]["sha256"] == sha
    assert payload["meta"]["method"] == "mae" and payload["meta"]["arch"]["embed_dim"] == 64
    assert set(payload["state_dict"]) == set(model.encoder.state_dict())


def test_exported_encoder_loads_into_plain_timm_vit_strictly(exported):
    model, path, sha = exported
    plain = VisionTransformer(**MICRO_TIMM, global_pool="token", num_classes=0).eval()
    plain.load_state_dict(read_encoder(path)["state_dict"], strict=True)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model.encoder.forward_features(images)
        assert torch.allclose(plain.forward_features(images), expected, atol=1e-6)
    report = load_encoder(path, VisionTransformer(**MICRO_TIMM, global_pool="token", num_classes=0))
    assert report.fraction_loaded == 1.0 and report.num_loaded == len(model.encoder.state_dict())
    assert report.sha256 == report.source_sha256 == sha
    assert report.transforms == [] and report.meta["budget"] == "micro"


def _state(exported):
    return dict(read_encoder(exported[1])["state_dict"])


def test_renamed_key_stops_the_load_naming_both_names(exported):
    state = _state(exported)
    state["blocks.0.attn.qkv.w"] = state.pop("blocks.0.attn.qkv.weight")
    with pytest.raises(EncoderLoadError) as err:
        load_encoder(state, build_vit("micro"))
    assert "blocks.0.attn.qkv.weight" in str(err.value) and "blocks.0.attn.qkv.w'" in str(err.value)


def test_missing_block_stops_the_load(exported):
    state = {k: v for k, v in _state(exported).items() if not k.startswith("blocks.3.")}
    with pytest.raises(EncoderLoadError, match=r"missing in file: \['blocks\.3\."):
        load_encoder(state, build_vit("micro"))


def test_wrong_shape_stops_the_load(exported):
    state = _state(exported)
    state["norm.weight"] = state["norm.weight"][:32]
    with pytest.raises(EncoderLoadError, match=r"norm\.weight: file \(32,\) vs model \(64,\)"):
        load_encoder(state, build_vit("micro"))


def test_pos_embed_interpolation_only_when_declared(exported):
    bigger = build_vit("micro", img_size=64)  # 16 x 16 grid
    with pytest.raises(EncoderLoadError, match="pos_embed"):
        load_encoder(exported[1], bigger)
    report = load_encoder(exported[1], bigger, interpolate_pos_embed=True)
    assert report.transforms == [
        "interpolate_pos_embed: 8x8 -> 16x16 (bicubic, prefix tokens kept, as official MAE)"
    ]
    assert report.fraction_loaded == 1.0 and report.sha256 != report.source_sha256
    assert torch.equal(bigger.cls_token, exported[0].encoder.cls_token)


def test_drop_final_norm_for_protocols_with_their_own(exported):
    pooled = VisionTransformer(**MICRO_TIMM, global_pool="avg", num_classes=10)  # fc_norm + head, no norm
    with pytest.raises(EncoderLoadError, match=r"unexpected in file: \['norm\.bias', 'norm\.weight'\]"):
        load_encoder(exported[1], pooled)
    report = load_encoder(exported[1], pooled, drop_final_norm=True)
    assert report.dropped == ["norm.weight", "norm.bias"] and report.fraction_loaded == 1.0
    assert report.transforms and report.transforms[0].startswith("drop_final_norm")
    assert report.left_to_protocol == ["fc_norm.bias", "fc_norm.weight", "head.bias", "head.weight"]


def test_classifier_head_is_left_to_the_protocol(exported):
    classifier = VisionTransformer(**MICRO_TIMM, global_pool="token", num_classes=10)
    report = load_encoder(exported[1], classifier)
    assert report.left_to_protocol == ["head.bias", "head.weight"] and report.fraction_loaded == 1.0


def test_official_file_points_to_the_converter(tmp_path, exported):
    path = tmp_path / "official.pth"
    torch.save({"model": _state(exported)}, path)
    with pytest.raises(EncoderLoadError, match=r"methods\.mae\.convert"):
        load_encoder(path, build_vit("micro"))
