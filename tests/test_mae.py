"""MAE against the official implementation, and the MIMModel contract the harness relies on."""

import argparse
from pathlib import Path

import pytest
import torch
from mmengine.optim import OptimWrapper, build_optim_wrapper

import methods
from methods.backbone import build_vit
from methods.base import PARAMWISE_CFG, sample_ids_of
from methods.encoder_file import load_encoder
from methods.mae.convert import convert
from methods.mae.convert import main as convert_main
from methods.mae.model import MAE
from methods.masking import random_masking

FIXTURES = Path(__file__).parent / "fixtures" / "mae_parity"


@pytest.fixture(scope="module")
def official():
    checkpoint = torch.load(FIXTURES / "checkpoint.pth", weights_only=True)
    reference = torch.load(FIXTURES / "reference.pth", weights_only=True)
    return checkpoint, reference


@pytest.fixture(scope="module")
def parity_model(official):
    checkpoint, reference = official
    arch = {k: v for k, v in reference["config"].items() if k != "in_chans"}
    model = MAE(**arch, norm_pix_loss=True).eval()
    model.load_state_dict(convert(checkpoint)["state_dict"], strict=True)
    return model


# ---- parity with facebookresearch/mae (fixture: tests/fixtures/generate_mae_parity.py) ---------------
def test_parity_loss_and_prediction(parity_model, official):
    _, ref = official
    mask = ref["mask"].bool()
    with torch.no_grad():
        losses = parity_model.loss(ref["images"], mask=mask)
        masking = parity_model.masking(ref["images"], mask)
        pred = parity_model.forward_decoder(
            parity_model.forward_encoder(ref["images"], masking.ids_keep), masking.ids_restore
        )
    assert abs(losses["loss_rec"].item() - ref["loss_norm_pix"].item()) < 1e-5
    assert torch.allclose(pred, ref["pred"], atol=1e-5, rtol=0)


def test_parity_of_masking_encoder_and_pixel_loss(parity_model, official):
    _, ref = official
    masking = random_masking(ref["noise"], ref["config"]["mask_ratio"])  # the official noise
    assert torch.equal(masking.mask, ref["mask"].bool())
    assert torch.equal(masking.ids_restore, ref["ids_restore"])
    with torch.no_grad():
        latent = parity_model.forward_encoder(ref["images"], masking.ids_keep)
        pred = parity_model.forward_decoder(latent, masking.ids_restore)
        assert torch.allclose(latent, ref["latent"], atol=1e-5, rtol=0)  # same token order as official
        parity_model.norm_pix_loss = False
        try:
            loss_pixels = parity_model.forward_loss(ref["images"], pred, masking.mask)
        finally:
            parity_model.norm_pix_loss = True
    assert abs(loss_pixels.item() - ref["loss_pixels"].item()) < 1e-5


# ---- conversion -------------------------------------------------------------------------------------
def test_encoder_only_official_file_converts_to_an_encoder_file(official, parity_model):
    checkpoint, _ = official
    decoder_keys = ("decoder", "mask_token")
    encoder_only = {k: v for k, v in checkpoint["model"].items() if not k.startswith(decoder_keys)}
    out = convert({"model": encoder_only})
    assert out["meta"]["kind"] == "encoder" and out["meta"]["arch"]["embed_dim"] == 64
    vit = build_vit(dict(img_size=32, patch_size=4, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0))
    report = load_encoder(out, vit)
    assert report.fraction_loaded == 1.0
    assert torch.equal(vit.blocks[1].mlp.fc2.weight, parity_model.encoder.blocks[1].mlp.fc2.weight)


