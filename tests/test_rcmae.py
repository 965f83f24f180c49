"""RC-MAE against the official implementation (youngwanLEE/rc-mae), and its teacher mechanics."""

import pytest
import torch

import methods
from methods.masking import random_masking
from methods.rcmae.convert import convert, teacher_encoder
from methods.rcmae.convert import main as convert_main
from methods.rcmae.model import RCMAE
from tests.parity_helpers import converted_model, load_parity, max_state_error

TOL = 1e-5


@pytest.fixture(scope="module")
def official():
    return load_parity("rcmae")


def parity_model(official, **keys) -> RCMAE:
    gamma = official[1]["gamma"]
    return converted_model(RCMAE, convert, official, norm_pix_loss=True, gamma=gamma, **keys)


def state_error(model: RCMAE, official_state: dict, network: str) -> float:
    """Largest |ours - official| over one network ('student' or 'teacher') of the model."""
    converted = convert({"student": official_state, "teacher": official_state})["state_dict"]
    return max_state_error(model, converted, teacher=network == "teacher")


# ---- parity with the official code (fixture: tests/fixtures/generate_rcmae_parity.py) ------------------
def test_parity_losses_and_predictions(official):
    _, ref = official
    model = parity_model(official).eval()
    masking = random_masking(ref["noise"], ref["config"]["mask_ratio"])  # the official noise and order
    assert torch.equal(masking.mask, ref["mask"].bool())
    with torch.no_grad():
        losses = model.loss(ref["images"], mask=ref["mask"].bool())
        pred = model.forward_decoder(
            model.forward_encoder(ref["images"], masking.ids_keep), masking.ids_restore
        )
        pred_teacher = model.teacher_reconstruction(ref["images"], masking)
    assert list(losses) == ["loss_rec", "loss_cons"]
    assert abs(losses["loss_rec"].item() - ref["loss_rec"].item()) < TOL
    assert abs(losses["loss_cons"].item() - ref["loss_cons"].item()) < TOL
    assert abs(sum(losses.values()).item() - ref["loss_total"].item()) < TOL
    assert ref["loss_cons"].item() > 0.05  # the fixture's teacher differs from its student
    assert torch.allclose(pred, ref["pred_student"], atol=TOL, rtol=0)
    assert torch.allclose(pred_teacher, ref["pred_teacher"], atol=TOL, rtol=0)


def one_official_step(model: RCMAE, ref: dict) -> None:
    """One iteration as the fixture's official run: epoch 1 of 2, one iteration per epoch (global step 1),
    SGD at the fixture's lr, then the EMA."""
    model.train()
    model.set_progress(step=1, max_steps=ref["epochs"], epoch=ref["epoch"], max_epochs=ref["epochs"])
    losses = model.loss(ref["images"], mask=ref["mask"].bool())
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=ref["lr"])
    sum(losses.values()).backward()
    optimizer.step()
    model.after_train_step()


def test_parity_of_the_training_step_and_the_ema(official):
    _, ref = official
    model = parity_model(official)
    one_official_step(model, ref)
    assert state_error(model, ref["student_after"], "student") < TOL  # gradients of L_rec + L_cons
    assert state_error(model, ref["teacher_after"], "teacher") < TOL  # EMA with m = schedule[0]
    # the per-run ("paper") reading indexes the cosine with the global step: m = 0.998, another teacher
    paper = parity_model(official, momentum_schedule="paper")
    one_official_step(paper, ref)
    assert state_error(paper, ref["teacher_after"], "teacher") > 1e-4


