"""HPM against the official implementation (Haochen-Wang409/HPM), its curriculum, masks and EMA."""

import pytest
import torch

import methods
from methods.hpm.convert import convert, encoder_file
from methods.hpm.convert import main as convert_main
from methods.hpm.model import HPM, absolute_loss, code_momentum, hpm_mask, relative_loss
from methods.masking import num_masked, per_sample_noise, random_masking
from tests.parity_helpers import converted_model, load_parity, max_state_error

TOL = 1e-5
#: the EMA moves by (1 - m) ~ 1e-3 of a step: a decay off by 9e-6 (another epoch's) shifts it by ~8e-7
EMA_TOL = 3e-7


@pytest.fixture(scope="module")
def official():
    return load_parity("hpm")


def parity_model(official, **keys) -> HPM:
    # the budget's norm_pix_loss=True is overridden by pixel_target='pixels'
    return converted_model(HPM, convert, official, **{"norm_pix_loss": True, **keys}).eval()


def state_error(model: HPM, official_state: dict, network: str) -> float:
    """Largest |ours - official| over one network ('model' or 'ema') of our HPM."""
    converted = convert({"state_dict": official_state, "ema_state_dict": official_state})["state_dict"]
    return max_state_error(model, converted, teacher=network == "ema")


# ---- parity with the official code (fixture: tests/fixtures/generate_hpm_parity.py) ------------------
def test_parity_predicted_losses_and_the_forced_hard_set(official):
    _, ref = official
    model = parity_model(official)
    model.set_progress(step=0, max_steps=ref["epochs"], epoch=ref["epoch"], max_epochs=ref["epochs"])
    predicted = model.predict_losses(ref["images"])  # the EMA, full image
    assert torch.allclose(predicted, ref["ema_loss_pred"], atol=TOL, rtol=0)
    # no ties, and ours orders the patches as the official does: the same forced set
    assert all(len(row.unique()) == len(row) for row in ref["ema_loss_pred"])
    assert model.num_hard() == ref["num_hard"] == 12
    mask = model.sample_mask(ref["images"], sample_ids=torch.arange(len(ref["images"]))).mask
    forced = torch.zeros_like(mask).scatter(1, ref["hard"], True)
    ours_forced = hpm_mask(predicted, torch.zeros_like(predicted), model.num_hard(), model.num_hard())
    assert torch.equal(ours_forced, forced)
    assert bool(mask[forced].all()) and bool(ref["mask"][forced].all())  # both masks hold the forced set
    n_masked = num_masked(model.num_patches, model.mask_ratio)
    assert mask.sum(1).tolist() == ref["mask"].sum(1).tolist() == [n_masked] * len(mask)  # 48 of 64


def test_parity_reconstruction_and_loss_prediction(official):
    _, ref = official
    model = parity_model(official)
    mask = ref["mask"].bool()
    with torch.no_grad():
        losses = model.loss(ref["images"], mask=mask)
        masking = model.masking(ref["images"], mask)
        latent = model.forward_encoder(ref["images"], masking.ids_keep)
        pred, scores = model.forward_decoders(latent, masking.ids_restore)
    B = len(mask)
    assert list(losses) == ["loss_rec", "loss_learn"]
    assert abs(losses["loss_rec"].item() - ref["loss_rec"].item()) < TOL
    assert abs(losses["loss_learn"].item() - ref["loss_learn_relative"].item()) < TOL
    # the official [:, -mask_num:] slices are our masked patches in raster order
    assert torch.allclose(pred[mask].reshape(B, -1, pred.shape[-1]), ref["pix_pred_masked"], atol=TOL, rtol=0)
    assert torch.allclose(scores[mask].reshape(B, -1), ref["loss_pred_masked"], atol=TOL, rtol=0)
    per_patch = model.patch_losses(ref["images"], pred)[mask].reshape(B, -1)
    assert torch.allclose(per_patch, ref["rec_matrix"], atol=TOL, rtol=0)
    # the objectives on the official inputs, and the switches
    relative = relative_loss(ref["loss_pred_masked"], ref["rec_matrix"])
    assert abs(relative.item() - ref["loss_learn_relative"].item()) < 1e-6
    absolute = absolute_loss(ref["loss_pred_masked"], ref["rec_matrix"])
    assert abs(absolute.item() - ref["loss_learn_absolute"].item()) < 1e-6
    with torch.no_grad():
        absolute = parity_model(official, objective="absolute").loss(ref["images"], mask=mask)
        norm_pix = parity_model(official, pixel_target="norm_pixels").loss(ref["images"], mask=mask)
    assert abs(absolute["loss_learn"].item() - ref["loss_learn_absolute"].item()) < TOL
    assert abs(norm_pix["loss_rec"].item() - ref["loss_rec_norm_pix"].item()) < TOL
    assert abs(ref["loss_rec_norm_pix"].item() - ref["loss_rec"].item()) > 0.01  # the switch matters
    budget = parity_model(official, pixel_target="budget")  # the budget's norm_pix_loss (True here)
    assert budget.norm_pix_loss and not parity_model(official).norm_pix_loss


