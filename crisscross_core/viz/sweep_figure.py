"""The comparison figure of a sweep: one bar per setting, grouped, error bars = std over seeds; one
panel per readout.

    fig = sweep_figure([(sweep.summary("knn_video", ["data.relation", "loss.asynchronous"]), "knn_video", 1 / 12)],
                       "data.relation", "loss.asynchronous")
"""
from __future__ import annotations

from typing import Optional, Sequence


def sweep_figure(panels: Sequence[tuple], x: str, hue: Optional[str] = None, title: str = "",
                 order: Optional[Sequence[str]] = None):
    """panels: [(summary rows ({x, hue, mean, std, n}), metric, chance or None)], drawn side by side
    with a shared legend; the value of each bar is printed on it. chance: the metric's chance level
    (e.g. 1/classes for kNN top-1), a dashed line so that a bar at chance is not read as a result.
    order: the x values left to right (default: sorted); error bars only where a std exists (n > 1)."""
    from matplotlib.figure import Figure
    present = {str(r[x]) for summary, _, _ in panels for r in summary}
    order = [str(v) for v in order or []]
    xs = [v for v in order if v in present] + sorted(present - set(order))
    hues = sorted({str(r[hue]) for summary, _, _ in panels for r in summary}) if hue else [""]
    per_panel = max(4.0, 0.6 * len(xs) * max(1, len(hues)) + 1.0)
    fig = Figure(figsize=(per_panel * len(panels) + 1.5, 3.8), dpi=100)
    for i, (summary, metric, chance) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        _bars(ax, summary, metric, x, hue, xs, hues, chance)
        if len(panels) > 1:
            ax.set_title(metric, fontsize=10)
        else:
            ax.set_title(title or f"{metric} by {x}" + (f" and {hue}" if hue else ""))
    if len(panels) > 1 and title:
        fig.suptitle(title, fontsize=10)
    last = fig.axes[-1]
    if hue or any(c is not None for _, _, c in panels):
        last.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def _bars(ax, summary, metric: str, x: str, hue: Optional[str], xs: list, hues: list, chance) -> None:
    width = 0.8 / len(hues)
    for j, h in enumerate(hues):
        rows = {str(r[x]): r for r in summary if not hue or str(r[hue]) == h}
        pos = [i + (j - (len(hues) - 1) / 2) * width for i in range(len(xs))]
        means = [rows[v]["mean"] if v in rows else float("nan") for v in xs]
        errs = [rows[v]["std"] or 0.0 if v in rows else 0.0 for v in xs]
        bars = ax.bar(pos, means, width * 0.92, yerr=errs if any(errs) else None, capsize=3, color=f"C{j}",
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
    ax.margins(y=0.25)
    ax.grid(axis="y", alpha=0.3)
