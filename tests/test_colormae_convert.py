"""ColorMAE's converter: official mmpretrain MAE checkpoints (carlosh93/ColorMAE) -> our model / encoder file.

mmpretrain is not installed, so the official state dict is synthesised here from a reading of the code, key by
key, with the shapes each module gives its tensors (sources in ``mmpretrain_mae_state``).
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from methods.backbone import build_vit
from methods.colormae.convert import convert, encoder_file
from methods.colormae.convert import main as convert_main
from methods.colormae.model import ColorMAE
from methods.encoder_file import load_encoder, read_encoder
from methods.masking import ids_from_mask

# A small arch that matches no ARCHS entry (so head counts come from the caller), 2 decoder blocks.
ARCH = dict(
    img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4,
    decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=2, mlp_ratio=4.0,
)  # fmt: skip
HEADS = ["--num-heads", "4", "--decoder-num-heads", "2"]
# The released colormae-green-epoch_*.pth: ViT-B/16 at 224, a 512 x 8 decoder (head counts are not weights).
VIT_B = dict(
    img_size=224, patch_size=16, embed_dim=768, depth=12,
    decoder_embed_dim=512, decoder_depth=8, mlp_ratio=4.0,
)  # fmt: skip


def mmpretrain_mae_state(arch: dict = ARCH, device: str = "cpu") -> dict[str, torch.Tensor]:
    """mmpretrain's ``MAE`` state dict for ColorMAE's config, shaped by ``arch`` (our arch keys; no decoder
    when ``decoder_depth`` is 0), every tensor random (LayerNorms included, so a wrong mapping cannot pass by
    accident). Names and shapes as read in open-mmlab/mmpretrain v1.0.2
    (732b0f4c9869d952eca7d66cb82ad0be8d83cc10; the same files at ee7f2e88501f61aa95c742dd5f429f039935ee90) and
    open-mmlab/mmcv v2.0.1 (fc038a386a42d1f36d9ec49169d5817a52c70b8e):

    * ``mmpretrain/models/selfsup/mae.py``: ``MAE`` (a ``BaseSelfSupervisor``: ``backbone``, ``neck``,
      ``head``); ColorMAE's ``models/colormae.py::ColorMAEViT`` (carlosh93/ColorMAE@f0ad557) is ``MAEViT``
      with another mask and no extra modules (its ``ColorMasking`` is a plain object).
    * ``mmpretrain/models/backbones/vision_transformer.py``: ``VisionTransformer`` has ``cls_token``
      [1, 1, D], ``pos_embed`` [1, N + 1, D] (the cls position included), ``patch_embed`` (mmcv's
      ``PatchEmbed``: conv ``projection``, no norm), ``layers.N`` (``TransformerEncoderLayer``: ``ln1``,
      ``attn``, ``ln2``, ``ffn``), ``pre_norm`` = Identity (no weights), the final norm ``ln1``
      (final_norm=True); ``ln2`` exists only for out_type='avg_featmap' (ColorMAEViT: 'raw').
    * ``mmpretrain/models/utils/attention.py``: ``MultiheadAttention`` has ``qkv`` [3D, D] and ``proj``;
      ``gamma1`` is Identity without layer scale.
    * ``mmcv/cnn/bricks/transformer.py``: ``FFN.layers`` = Sequential(Sequential(Linear, GELU, Dropout),
      Linear, Dropout): ``ffn.layers.0.0`` and ``ffn.layers.1``; ``gamma2`` is Identity.
    * ``mmpretrain/models/necks/mae_neck.py``: ``MAEPretrainDecoder`` has ``decoder_embed``, ``mask_token``
      [1, 1, Dd], ``decoder_pos_embed`` [1, N + 1, Dd], ``decoder_blocks.N`` (TransformerEncoderLayer), the
      norm from mmcv's ``build_norm_layer(..., postfix=1)``, named ``ln1``, and ``decoder_pred``.
    * ``MAEPretrainHead`` and ``PixelReconstructionLoss`` hold no tensors; the data preprocessor's mean/std
      buffers are not persistent (mmengine ``ImgDataPreprocessor``).
    """
    gen = torch.Generator().manual_seed(0)
    D, depth, patch_size = arch["embed_dim"], arch["depth"], arch["patch_size"]
    Dd, decoder_depth = arch["decoder_embed_dim"], arch["decoder_depth"]
    N = (arch["img_size"] // patch_size) ** 2
    shapes: dict[str, tuple[int, ...]] = {
        "backbone.cls_token": (1, 1, D),
        "backbone.pos_embed": (1, N + 1, D),
        "backbone.patch_embed.projection.weight": (D, 3, patch_size, patch_size),
        "backbone.patch_embed.projection.bias": (D,),
    }

    def layer(prefix: str, dim: int) -> dict[str, tuple[int, ...]]:
        hidden = int(arch["mlp_ratio"] * dim)
        return {
            f"{prefix}.ln1.weight": (dim,),
            f"{prefix}.ln1.bias": (dim,),
            f"{prefix}.attn.qkv.weight": (3 * dim, dim),
            f"{prefix}.attn.qkv.bias": (3 * dim,),
            f"{prefix}.attn.proj.weight": (dim, dim),
            f"{prefix}.attn.proj.bias": (dim,),
            f"{prefix}.ln2.weight": (dim,),
            f"{prefix}.ln2.bias": (dim,),
            f"{prefix}.ffn.layers.0.0.weight": (hidden, dim),
            f"{prefix}.ffn.layers.0.0.bias": (hidden,),
            f"{prefix}.ffn.layers.1.weight": (dim, hidden),
            f"{prefix}.ffn.layers.1.bias": (dim,),
        }

    for i in range(depth):
        shapes |= layer(f"backbone.layers.{i}", D)
    shapes |= {"backbone.ln1.weight": (D,), "backbone.ln1.bias": (D,)}
    if decoder_depth:
        shapes |= {
            "neck.decoder_embed.weight": (Dd, D),
            "neck.decoder_embed.bias": (Dd,),
            "neck.mask_token": (1, 1, Dd),
            "neck.decoder_pos_embed": (1, N + 1, Dd),
        }
        for i in range(decoder_depth):
            shapes |= layer(f"neck.decoder_blocks.{i}", Dd)
        shapes |= {
            "neck.ln1.weight": (Dd,),
            "neck.ln1.bias": (Dd,),
            "neck.decoder_pred.weight": (patch_size**2 * 3, Dd),
            "neck.decoder_pred.bias": (patch_size**2 * 3,),
        }
    if device == "meta":
        return {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    return {k: 0.1 * torch.randn(s, generator=gen) + (1.0 if ".ln" in k else 0.0) for k, s in shapes.items()}


def mmengine_checkpoint(state: dict[str, torch.Tensor]) -> dict:
    """What mmengine's CheckpointHook writes, less the pickled message hub (see the --trust-pickle test)."""
    meta = {
        "epoch": 300,
        "iter": 93600,
        "mmengine_version": "0.8.4",
        "seed": 0,
        "experiment_name": "colormae",
    }
    return {"meta": meta, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}


