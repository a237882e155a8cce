"""Optimiser: the release's four groups, LARC's formula, and the lr schedule at given steps."""
import math

import numpy as np

import pytest
import torch
from torch import nn

from crisscross_core.config import OptimConfig
from crisscross_core.optim import LARC, LEGACY_INITIAL_LR, LRSchedule, build_optimizer, param_groups


class FourPart(nn.Module):
    def __init__(self):
        super().__init__()
        for name in ("video_backbone", "video_projector", "video_predictor",
                     "audio_backbone", "audio_projector", "audio_predictor"):
            setattr(self, name, nn.Linear(3, 3))


def test_four_groups_cover_every_parameter_once():
    m = FourPart()
    groups = param_groups(m, OptimConfig())
    assert [g["name"] for g in groups] == ["video_base", "video_pred", "audio_base", "audio_pred"]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(m.parameters()))
    assert [g["lr"] for g in groups] == [2e-4, 2e-3, 2e-4, 2e-3]


def test_schedule_values_at_given_steps():
    cfg = OptimConfig(epochs=10, warmup_epochs=2, video_lr=2e-4, final_lr=1e-4)
    s = LRSchedule(cfg, steps_per_epoch=100, total_steps=1000)
    assert s.lr("video_base", 2e-4, 0) == 0.0
    assert s.lr("video_base", 2e-4, 100) == pytest.approx(1e-4 * 200 / 199)  # linspace(0, base, 200)
    assert s.lr("video_base", 2e-4, 199) == 2e-4                         # warm-up ends at the peak
    assert s.lr("video_base", 2e-4, 200) == pytest.approx(2e-4)          # cosine starts at the peak
    assert s.lr("video_base", 2e-4, 600) == pytest.approx(1.5e-4)        # cosine mid-point
    assert s.lr("video_base", 2e-4, 1000) == pytest.approx(1e-4)         # final lr, not 0
    assert s.lr("video_pred", 2e-3, 0) == s.lr("video_pred", 2e-3, 777) == 2e-3  # constant
    lrs = [s.lr("audio_base", 2e-4, k) for k in range(200, 1001)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))                      # monotone decay


def test_warmup_is_the_release_linspace_exactly():
    """The release's warm-up is numpy.linspace(0, base, W): step k at base·k/(W−1), bit for bit."""
    W, base = 200, 2e-4
    s = LRSchedule(OptimConfig(epochs=10, warmup_epochs=2), steps_per_epoch=100, total_steps=1000)
    release = np.linspace(0, base, W)
    assert [s.lr("video_base", base, k) for k in range(W)] == release.tolist()
    # with the release's off-by-one, step k runs at linspace[k-1] (step 0 at the builder's 1e-3)
    legacy = LRSchedule(OptimConfig(epochs=10, warmup_epochs=2, legacy_lr_offset=True), 100, 1000)
    assert legacy.lr("audio_base", base, 0) == LEGACY_INITIAL_LR
    assert [legacy.lr("audio_base", base, k) for k in range(1, W + 1)] == release.tolist()
    # base·k/W (the kit before) differs from the release by up to 1/W relative: that is what is pinned
    assert s.lr("video_base", base, 100) != base * 100 / W
    one = LRSchedule(OptimConfig(epochs=10, warmup_epochs=0.01), steps_per_epoch=100, total_steps=1000)
    assert one.warmup == 1 and one.lr("video_base", base, 0) == 0.0 == np.linspace(0, base, 1)[0]


def test_legacy_offset_reproduces_release():
    cfg = OptimConfig(epochs=10, warmup_epochs=2, legacy_lr_offset=True)
    fixed = LRSchedule(OptimConfig(epochs=10, warmup_epochs=2), 100, 1000)
    legacy = LRSchedule(cfg, 100, 1000)
    assert legacy.lr("video_base", 2e-4, 0) == LEGACY_INITIAL_LR
    assert legacy.lr("video_pred", 2e-3, 0) == LEGACY_INITIAL_LR
    for k in (1, 50, 201, 999):
        assert legacy.lr("video_base", 2e-4, k) == fixed.lr("video_base", 2e-4, k - 1)


def test_larc_rewrites_gradient_by_formula():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(10))
    g = torch.randn(10) * 50  # large gradient: the clip factor is active
    inner = torch.optim.SGD([{"params": [w], "lr": 2e-4, "weight_decay": 1e-4}], lr=2e-4)
    opt = LARC(inner, trust=1e-3, clip=True)
    w0 = w.detach().clone()
    w.grad = g.clone()
    opt.step()
    wn, gn = w0.norm(), g.norm()
    local = 1e-3 * wn / (gn + 1e-4 * wn + 1e-8)
    factor = min(local / 2e-4, 1.0)
    expected = w0 - 2e-4 * (g + 1e-4 * w0) * factor
    assert factor < 1
    torch.testing.assert_close(w.detach(), expected)
    assert inner.param_groups[0]["weight_decay"] == 1e-4  # restored after the step


def test_larc_small_gradient_is_plain_l2():
    w = nn.Parameter(torch.ones(4) * 3)
    inner = torch.optim.SGD([{"params": [w], "lr": 1e-2, "weight_decay": 0.1}], lr=1e-2)
    w.grad = torch.full((4,), 1e-3)
    LARC(inner, trust=1e-3).step()
    torch.testing.assert_close(w.detach(), torch.full((4,), 3 - 1e-2 * (1e-3 + 0.3)))


def test_larc_at_lr_zero_still_feeds_adam_the_decayed_gradient():
    """First warm-up step (lr = 0): min(local / 0, 1) = 1, so Adam's moments see g + wd·w, as in the
    formula; the weights do not move."""
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(6))
    g = torch.randn(6) * 50
    inner = torch.optim.Adam([{"params": [w], "lr": 0.0, "weight_decay": 1e-2}], betas=(0.9, 0.999))
    w0 = w.detach().clone()
    w.grad = g.clone()
    LARC(inner, trust=1e-3, clip=True).step()
    torch.testing.assert_close(w.detach(), w0)
    torch.testing.assert_close(inner.state[w]["exp_avg"], 0.1 * (g + 1e-2 * w0))


def test_adamw_variant_excludes_bn_and_bias_from_decay():
    m = FourPart()
    groups = param_groups(m, OptimConfig(name="adamw"))
    for g in groups:
        for p in g["params"]:
            assert (g["weight_decay"] == 0) == (p.ndim <= 1)
    opt = build_optimizer(m, OptimConfig(name="adamw"), torch.device("cpu"))
    assert isinstance(opt, torch.optim.AdamW)


def test_larc_adam_state_dict_round_trip():
    m = FourPart()
    opt = build_optimizer(m, OptimConfig(), torch.device("cpu"))
    for p in m.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    sd = opt.state_dict()
    opt2 = build_optimizer(FourPart(), OptimConfig(), torch.device("cpu"))
    opt2.load_state_dict(sd)
    assert math.isclose(opt2.param_groups[0]["lr"], 2e-4)
    assert len(opt2.state_dict()["state"]) == len(sd["state"])


def test_larc_lr_changes_reach_the_inner_optimiser_after_load_state_dict():
    """Regression: a resumed LARC must not set lrs on a stale copy of the groups."""
    m = FourPart()
    opt = build_optimizer(m, OptimConfig(), torch.device("cpu"))
    for p in m.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    fresh = build_optimizer(m, OptimConfig(), torch.device("cpu"))
    fresh.load_state_dict(opt.state_dict())
    fresh.param_groups[0]["lr"] = 0.123
    assert fresh.inner.param_groups[0]["lr"] == 0.123