def test_parity_of_the_training_step_and_the_ema(official):
    """One official iteration (epoch 1 of 4): loss = rec + learn, gradient clipped to norm 5 (the official
    loss scaler's default; inactive here, norm 2.18), SGD, then the EMA with the epoch's decay."""
    _, ref = official
    model = parity_model(official, momentum_schedule="code").train()
    model.set_progress(
        step=ref["epoch"], max_steps=ref["epochs"], epoch=ref["epoch"], max_epochs=ref["epochs"]
    )
    losses = model.loss(ref["images"], mask=ref["mask"].bool())
    assert abs(losses["loss_rec"].item() - ref["step_loss"].item()) < TOL
    assert abs(losses["loss_learn"].item() - ref["step_loss_learn"].item()) < TOL
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=ref["lr"])
    sum(losses.values()).backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(params, ref["clip_grad"])
    assert abs(grad_norm.item() - ref["step_grad_norm"].item()) < 1e-4
    optimizer.step()
    assert model.momentum() == pytest.approx(ref["ema_decay"], abs=1e-12)  # 0.999009
    model.after_train_step()
    assert state_error(model, ref["model_after"], "model") < TOL
    assert state_error(model, ref["ema_after"], "ema") < EMA_TOL  # measured 3e-8
    # a momentum of another epoch misses the official EMA
    wrong = parity_model(official, momentum_schedule="code")
    wrong.load_state_dict(model.state_dict())
    wrong.teacher.load_state_dict(parity_model(official).teacher.state_dict())
    wrong.teacher.update(wrong.student(), code_momentum(0))  # 0.999 instead of 0.999009
    assert state_error(wrong, ref["ema_after"], "ema") > EMA_TOL  # measured 8e-7


def test_parity_of_the_curriculum_counts(official):
    """K_h read off the official generate_mask (count probe), at paper scale and the fixture's."""
    _, ref = official
    for num_patches, epoch, epochs, num_hard, masked in ref["probe"].tolist():
        side = int(num_patches**0.5) * 4
        model = HPM(img_size=side, patch_size=4, embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=16,
                    decoder_depth=1, decoder_num_heads=2, mask_ratio=0.75)  # fmt: skip
        model.set_progress(step=0, max_steps=epochs, epoch=epoch, max_epochs=epochs)
        assert model.num_hard() == num_hard, (num_patches, epoch, epochs)
        assert num_masked(num_patches, 0.75) == masked
    assert [row[3] for row in ref["probe"].tolist() if row[:3] == [196, 799, 800]] == [73]  # int(147 * 0.5)


# ---- the curriculum and the masks in our harness ----------------------------------------------------------
@pytest.fixture()
def micro():
    torch.manual_seed(0)
    return methods.build("hpm", "micro")