@pytest.fixture(scope="module")
def official() -> dict[str, torch.Tensor]:
    return mmpretrain_mae_state()


@pytest.fixture(scope="module")
def model(official) -> ColorMAE:
    out = convert(mmengine_checkpoint(official), num_heads=4, decoder_num_heads=2)
    m = ColorMAE(**ARCH).eval()
    m.load_state_dict(out["state_dict"], strict=True)
    return m


# ---- the mapping ------------------------------------------------------------------------------------------
def test_every_tensor_lands_where_the_mapping_says(official, model):
    out = convert(mmengine_checkpoint(official), num_heads=4, decoder_num_heads=2)
    assert out["meta"]["kind"] == "colormae" and set(out["state_dict"]) == set(model.state_dict())
    assert len(out["state_dict"]) == len(official)  # one-to-one: nothing dropped, nothing duplicated
    assert out["meta"]["arch"] == ARCH  # shapes -> arch, heads from the caller
    pairs = [
        (model.encoder.blocks[3].attn.qkv.weight, "backbone.layers.3.attn.qkv.weight"),
        (model.encoder.blocks[3].attn.qkv.bias, "backbone.layers.3.attn.qkv.bias"),
        (model.encoder.blocks[2].norm1.weight, "backbone.layers.2.ln1.weight"),
        (model.encoder.blocks[2].norm2.bias, "backbone.layers.2.ln2.bias"),
        (model.encoder.blocks[1].mlp.fc1.weight, "backbone.layers.1.ffn.layers.0.0.weight"),
        (model.encoder.blocks[1].mlp.fc2.weight, "backbone.layers.1.ffn.layers.1.weight"),
        (model.encoder.blocks[0].attn.proj.weight, "backbone.layers.0.attn.proj.weight"),
        (model.encoder.patch_embed.proj.weight, "backbone.patch_embed.projection.weight"),
        (model.encoder.norm.weight, "backbone.ln1.weight"),
        (model.encoder.cls_token, "backbone.cls_token"),
        (model.encoder.pos_embed, "backbone.pos_embed"),
        (model.decoder.embed.weight, "neck.decoder_embed.weight"),
        (model.decoder.mask_token, "neck.mask_token"),
        (model.decoder.pos_embed, "neck.decoder_pos_embed"),
        (model.decoder.blocks[1].mlp.fc2.bias, "neck.decoder_blocks.1.ffn.layers.1.bias"),
        (model.decoder.blocks[1].attn.qkv.weight, "neck.decoder_blocks.1.attn.qkv.weight"),
        (model.decoder.norm.weight, "neck.ln1.weight"),
        (model.decoder.norm.bias, "neck.ln1.bias"),
        (model.decoder.pred.weight, "neck.decoder_pred.weight"),
    ]
    for ours, name in pairs:
        assert torch.equal(ours, official[name]), name
    # the position tables are kept as stored (mmpretrain's halves are row-first), never regenerated
    assert not torch.equal(model.encoder.pos_embed, build_vit(ARCH).pos_embed)