def test_convert_rejects_unknown_keys(official):
    state = dict(official[0]["model"])
    state["head.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"head\.weight"):
        convert(state)


def test_convert_cli_reads_official_training_checkpoints(tmp_path, official, parity_model):
    src, dst = tmp_path / "checkpoint-0.pth", tmp_path / "mae.pth"
    torch.save({**official[0], "args": argparse.Namespace(model="mae_vit_tiny"), "epoch": 0}, src)
    assert convert_main([str(src), str(dst)]) == 0
    out = torch.load(dst, weights_only=True)
    model = MAE(**{k: v for k, v in official[1]["config"].items() if k != "in_chans"})
    model.load_state_dict(out["state_dict"], strict=True)
    assert torch.equal(model.decoder.pred.weight, parity_model.decoder.pred.weight)


# ---- official initialisation ------------------------------------------------------------------------
def test_official_init():
    torch.manual_seed(0)
    model = methods.build("mae", "tiny")
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            fan_out, fan_in = module.weight.shape
            bound = (6 / (fan_in + fan_out)) ** 0.5  # xavier-uniform
            assert module.weight.abs().max() <= bound and module.weight.abs().max() > 0.9 * bound, name
            assert not module.bias.any(), name
        if isinstance(module, torch.nn.LayerNorm):
            assert (module.weight == 1).all() and not module.bias.any(), name
    w = model.encoder.patch_embed.proj.weight  # initialised as a Linear on its [D, 3*p*p] view
    assert w.abs().max() <= (6 / (w[0].numel() + w.shape[0])) ** 0.5
    for token in (model.encoder.cls_token, model.decoder.mask_token):
        assert 0.01 < token.std().item() < 0.03
    assert not model.decoder.pos_embed.requires_grad


# ---- the contract ---------------------------------------------------------------------------------------
@pytest.fixture()
def micro():
    torch.manual_seed(0)
    return methods.build("mae", "micro")


def test_loss_dict_has_one_key_per_term_and_no_total(micro):
    losses = micro.loss(torch.randn(2, 3, 32, 32))
    assert list(losses) == ["loss_rec"]
    assert losses["loss_rec"].ndim == 0 and torch.isfinite(losses["loss_rec"])


def test_mmengine_backpropagates_the_documented_total(micro):
    images, ids = torch.randn(3, 3, 32, 32), torch.tensor([11, 4, 250])
    expected = sum(micro.loss(images, sample_ids=ids).values())
    captured = {}

    class Capture(OptimWrapper):
        def update_params(self, loss, **kwargs):
            captured["loss"] = loss

    wrapper = Capture(torch.optim.SGD(micro.parameters(), lr=0.0))
    log_vars = micro.train_step({"inputs": images, "data_samples": ids}, wrapper)
    assert torch.allclose(captured["loss"], expected) and torch.allclose(log_vars["loss"], expected)


def test_mask_override_and_keyed_default(micro):
    images = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[:, :48] = True
    masking = micro.masking(images, mask)
    assert torch.equal(masking.mask, mask) and (masking.ids_keep >= 48).all()
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        micro.masking(images, mask[:, :10])
    # the default mask depends on (seed, step, sample id) only
    a = micro.sample_mask(images, torch.tensor([5, 9])).mask
    b = micro.sample_mask(torch.randn(3, 3, 32, 32), torch.tensor([1, 9, 5])).mask
    assert torch.equal(a[0], b[2]) and torch.equal(a[1], b[1])
    assert torch.equal(micro.sample_mask(images).mask, micro.sample_mask(images, torch.arange(2)).mask)
    micro.set_progress(step=1, max_steps=10)
    assert not torch.equal(micro.sample_mask(images, torch.tensor([5, 9])).mask, a)
    micro.seed = 1
    micro.set_progress(step=0, max_steps=10)
    assert not torch.equal(micro.sample_mask(images, torch.tensor([5, 9])).mask, a)


def test_forward_modes(micro):
    images = torch.randn(2, 3, 32, 32)
    assert micro(images, mode="tensor").shape == (2, 65, 64)
    assert set(micro(images, [{"sample_idx": 0}, {"sample_idx": 1}], mode="loss")) == {"loss_rec"}
    with pytest.raises(ValueError, match="mode"):
        micro(images, mode="predict")


def test_sample_ids_of_accepts_the_documented_forms():
    class Sample:
        sample_idx = 7

    assert sample_ids_of(None, 2) is None
    assert sample_ids_of(torch.tensor([3, 4]), 2).tolist() == [3, 4]
    assert sample_ids_of([{"sample_idx": 1}, Sample()], 2).tolist() == [1, 7]
    with pytest.raises(ValueError, match="batch of 3"):
        sample_ids_of([1, 2], 3)


def test_weight_decay_split_is_official_and_matches_mmengine(micro):
    no_decay, decay = micro.param_groups_for_weight_decay(0.05)
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.05
    names = {id(p): n for n, p in micro.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    not_decayed = {names[id(p)] for p in no_decay["params"]}
    assert {"encoder.cls_token", "decoder.mask_token", "encoder.patch_embed.proj.weight"} <= decayed
    assert {"encoder.patch_embed.proj.bias", "encoder.norm.weight", "decoder.pred.bias"} <= not_decayed
    assert not {"encoder.pos_embed", "decoder.pos_embed"} & (decayed | not_decayed)  # fixed, not trained
    trainable = {n for n, p in micro.named_parameters() if p.requires_grad}
    assert decayed | not_decayed == trainable and not decayed & not_decayed
    # mmengine's constructor with PARAMWISE_CFG gives every trainable parameter the same decay
    wrapper = build_optim_wrapper(
        micro, dict(optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.05), paramwise_cfg=PARAMWISE_CFG)
    )
    mm = {names[id(p)]: g["weight_decay"] for g in wrapper.optimizer.param_groups for p in g["params"]}
    expected = {n: 0.05 if n in decayed else 0.0 for n in trainable}
    assert {n: wd for n, wd in mm.items() if n in trainable} == expected


def test_export_encoder_state_is_the_encoder(micro):
    state = micro.export_encoder_state()
    assert set(state) == set(micro.encoder.state_dict())
    state["cls_token"].add_(1.0)  # a copy: exporting never aliases the live weights
    assert not torch.equal(state["cls_token"], micro.encoder.cls_token)


def test_init_weights_is_a_no_op_for_the_runner(micro):
    before = {k: v.clone() for k, v in micro.state_dict().items()}
    micro.init_weights()
    assert all(torch.equal(before[k], v) for k, v in micro.state_dict().items())
