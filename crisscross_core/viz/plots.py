"""Matplotlib figures shared by the demo report and the notebooks. Each returns a Figure."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..runlog import series

TERMS = ("Lv1v2", "La1a2", "Lv1a1", "Lv2a2", "Lv1a2", "La1v2")
TERM_GROUP = {"Lv1v2": "intra", "La1a2": "intra", "Lv1a1": "sync", "Lv2a2": "sync",
              "Lv1a2": "async", "La1v2": "async"}


def _plt():
    import matplotlib
    if matplotlib.get_backend().lower() in ("", "agg") or not _in_notebook():
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
        return get_ipython() is not None
    except Exception:
        return False


def loss_curves(records: list[dict], ax=None, title: str = "pretraining loss"):
    """Total loss and the six terms (−1 is perfect agreement) against the step."""
    plt = _plt()
    fig = ax.figure if ax is not None else plt.figure(figsize=(9, 4))
    ax = ax or fig.add_subplot(111)
    steps, total = series(records, "loss")
    ax.plot(steps, total, color="black", lw=2.2, label="total")
    styles = {"intra": "-", "sync": "--", "async": ":"}
    for term in TERMS:
        s, v = series(records, term)
        if s:
            ax.plot(s, v, styles[TERM_GROUP[term]], lw=1.2, label=f"{term} ({TERM_GROUP[term]})")
    ax.set_xlabel("step")
    ax.set_ylabel("negative cosine")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)   # beside, not over
    fig.tight_layout()
    return fig


def online_curves(evals: list[dict], title: str = "online evaluation (held-out clips)"):
    """The online evaluations of a run (metrics.jsonl records of kind "eval") against the step: kNN
    top-1 per modality and cross-modal R@1 (%, chance dotted) on the left; the sync and async
    cosines of p_a with z_v and their gap on the right."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    n = evals[-1]["n_items"] if evals else 0
    for key, label, style in (("knn_video", "kNN top-1 video", "-o"), ("knn_audio", "kNN top-1 audio", "-s"),
                              ("r1_a2v", "R@1 audio→video", "--^"), ("r1_v2a", "R@1 video→audio", "--v")):
        s, v = series(evals, key)
        if s:
            ax1.plot(s, [100 * x for x in v], style, ms=4, lw=1.4, label=label)
    s, v = series(evals, "chance_r1")
    if s:
        ax1.plot(s, [100 * x for x in v], ":", color="grey", lw=1, label="R@1 chance")
    ax1.set_xlabel("step")
    ax1.set_ylabel("% of held-out clips")
    ax1.set_title(f"{title}, {n} clips", fontsize=10)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    for key, label, style in (("sync_cos", "cos(p_a, z_v), same snippet", "-o"),
                              ("async_cos", "cos(p_a, z_v), apart (relation)", "-s"),
                              ("sync_gap", "gap: sync − async", "-k")):
        s, v = series(evals, key)
        if s:
            ax2.plot(s, v, style, ms=4, lw=1.4, label=label)
    ax2.axhline(0, color="grey", lw=0.8)
    ax2.set_xlabel("step")
    ax2.set_ylabel("mean cosine")
    ax2.set_title("synchronous vs asynchronous pairs", fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def collapse_curves(records: list[dict], title: str = "collapse monitors"):
    """Embedding std (→ 0: collapse to a point) and effective rank (→ 1: collapse onto a line) of
    the projections z per modality, against the step."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for key, colour in (("v", "tab:blue"), ("a", "tab:orange")):
        name = {"v": "video", "a": "audio"}[key]
        for ax, metric in ((a1, "std"), (a2, "rank")):
            s, v = series(records, f"{metric}_{key}")
            if s:
                ax.plot(s, v, color=colour, label=name)
    a1.set_ylabel("std of normalised z × √d")
    a2.set_ylabel("effective rank of z (batch)")
    ranks = [v for key in ("v", "a") for v in series(records, f"rank_{key}")[1] if v and v > 0]
    if ranks and max(ranks) / min(ranks) >= 10:      # a decade or more: log scale, plain tick labels
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
        a2.set_yscale("log")
        a2.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        a2.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))   # 7, 20, 50 -- not 7×10⁰
        a2.yaxis.set_minor_formatter(NullFormatter())
    for ax in (a1, a2):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def grouped_bars(groups: dict[str, dict[str, float]], ylabel: str, title: str, chance: float | None = None,
                 percent: bool = True):
    """Bars per group (e.g. {"video probe": {"random init": .2, "pretrained": .6}}) of fractions in [0, 1],
    shown in % with one decimal (as the README and reports speak: 0.005 is "0.5", 0.995 is "99.5")."""
    plt = _plt()
    scale = 100.0 if percent else 1.0
    groups = {g: {s: v * scale for s, v in d.items()} for g, d in groups.items()}
    chance = None if chance is None else chance * scale
    ylabel = f"{ylabel} (%)" if percent else ylabel
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    names = list(groups)
    series_names = sorted({k for g in groups.values() for k in g}, key=lambda s: (s != "random init", s))
    width = 0.8 / max(1, len(series_names))
    x = np.arange(len(names))
    for i, sname in enumerate(series_names):
        vals = [groups[n].get(sname, np.nan) for n in names]
        bars = ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=sname)
        ax.bar_label(bars, fmt="%.1f" if percent else "%.3g", fontsize=7)
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance ({chance:.3g}{'%' if percent else ''})")
    ax.set_xticks(x, names)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def scatter_2d(xy: np.ndarray, labels: Sequence, title: str, markers: Sequence | None = None, ax=None):
    """A 2-D embedding (e.g. UMAP) coloured by label; optional second grouping by marker."""
    plt = _plt()
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.5, 4.5))
    ax = ax or fig.add_subplot(111)
    labels = np.asarray(labels)
    marker_of = {}
    if markers is not None:
        markers = np.asarray(markers)
        marker_of = {m: s for m, s in zip(sorted(set(markers.tolist())), "o^sPDv*X")}
    # tab10's ten distinct colours; past ten labels the colours repeat with another marker shape (tab20's
    # light/dark pairs made neighbouring classes look alike)
    cmap = plt.get_cmap("tab10")
    for i, lab in enumerate(sorted(set(labels.tolist()))):
        sel = labels == lab
        if markers is None:
            ax.scatter(xy[sel, 0], xy[sel, 1], s=12, color=cmap(i % 10), marker="o^sD*"[(i // 10) % 5],
                       label=str(lab))
        else:
            for m, shape in marker_of.items():
                s2 = sel & (markers == m)
                ax.scatter(xy[s2, 0], xy[s2, 1], s=14, marker=shape, color=cmap(i % 10),
                           label=f"{lab}" if m == next(iter(marker_of)) else None)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=1.2, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def umap_2d(features: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """UMAP of L2-normalised features to 2-D (cosine metric). `features`: [N, D] → [N, 2]."""
    import umap
    x = features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-8)
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(x) - 1), min_dist=0.1, metric="cosine",
                        random_state=seed)
    return reducer.fit_transform(x)