def test_released_vit_b_shapes_name_their_architecture():
    """ViT-B/16 with the 512 x 8 decoder (the released colormae-green-epoch_*.pth): 254 tensors, and the arch
    (head counts included) comes from ARCHS. Meta tensors: shapes without memory."""
    state = mmpretrain_mae_state(VIT_B, device="meta")
    assert len(state) == 150 + 104  # backbone 2 + 2 + 12 x 12 + 2; neck 4 + 8 x 12 + 2 + 2
    # the parameter count the ColorMAE README (111.91 M) and mmpretrain's configs/mae/metafile.yml report
    assert sum(t.numel() for t in state.values()) == 111_907_840
    arch = convert({"state_dict": state})["meta"]["arch"]
    assert arch["name"] == "vit_base_patch16" and (arch["num_heads"], arch["decoder_num_heads"]) == (12, 16)
    assert (arch["img_size"], arch["patch_size"], arch["depth"], arch["decoder_depth"]) == (224, 16, 12, 8)


def _ln(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)


def _linear(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])


def manual_layer(x: torch.Tensor, sd: dict, prefix: str, heads: int) -> torch.Tensor:
    """One mmpretrain TransformerEncoderLayer by hand, from the official names: x + attn(ln1(x)), then
    mmcv's FFN with identity x: x + fc2(gelu(fc1(ln2(x)))); attention as MultiheadAttention reads qkv."""
    B, T, D = x.shape
    qkv = _linear(_ln(x, sd, f"{prefix}.ln1"), sd, f"{prefix}.attn.qkv")
    q, k, v = qkv.reshape(B, T, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1) / math.sqrt(D // heads)).softmax(dim=-1)
    x = x + _linear((attn @ v).transpose(1, 2).reshape(B, T, D), sd, f"{prefix}.attn.proj")
    hidden = F.gelu(_linear(_ln(x, sd, f"{prefix}.ln2"), sd, f"{prefix}.ffn.layers.0.0"))
    return x + _linear(hidden, sd, f"{prefix}.ffn.layers.1")


def test_a_layer_matches_a_manual_computation(official, model):
    x = torch.randn(2, 17, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model.encoder.blocks[3](x)
        decoder_ours = model.decoder.blocks[1](x[..., :32])
    torch.testing.assert_close(ours, manual_layer(x, official, "backbone.layers.3", 4), atol=1e-5, rtol=1e-5)
    manual = manual_layer(x[..., :32], official, "neck.decoder_blocks.1", 2)
    torch.testing.assert_close(decoder_ours, manual, atol=1e-5, rtol=1e-5)


def test_the_whole_model_matches_a_manual_mmpretrain_forward(official, model):
    """MAEViT.forward (patch conv, + pos_embed[1:], keep, cls + pos_embed[:1], layers, ln1) and
    MAEPretrainDecoder.forward (embed, mask tokens, un-shuffle, + pos, blocks, ln1, pred, drop cls) by hand,
    against our encoder + decoder on the same mask."""
    gen = torch.Generator().manual_seed(2)
    imgs = torch.randn(2, 3, 32, 32, generator=gen)
    mask = torch.rand(2, 64, generator=gen).argsort(dim=1).argsort(dim=1) >= 16  # 48 of 64 masked
    masking = ids_from_mask(mask)
    sd = official
    x = F.conv2d(
        imgs, sd["backbone.patch_embed.projection.weight"], sd["backbone.patch_embed.projection.bias"], 4
    )
    x = x.flatten(2).transpose(1, 2) + sd["backbone.pos_embed"][:, 1:]
    x = torch.gather(x, 1, masking.ids_keep[..., None].expand(-1, -1, 64))
    cls = (sd["backbone.cls_token"] + sd["backbone.pos_embed"][:, :1]).expand(2, -1, -1)
    x = torch.cat([cls, x], dim=1)
    for i in range(4):
        x = manual_layer(x, sd, f"backbone.layers.{i}", 4)
    latent = _ln(x, sd, "backbone.ln1")
    x = _linear(latent, sd, "neck.decoder_embed")
    rest = torch.cat([x[:, 1:], sd["neck.mask_token"].expand(2, 64 + 1 - x.shape[1], -1)], dim=1)
    rest = torch.gather(rest, 1, masking.ids_restore[..., None].expand(-1, -1, 32))
    x = torch.cat([x[:, :1], rest], dim=1) + sd["neck.decoder_pos_embed"]
    for i in range(2):
        x = manual_layer(x, sd, f"neck.decoder_blocks.{i}", 2)
    pred = _linear(_ln(x, sd, "neck.ln1"), sd, "neck.decoder_pred")[:, 1:]
    with torch.no_grad():
        ours_latent = model.forward_encoder(imgs, masking.ids_keep)
        ours = model.forward_decoder(ours_latent, masking.ids_restore)
    torch.testing.assert_close(ours_latent, latent, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, pred, atol=1e-5, rtol=1e-5)
    assert pred.std() > 0.1  # not a degenerate comparison


# ---- strictness -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [
        "backbone.layers.0.attn.gamma1.weight",  # layer scale: not ColorMAE's config
        "backbone.ln2.weight",  # out_type='avg_featmap' norm
        "head.layers.head.weight",  # a fine-tuned classifier, not a pretraining checkpoint
        "module.backbone.cls_token",
    ],
)
def test_unknown_keys_are_a_one_line_error_naming_them(official, extra):
    with pytest.raises(ValueError, match=extra.replace(".", r"\.")) as info:
        convert({"state_dict": {**official, extra: torch.zeros(64)}})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "gone", ["neck.decoder_blocks.1.ffn.layers.1.bias", "backbone.ln1.weight", "neck.ln1.bias"]
)
def test_missing_keys_are_a_one_line_error_naming_them(official, gone):
    state = {k: v for k, v in official.items() if k != gone}
    with pytest.raises(ValueError, match=gone.replace(".", r"\.")) as info:
        convert({"state_dict": state})
    assert "\n" not in str(info.value)