def test_momentum_schedule_readings(official):
    _, ref = official
    schedule = ref["momentum_schedule"].tolist()  # the official cosine_scheduler(0.996, 1, 2 epochs, 1 it)
    code, paper = parity_model(official), parity_model(official, momentum_schedule="paper")
    for step in range(2):
        for model in (code, paper):
            model.set_progress(step=step, max_steps=2, epoch=step, max_epochs=2)
        assert code.momentum() == pytest.approx(schedule[0], abs=1e-12)  # reset every epoch
        assert paper.momentum() == pytest.approx(schedule[step], abs=1e-12)
    # 4 epochs of 10 steps: the code reading replays the first epoch's slice of the 40-step cosine
    code.set_progress(step=27, max_steps=40, epoch=2, max_epochs=4)
    paper.set_progress(step=7, max_steps=40, epoch=0, max_epochs=4)
    assert code.momentum() == paper.momentum() < 0.9975
    # at micro/tiny the harness sets the base from the budget's EMA rule
    code.teacher_momentum = 0.9
    code.set_progress(step=0, max_steps=40, epoch=0, max_epochs=4)
    assert code.momentum() == pytest.approx(0.9)
    with pytest.raises(ValueError, match="momentum_schedule"):
        parity_model(official, momentum_schedule="per-epoch")


# ---- conversion -----------------------------------------------------------------------------------------
def test_convert_accepts_ddp_prefixed_entries_and_rejects_unknown_keys(official, tmp_path):
    checkpoint, _ = official
    only_ddp = {"student": checkpoint["student"], "teacher": checkpoint["teacher"], "epoch": 0}
    assert all(k.startswith("module.") for k in checkpoint["student"])
    a, b = convert(checkpoint)["state_dict"], convert(only_ddp)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["encoder.cls_token"], a["teacher.module.encoder.cls_token"])  # two networks
    with pytest.raises(ValueError, match=r"head\.weight"):
        convert({**only_ddp, "teacher": {**checkpoint["teacher"], "head.weight": torch.zeros(1)}})
    with pytest.raises(ValueError, match="teacher"):
        convert({"student": checkpoint["student"]})
    src, dst = tmp_path / "checkpoint-0.pth", tmp_path / "enc.pth"
    torch.save(checkpoint, src)
    assert convert_main([str(src), str(dst), "--encoder-only"]) == 0
    enc = torch.load(dst, weights_only=True)
    assert torch.equal(enc["state_dict"]["cls_token"], teacher_encoder(checkpoint)["state_dict"]["cls_token"])
    assert torch.equal(enc["state_dict"]["cls_token"], checkpoint["teacher"]["cls_token"])


# ---- the teacher in our harness ---------------------------------------------------------------------------
@pytest.fixture()
def micro():
    torch.manual_seed(0)
    return methods.build("rcmae", "micro")


def test_teacher_starts_as_the_student_and_gets_no_gradient(micro):
    assert methods.method_config("rcmae") == {
        "gamma": 1.0,
        "momentum_teacher": 0.996,
        "momentum_schedule": "code",
    }
    student, teacher = micro.student().state_dict(), micro.teacher.module.state_dict()
    assert student.keys() == teacher.keys() and all(torch.equal(student[k], teacher[k]) for k in student)
    micro.train()
    assert not micro.teacher.training and micro.encoder.training
    losses = micro.loss(torch.randn(2, 3, 32, 32), sample_ids=torch.tensor([3, 8]))
    assert losses["loss_cons"].item() == 0.0  # identical networks, identical masks
    sum(losses.values()).backward()
    assert all(p.grad is None and not p.requires_grad for p in micro.teacher.parameters())
    assert micro.encoder.blocks[0].attn.qkv.weight.grad is not None


def test_ema_moves_the_teacher_by_the_documented_formula_and_export_is_the_teacher(micro):
    with torch.no_grad():
        for p in micro.student().parameters():
            p.add_(1.0)
    old = micro.teacher.module.encoder.cls_token.clone()
    micro.teacher_momentum = 0.9
    micro.set_progress(step=0, max_steps=10, epoch=0, max_epochs=1)
    micro.after_train_step()
    expected = 0.9 * old + 0.1 * micro.encoder.cls_token
    assert torch.allclose(micro.teacher.module.encoder.cls_token, expected, atol=1e-7)
    exported = micro.export_encoder_state()
    assert set(exported) == set(micro.encoder.state_dict())
    assert torch.equal(exported["cls_token"], micro.teacher.module.encoder.cls_token)
    assert not torch.equal(exported["cls_token"], micro.encoder.cls_token)