def test_curriculum_is_a_pure_function_of_progress(micro):
    assert methods.method_config("hpm") == {
        "objective": "relative",
        "pixel_target": "pixels",
        "hard_ratio": 0.5,
        "curriculum": "linear",
        "momentum_schedule": "budget",
    }
    expected = {0: (1 / 6, 8), 1: (1 / 3, 16), 2: (0.5, 24)}  # micro: 3 epochs, 64 patches, 48 masked
    for epoch, (alpha, hard) in expected.items():
        for step in (0, 17):  # the step within the run does not matter, only the epoch
            micro.set_progress(step=32 * epoch + step, max_steps=96, epoch=epoch, max_epochs=3)
            assert micro.hard_fraction() == pytest.approx(alpha) and micro.num_hard() == hard
    # a fresh model (a resumed run) told the same progress agrees: no state
    torch.manual_seed(1)
    fresh = methods.build("hpm", "micro")
    fresh.set_progress(step=70, max_steps=96, epoch=2, max_epochs=3)
    assert fresh.num_hard() == 24
    constant = methods.build("hpm", "micro", curriculum="constant")
    constant.set_progress(step=0, max_steps=96, epoch=0, max_epochs=3)
    assert constant.num_hard() == 24
    with pytest.raises(ValueError, match="curriculum"):
        methods.build("hpm", "micro", curriculum="cosine")


def test_masks_hold_the_hardest_patches_and_exactly_the_mae_count(micro):
    images = torch.randn(6, 3, 32, 32)
    ids = torch.tensor([4, 9, 1, 30, 2, 7])
    n_masked = num_masked(micro.num_patches, micro.mask_ratio)
    predicted = micro.predict_losses(images)
    for epoch in range(3):
        micro.set_progress(step=32 * epoch, max_steps=96, epoch=epoch, max_epochs=3)
        masking = micro.sample_mask(images, ids)
        assert masking.mask.sum(1).tolist() == [n_masked] * 6  # exactly MAE's count, every row
        hard = torch.topk(predicted, micro.num_hard(), dim=1).indices
        assert bool(torch.gather(masking.mask, 1, hard).all())  # the hardest patches are masked
        assert masking.ids_keep.shape == (6, micro.num_patches - n_masked)
        # the random fill is keyed per sample: the same sample gets the same mask in another batch
        again = micro.sample_mask(images[[3, 0]], ids[[3, 0]]).mask
        assert torch.equal(again, masking.mask[[3, 0]])
    # with no hard patches the mask is MAE's random mask of the same keyed noise
    noise = per_sample_noise(0, 5, ids, micro.num_patches)
    assert torch.equal(hpm_mask(None, noise, n_masked, 0), random_masking(noise, micro.mask_ratio).mask)
    with pytest.raises(ValueError, match="hard patches"):
        hpm_mask(predicted, noise, n_masked, n_masked + 1)