def test_shapes_other_than_mmpretrain_are_refused(official):
    no_cls = {**official, "backbone.pos_embed": official["backbone.pos_embed"][:, 1:]}
    with pytest.raises(ValueError, match=r"backbone\.pos_embed has shape \(1, 64, 64\)"):
        convert({"state_dict": no_cls})
    flat_token = {**official, "neck.mask_token": official["neck.mask_token"].reshape(1, 32)}
    with pytest.raises(ValueError, match=r"neck\.mask_token has shape \(1, 32\)"):
        convert({"state_dict": flat_token})
    with pytest.raises(ValueError, match="non-tensor entries"):
        convert({"state_dict": {**official, "backbone.note": "x"}})


def test_data_preprocessor_constants_are_dropped_and_recorded(official):
    extra = {"data_preprocessor.mean": torch.ones(3, 1, 1), "data_preprocessor.std": torch.ones(3, 1, 1)}
    out = convert({"state_dict": {**official, **extra}})
    assert out["meta"]["dropped"] == sorted(extra) and not any("preprocessor" in k for k in out["state_dict"])


# ---- files and the command line ----------------------------------------------------------------------------
def test_cli_round_trip_model_state_and_encoder_file(official, model, tmp_path):
    src, full, enc = tmp_path / "epoch_300.pth", tmp_path / "colormae.pth", tmp_path / "encoder.pth"
    torch.save(mmengine_checkpoint(official), src)
    assert convert_main([str(src), str(full), *HEADS]) == 0
    out = torch.load(full, weights_only=True)
    rebuilt = ColorMAE(**out["meta"]["arch"])  # the recorded arch is enough to build the model
    rebuilt.load_state_dict(out["state_dict"], strict=True)
    assert torch.equal(rebuilt.decoder.pred.weight, official["neck.decoder_pred.weight"])
    assert out["meta"]["source_file"] == "epoch_300.pth"

    cmd = [sys.executable, "-m", "methods.colormae.convert", str(src), str(enc), "--encoder-only", *HEADS]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    payload = read_encoder(enc)
    assert payload["meta"]["kind"] == "encoder" and "decoder_depth" not in payload["meta"]["arch"]
    vit = build_vit(payload["meta"]["arch"])
    report = load_encoder(enc, vit)
    assert report.fraction_loaded == 1.0 and report.num_loaded == len(model.encoder.state_dict())
    assert torch.equal(vit.blocks[3].attn.qkv.weight, official["backbone.layers.3.attn.qkv.weight"])
    assert torch.equal(vit.norm.bias, official["backbone.ln1.bias"])
    assert payload["meta"]["sha256"] == encoder_file(mmengine_checkpoint(official))["meta"]["sha256"]


