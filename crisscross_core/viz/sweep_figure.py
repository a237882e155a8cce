"""The comparison figure of a sweep: one bar per setting, grouped, error bars = std over seeds.

    fig = sweep_figure(sweep.summary("knn_video", ["data.relation", "loss.asynchronous"]),
                       "knn_video", "data.relation", "loss.asynchronous")
"""
from __future__ import annotations

from typing import Optional, Sequence


def sweep_figure(summary: Sequence[dict], metric: str, x: str, hue: Optional[str] = None, title: str = "",
                 chance: Optional[float] = None):
    """Bars of summary rows ({x, hue, mean, std, n}); the value of each bar is printed on it. `chance`:
    the metric's chance level (e.g. 1/classes for kNN top-1), drawn as a dashed line so that a bar at
    chance is not read as a result."""
    from matplotlib.figure import Figure
    xs = sorted({str(r[x]) for r in summary})
    hues = sorted({str(r[hue]) for r in summary}) if hue else [""]
    fig = Figure(figsize=(max(5.0, 1.2 * len(xs) * max(1, len(hues)) + 1.5), 3.8), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(hues)
    for j, h in enumerate(hues):
        rows = {str(r[x]): r for r in summary if not hue or str(r[hue]) == h}
        pos = [i + (j - (len(hues) - 1) / 2) * width for i in range(len(xs))]
        means = [rows[v]["mean"] if v in rows else float("nan") for v in xs]
        errs = [rows[v]["std"] or 0.0 if v in rows else 0.0 for v in xs]
        bars = ax.bar(pos, means, width * 0.92, yerr=errs, capsize=3,
                      label=f"{hue.split('.')[-1]}={h}" if hue else None)
        for b, v in zip(bars, xs):
            if v in rows:
                r = rows[v]
                ax.annotate(f"{r['mean']:.3f}" + (f"\n±{r['std']:.3f}" if r["std"] is not None else "")
                            + f"\nn={r['n']}", (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    if chance is not None:
        ax.axhline(chance, color="0.3", ls="--", lw=1, label=f"chance ({chance:.3g})")
    ax.set_xticks(range(len(xs)))
    ax.set_xticklabels(xs, rotation=15)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} by {x}" + (f" and {hue}" if hue else ""))
    ax.margins(y=0.25)
    if hue or chance is not None:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