def test_gradients_and_the_ema(micro):
    micro.train()
    micro.set_progress(step=0, max_steps=96, epoch=0, max_epochs=3)
    losses = micro.loss(torch.randn(4, 3, 32, 32), sample_ids=torch.arange(4))
    assert set(losses) == {"loss_rec", "loss_learn"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trainable = [n for n, p in micro.named_parameters() if p.requires_grad]
    assert not [n for n in trainable if micro.get_parameter(n).grad is None]  # every trainable one
    assert all(p.grad is None and not p.requires_grad for p in micro.teacher.parameters())
    assert not micro.teacher.training
    # the loss predictor's objective alone reaches the encoder (the official code does not detach it)
    micro.zero_grad()
    micro.loss(torch.randn(2, 3, 32, 32))["loss_learn"].backward()
    assert micro.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert micro.decoder.pred.weight.grad is None  # not through the reconstructor (targets detached)
    # EMA: m weighs the old EMA; the budget's rule when the harness sets one, else the code's epoch ramp
    assert micro.momentum() == code_momentum(0) == 0.999
    micro.set_progress(step=0, max_steps=96, epoch=150, max_epochs=800)
    assert micro.momentum() == 0.9999
    micro.teacher_momentum = 0.9
    with torch.no_grad():
        micro.encoder.cls_token.add_(1.0)
    old = micro.teacher.module.encoder.cls_token.clone()
    micro.after_train_step()
    expected = 0.9 * old + 0.1 * micro.encoder.cls_token
    assert torch.allclose(micro.teacher.module.encoder.cls_token, expected, atol=1e-7)
    assert torch.equal(micro.export_encoder_state()["cls_token"], micro.encoder.cls_token)  # the student's


def test_relative_loss_ignores_ties_and_ranks():
    losses = torch.tensor([[1.0, 2.0, 2.0]])
    right, wrong = torch.tensor([[0.0, 5.0, 5.0]]), torch.tensor([[5.0, 0.0, 0.0]])
    assert relative_loss(right, losses) < 0.01 < 4.0 < relative_loss(wrong, losses)
    # 4 valid ordered pairs (the tied pair 1-2 is not one), each -log(sigma(0) + 1e-6) for equal scores
    expected = -torch.log(torch.tensor(0.5) + 1e-6)
    assert relative_loss(torch.zeros(1, 3), losses).item() == pytest.approx(expected.item(), abs=1e-6)


# ---- conversion -----------------------------------------------------------------------------------------
def test_convert_reads_the_official_layouts_and_rejects_unknown_keys(official, tmp_path):
    checkpoint, _ = official
    assert all(k.startswith("module.") for k in checkpoint["state_dict"])  # main_pretrain.py under DDP
    assert isinstance(checkpoint["model"], str)  # there 'model' is the arch name
    out = convert(checkpoint)
    assert out["meta"]["ema"] == "from the checkpoint" and out["meta"]["official_arch"] == checkpoint["model"]
    state = out["state_dict"]
    assert (
        "loss_predictor.blocks.1.mlp.fc2.weight" in state
        and "teacher.module.loss_predictor.pred.bias" in state
    )
    assert torch.equal(
        state["loss_predictor.pred.weight"], checkpoint["state_dict"]["module.decoder_pred_losspred.weight"]
    )
    assert not torch.equal(state["encoder.cls_token"], state["teacher.module.encoder.cls_token"])
    # util/misc.py::save_model's layout ('model' = state dict) and 'model_ema'; no EMA: the EMA = the model
    bare = {k.removeprefix("module."): v for k, v in checkpoint["state_dict"].items()}
    alt = convert({"model": bare, "model_ema": checkpoint["ema_state_dict"]})["state_dict"]
    assert alt.keys() == state.keys() and all(torch.equal(alt[k], state[k]) for k in state)
    no_ema = convert({"model": bare})
    assert "copied" in no_ema["meta"]["ema"]
    assert torch.equal(no_ema["state_dict"]["teacher.module.encoder.cls_token"], bare["cls_token"])
    HPM(**{k: v for k, v in official[1]["config"].items() if k != "in_chans"}).load_state_dict(
        convert(bare)["state_dict"], strict=True
    )
    with pytest.raises(ValueError, match="vis_mask_token"):
        convert({"state_dict": {**bare, "vis_mask_token": torch.zeros(1, 1, 64)}})
    with pytest.raises(ValueError, match="not an HPM checkpoint"):
        convert({"epoch": 3})
    # the CLI: the full state, and the encoder files of the model and of the EMA
    src = tmp_path / "hpm.pth"
    torch.save(checkpoint, src)
    assert convert_main([str(src), str(tmp_path / "full.pth")]) == 0
    assert convert_main([str(src), str(tmp_path / "enc.pth"), "--encoder-only"]) == 0
    assert convert_main([str(src), str(tmp_path / "ema.pth"), "--encoder-only", "--ema"]) == 0
    enc = torch.load(tmp_path / "enc.pth", weights_only=True)["state_dict"]
    ema = torch.load(tmp_path / "ema.pth", weights_only=True)["state_dict"]
    assert torch.equal(enc["cls_token"], bare["cls_token"])
    assert torch.equal(ema["cls_token"], checkpoint["ema_state_dict"]["cls_token"])
    assert encoder_file(checkpoint)["state_dict"].keys() == enc.keys()


def test_predicted_losses_stay_float32_and_tie_free_under_bf16_autocast(micro):
    """The hard set is a top-k of the predicted losses: a bf16 mean over the p*p*3 outputs would tie."""
    images = torch.randn(4, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        predicted = micro.predict_losses(images)
        losses = micro.loss(images, sample_ids=torch.arange(4))
    assert predicted.dtype == torch.float32
    assert all(len(row.unique()) == len(row) for row in predicted)
    assert all(torch.isfinite(v) for v in losses.values())