def test_a_backbone_only_file_becomes_an_encoder_file(official):
    backbone = {k: v for k, v in official.items() if k.startswith("backbone.")}
    out = convert({"state_dict": backbone}, num_heads=4)
    assert out["meta"]["kind"] == "encoder" and out["meta"]["arch"]["num_heads"] == 4
    assert load_encoder(out, build_vit(out["meta"]["arch"])).fraction_loaded == 1.0


def test_pickled_training_state_needs_trust_pickle(official, tmp_path, capsys):
    """A real mmengine checkpoint pickles its message hub (HistoryBuffer, NumPy): refused by default with a
    one-line error, read with --trust-pickle."""
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance("test_colormae_convert")
    hub.update_scalar("train/loss", 0.5)
    src, dst = tmp_path / "epoch_1.pth", tmp_path / "out.pth"
    torch.save({**mmengine_checkpoint(official), "message_hub": hub.state_dict()}, src)
    assert convert_main([str(src), str(dst), *HEADS]) == 2 and not dst.exists()
    err = capsys.readouterr().err.strip()
    assert "HistoryBuffer" in err and "--trust-pickle" in err and "\n" not in err
    assert convert_main([str(src), str(dst), *HEADS, "--trust-pickle"]) == 0
    assert torch.load(dst, weights_only=True)["meta"]["kind"] == "colormae"
