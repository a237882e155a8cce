"""Figures of the downstream result tables (mean ± spread per protocol, beside the paper)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def spread_values(record: dict) -> list:
    """Per-fold / per-split / per-seed numbers (fractions) inside a result record, [] if none."""
    res = record.get("result", {})
    for key in ("per_fold", "per_split", "per_seed"):
        vals = res.get(key)
        if isinstance(vals, dict):
            vals = list(vals.values())
        if vals:
            out = []
            for v in vals:
                v = v.get("acc", v.get("top1", v.get("mean"))) if isinstance(v, dict) else v
                if isinstance(v, (int, float)):
                    out.append(float(v))
            if out:
                return out
    return []


def results_figure(records: Sequence[dict], title: str = "downstream results"):
    """Bars of each record's mean (%) with ±std, its per-fold / per-split points, and the paper's
    number for the same dataset and pretraining as a marker (evaluate.results.PAPER). Returns a Figure."""
    import matplotlib.pyplot as plt
    from crisscross_core.evaluate.results import PAPER
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(records) + 2), 3.8))
    x = np.arange(len(records))
    names, paper_drawn = [], False
    for i, r in enumerate(records):
        ax.bar(i, 100 * r["mean"], yerr=100 * (r.get("std") or 0.0), capsize=4, color="tab:blue", alpha=0.75)
        pts = spread_values(r)
        if pts:
            jitter = np.linspace(-0.18, 0.18, len(pts)) if len(pts) > 1 else np.zeros(1)
            ax.scatter(i + jitter, 100 * np.asarray(pts), s=12, color="black", zorder=3)
        paper = PAPER.get(r.get("pretrain") or "", {}).get(r["dataset"])
        if paper is not None:
            ax.scatter([i], [paper], marker="*", s=160, color="tab:red", zorder=4,
                       label=None if paper_drawn else "paper")
            paper_drawn = True
        names.append(f"{r['dataset']}\n{r['protocol']}" + (f"\n{r['label']}" if r.get("label") else ""))
    ax.set_xticks(x, names, fontsize=7)
    ax.set_ylabel("top-1 / R@1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if paper_drawn:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
