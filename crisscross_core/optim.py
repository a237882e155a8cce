"""Optimisation as released (docs/method.md §7): four parameter groups, Adam wrapped in LARC, warm-up + cosine.

Groups: ``video_base`` (video backbone + projector), ``video_pred``, ``audio_base``, ``audio_pred``.
The base groups follow the release's linear warm-up ``linspace(0, base, W)`` over the first W steps
(step k at base·k/(W−1), so the last warm-up step already runs at base), then a half cosine from
base to ``final_lr``; the predictor groups keep a constant lr. The release's off-by-one (iteration k runs at schedule[k-1], iteration 0
at 1e-3) is available with ``legacy_lr_offset``; by default the lr of step k is schedule[k].
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import OptimConfig

GROUPS = ("video_base", "video_pred", "audio_base", "audio_pred")
LEGACY_INITIAL_LR = 1e-3  # the release builds its optimiser with this lr for every group


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """The four groups of the release, with base lrs and per-group weight decay."""
    m = getattr(model, "module", model)
    members = {
        "video_base": [*m.video_backbone.parameters(), *m.video_projector.parameters()],
        "video_pred": list(m.video_predictor.parameters()),
        "audio_base": [*m.audio_backbone.parameters(), *m.audio_projector.parameters()],
        "audio_pred": list(m.audio_predictor.parameters()),
    }
    base_lr = {"video_base": cfg.video_lr, "video_pred": cfg.video_pred_lr,
               "audio_base": cfg.audio_lr, "audio_pred": cfg.audio_pred_lr}
    groups = []
    for name in GROUPS:
        params = [p for p in members[name] if p.requires_grad]
        if cfg.name == "adamw":  # modern variant: no decay on BN weights and biases
            decay = [p for p in params if p.ndim > 1]
            no_decay = [p for p in params if p.ndim <= 1]
            groups.append(dict(name=name, params=decay, lr=base_lr[name], base_lr=base_lr[name],
                               weight_decay=cfg.weight_decay))
            groups.append(dict(name=name + "_no_decay", params=no_decay, lr=base_lr[name],
                               base_lr=base_lr[name], weight_decay=0.0))
        else:
            groups.append(dict(name=name, params=params, lr=base_lr[name], base_lr=base_lr[name],
                               weight_decay=cfg.weight_decay))
    return groups


class LARC(torch.optim.Optimizer):
    """LARC in clip mode around an inner optimiser (docs/method.md §7), written from its formula.

    Per parameter tensor w with gradient g, in a group with lr and weight decay wd:
    local = trust·‖w‖ / (‖g‖ + wd·‖w‖ + eps); factor = min(local / lr, 1) (clip mode; 1 at lr = 0);
    g ← (g + wd·w)·factor when ‖w‖ > 0 and ‖g‖ > 0; then the inner step runs with its own
    weight decay set to 0. No host synchronisation: norms stay on the device.
    """

    def __init__(self, inner: torch.optim.Optimizer, trust: float = 1e-3, clip: bool = True,
                 eps: float = 1e-8):
        self.inner, self.trust, self.clip, self.eps = inner, trust, clip, eps
        self.defaults = inner.defaults

    # Delegate, never copy: the inner optimiser's load_state_dict() replaces its group list.
    @property
    def param_groups(self):
        return self.inner.param_groups

    @property
    def state(self):
        return self.inner.state

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state_dict):
        self.inner.load_state_dict(state_dict)

    def zero_grad(self, set_to_none: bool = True):
        self.inner.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure=None):
        saved_wd = []
        for group in self.param_groups:
            wd, lr = group["weight_decay"], group["lr"]
            saved_wd.append(wd)
            group["weight_decay"] = 0.0
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            w_norm = torch.stack(torch._foreach_norm(params))
            g_norm = torch.stack(torch._foreach_norm(grads))
            local = self.trust * w_norm / (g_norm + wd * w_norm + self.eps)
            if not self.clip:
                factor = local
            elif lr > 0:
                factor = torch.clamp(local / lr, max=1.0)
            else:  # lr = 0 (first warm-up step): min(local / 0, 1) = 1, as in the formula
                factor = torch.ones_like(local)
            active = (w_norm > 0) & (g_norm > 0)
            factor = torch.where(active, factor, torch.ones_like(factor))
            decay = torch.where(active, torch.full_like(factor, wd), torch.zeros_like(factor))
            for p, g, f, d in zip(params, grads, factor.unbind(), decay.unbind()):
                g.add_(p * d).mul_(f)
        try:
            return self.inner.step(closure)
        finally:
            for group, wd in zip(self.param_groups, saved_wd):
                group["weight_decay"] = wd


def build_optimizer(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam in LARC (the release) or AdamW without decay on BN/bias; fused kernels on CUDA."""
    groups = param_groups(model, cfg)
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, betas=cfg.betas, **fast)
    inner = torch.optim.Adam(groups, betas=cfg.betas, eps=1e-8, weight_decay=0.0, **fast)
    return LARC(inner, trust=cfg.larc_trust, clip=cfg.larc_clip)


class LRSchedule:
    """Per-iteration lr of each group: warm-up 0→base, half cosine base→final; predictors constant."""

    def __init__(self, cfg: OptimConfig, steps_per_epoch: int, total_steps: int):
        self.cfg = cfg
        self.warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
        self.total = max(total_steps, self.warmup + 1)

    def base_factor(self, step: int, base_lr: float) -> float:
        """lr of a base group at `step` (0-based): base·k/(W−1) during the W warm-up steps (the
        release's ``linspace(0, base, W)``; 0 when W = 1), then final + (base − final)·½(1 + cos πt)
        with t = (step − W)/(total − W)."""
        if step < self.warmup:          # numpy's linspace arithmetic: k·(base/(W−1)), last = base
            if step == self.warmup - 1:
                return float(base_lr) if self.warmup > 1 else 0.0
            return step * (base_lr / (self.warmup - 1))
        t = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        final = self.cfg.final_lr
        return final + (base_lr - final) * 0.5 * (1.0 + math.cos(math.pi * t))

    def lr(self, group_name: str, base_lr: float, step: int) -> float:
        """The lr a group uses for the update of `step`; honours ``legacy_lr_offset``."""
        if self.cfg.legacy_lr_offset:
            if step == 0:
                return LEGACY_INITIAL_LR
            step -= 1
        if group_name.startswith(("video_pred", "audio_pred")):
            return base_lr
        return self.base_factor(step, base_lr)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> dict[str, float]:
        """Set every group's lr for `step`; returns {group name: lr}."""
        lrs = {}
        for group in optimizer.param_groups:
            group["lr"] = self.lr(group["name"], group["base_lr"], step)
            lrs[group["name"]] = group["lr"]
        return lrs
