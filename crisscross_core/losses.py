"""CrissCross loss: symmetric negative cosine with stop-gradient over six relations (docs/method.md §4).

    out = model(v1, v2, a1, a2)                   # dict zv1..za2, pv1..pa2, each [B, D]
    total, terms = crisscross_loss(out, LossConfig())
    # terms: Lv1v2, La1a2 (intra), Lv1a1, Lv2a2 (sync), Lv1a2, La1v2 (async); only enabled ones

L_xy = ½·D(p_x, z_y) + ½·D(p_y, z_x); total = Σ coeff·L / N, N = number of enabled terms.
`pre_norm` lives in the model (it normalises z before the predictor and as target).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# (term name, view x, view y, coefficient field) per group flag of LossConfig
GROUPS = {
    "intra": (("Lv1v2", "v1", "v2", "vid_coeff"), ("La1a2", "a1", "a2", "aud_coeff")),
    "sync": (("Lv1a1", "v1", "a1", "cm_coeff"), ("Lv2a2", "v2", "a2", "cm_coeff")),
    "asynchronous": (("Lv1a2", "v1", "a2", "ct_coeff"), ("La1v2", "a1", "v2", "ct_coeff")),
}
TERMS = tuple(t[0] for group in GROUPS.values() for t in group)


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """D(p, z) = -mean_b cos(p_b, stopgrad(z_b)) for `[B, D]` inputs; a scalar in [-1, 1].
    Computed in fp32 even under autocast."""
    with torch.autocast(device_type=p.device.type, enabled=False):
        return -F.cosine_similarity(p.float(), z.detach().float(), dim=-1).mean()


def pair_loss(out: dict, x: str, y: str) -> torch.Tensor:
    """Symmetrised ½·D(p_x, z_y) + ½·D(p_y, z_x) for view names like 'v1', 'a2'."""
    return 0.5 * negative_cosine(out["p" + x], out["z" + y]) + 0.5 * negative_cosine(out["p" + y], out["z" + x])


def crisscross_loss(out: dict, cfg) -> tuple[torch.Tensor, dict]:
    """Total loss and the enabled terms `{name: scalar tensor}` (graph kept; detach to log).

    `cfg` is a `crisscross_core.config.LossConfig` (flags intra / sync / asynchronous and
    vid_coeff, aud_coeff, cm_coeff, ct_coeff). Raises ValueError when no group is enabled.
    """
    terms, weighted = {}, []
    for flag, group in GROUPS.items():
        if not getattr(cfg, flag):
            continue
        for name, x, y, coeff in group:
            terms[name] = pair_loss(out, x, y)
            weighted.append(getattr(cfg, coeff) * terms[name])
    if not terms:
        raise ValueError("crisscross_loss: no loss group enabled; set at least one of "
                         "loss.intra, loss.sync, loss.asynchronous to true")
    return torch.stack(weighted).sum() / len(terms), terms
