"""EMA teachers: the formula's direction, freezing, schedules and the small-budget rule."""

import itertools
import math

import pytest
import torch
import torch.nn as nn

from methods.backbone import ARCHS
from methods.ema import (
    EMATeacher,
    Networks,
    cosine_momentum,
    ema_update,
    momentum_from_half_life,
    small_budget_momentum,
)
from methods.mae.model import MAE


def _filled(value: float) -> nn.Module:
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)
    return net


def test_ema_weights_the_old_teacher_by_m():
    teacher, student = _filled(0.0), _filled(1.0)
    ema_update(teacher, student, 0.9)  # teacher = 0.9 * 0 + 0.1 * 1
    for p in teacher.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.1))
    ema_update(teacher, student, 1.0)  # m = 1: the teacher does not move
    assert torch.allclose(teacher[0].weight, torch.full((2, 3), 0.1))
    ema_update(teacher, student, 0.0)  # m = 0: the teacher becomes the student
    assert torch.equal(teacher[0].weight, student[0].weight)


def test_ema_copies_buffers_and_rejects_mismatched_modules():
    teacher, student = _filled(0.0), _filled(1.0)
    student[1].running_mean.fill_(5.0)
    ema_update(teacher, student, 0.5)
    assert torch.equal(teacher[1].running_mean, student[1].running_mean)
    with pytest.raises(ValueError, match="differ"):
        ema_update(nn.Linear(3, 2), nn.Linear(3, 2, bias=False), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ema_update(teacher, student, 1.5)


def test_ema_teacher_is_frozen_and_stays_in_eval():
    student = _filled(1.0)
    parent = nn.Module()
    parent.student, parent.teacher = student, EMATeacher(student)
    parent.train()
    assert student.training and not parent.teacher.training and not parent.teacher.module.training
    assert not any(p.requires_grad for p in parent.teacher.parameters())
    with torch.no_grad():
        student[0].weight.fill_(3.0)
    assert torch.equal(parent.teacher.module[0].weight, torch.ones(2, 3))  # a copy, not an alias
    parent.teacher.update(student, 0.5)
    assert torch.allclose(parent.teacher.module[0].weight, torch.full((2, 3), 2.0))


def test_gradients_reach_every_trainable_parameter_and_never_the_teacher():
    class MAEWithTeacher(MAE):  # a consistency target from an EMA copy of the encoder, as RC-MAE-like methods
        def __init__(self, **arch):
            super().__init__(**arch)
            self.teacher = EMATeacher(self.encoder)

        def loss(self, images, mask=None, sample_ids=None):
            masking = self.masking(images, mask, sample_ids)
            latent = self.forward_encoder(images, masking.ids_keep)
            target = self.teacher.module.forward_visible(images, masking.ids_keep)
            pred = self.forward_decoder(latent, masking.ids_restore)
            return {
                "loss_rec": self.forward_loss(images, pred, masking.mask),
                "loss_cons": ((latent - target) ** 2).mean(),
            }

    torch.manual_seed(0)
    model = MAEWithTeacher(**ARCHS["micro"])
    with torch.no_grad():  # make the teacher differ from the student so loss_cons has a gradient
        for p in model.teacher.parameters():
            p.add_(0.01)
    losses = model.loss(torch.randn(2, 3, 32, 32))
    sum(losses.values()).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith("teacher.") for n in trainable)
    for name, p in trainable.items():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, name
    groups = model.param_groups_for_weight_decay(0.05)
    assert not {id(p) for p in model.teacher.parameters()} & {id(p) for g in groups for p in g["params"]}


def test_the_base_class_moves_the_declared_ema_copy_and_exports_its_encoder():
    class MAEWithMeanTeacher(MAE):  # the shared mechanism: ema(), momentum(), exports_ema
        exports_ema = True

        def __init__(self, **arch):
            super().__init__(**arch)
            self.teacher = EMATeacher(self.student())

        def student(self):
            return Networks(encoder=self.encoder, decoder=self.decoder)

        def ema(self):
            return self.teacher, self.student()

        def momentum(self):
            return self.budget_momentum(0.75)

    torch.manual_seed(0)
    model = MAEWithMeanTeacher(**ARCHS["micro"])
    # a view under the teacher's names, holding nothing of its own
    assert set(model.student().state_dict()) == set(model.teacher.module.state_dict())
    with torch.no_grad():
        model.encoder.cls_token.add_(1.0)
    old = model.teacher.module.encoder.cls_token.clone()
    model.after_train_step()  # m = 0.75, the paper's value: the harness set no teacher_momentum
    expected = 0.75 * old + 0.25 * model.encoder.cls_token
    assert torch.allclose(model.teacher.module.encoder.cls_token, expected, atol=1e-7)
    model.teacher_momentum = 0.5
    assert model.momentum() == 0.5
    exported = model.export_encoder_state()
    assert set(exported) == set(model.encoder.state_dict())
    assert torch.equal(exported["cls_token"], model.teacher.module.encoder.cls_token)
    # a method without an EMA copy: after_train_step moves nothing, the trained encoder is exported
    plain = MAE(**ARCHS["micro"])
    assert plain.ema() is None
    plain.after_train_step()
    assert torch.equal(plain.export_encoder_state()["cls_token"], plain.encoder.cls_token)


def test_cosine_schedule_runs_from_base_to_one():
    assert cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert cosine_momentum(50, 100, 0.996) == pytest.approx(0.998)
    assert cosine_momentum(100, 100, 0.996) == pytest.approx(1.0)
    values = [cosine_momentum(s, 100, 0.99) for s in range(101)]
    assert all(a <= b for a, b in itertools.pairwise(values))


def test_half_life_math():
    m = momentum_from_half_life(25)
    assert m**25 == pytest.approx(0.5)
    assert math.log(0.5) / math.log(m) == pytest.approx(25)
    # an EMA of a constant student: after one half-life, half the distance is covered
    teacher, student = _filled(0.0), _filled(1.0)
    for _ in range(25):
        ema_update(teacher, student, m)
    assert teacher[0].weight.mean().item() == pytest.approx(0.5, abs=1e-5)


def test_small_budget_rule_is_never_slower_than_the_paper():
    # micro: 100 steps, half-life a tenth of the run -> much faster than 0.996 (half-life ~173 steps)
    m = small_budget_momentum(0.996, total_steps=100, half_life_fraction=0.1)
    assert m < 0.996 and m**10 == pytest.approx(0.5)
    # a long run keeps the paper's value
    assert small_budget_momentum(0.996, total_steps=1_000_000, half_life_fraction=0.1) == 0.996
