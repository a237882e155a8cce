"""The embedding explorer: a 2-D map (UMAP) of per-window features; a point shows its frames and audio.

    ps = embedding_points(feats, items, clip_duration, windows)
    ex = EmbeddingExplorer(ps, items)          # ex.point.value = 3 → frames + audio of that window
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .media import figure_png, frame_strip, load_preview, png_bytes, wav_bytes
from .shown import Shown

@dataclass
class PointSet:
    """Points of one 2-D map: xy `[M, 2]`; per point its item index, modality, window start (s), label."""
    xy: np.ndarray
    item: np.ndarray
    modality: np.ndarray
    offset: np.ndarray
    label: np.ndarray


def window_offsets(feats, items, clip_duration: float, windows: int) -> np.ndarray:
    """Start time (s) of each feature row's window: evaluate.media.dense_starts over the item's duration."""
    from crisscross_core.evaluate.media import dense_starts, media_duration
    by_rid = {it.rid: it for it in items}
    cache: dict = {}
    out = np.zeros(len(feats.rid), np.float32)
    for j, (rid, w) in enumerate(zip(feats.rid.tolist(), feats.window.tolist())):
        if rid not in cache:
            it = by_rid[rid]
            cache[rid] = dense_starts(it.duration or media_duration(it.path), clip_duration, windows)
        out[j] = cache[rid][min(w, len(cache[rid]) - 1)]
    return out


def embedding_points(feats: dict, items, clip_duration: dict, windows: int, reducer: Optional[Callable] = None,
                     seed: int = 0, joint: Optional[dict] = None) -> dict:
    """2-D maps of per-window features: {"video": PointSet, "audio": PointSet, "joint": PointSet}.

    feats: {"video": Features, "audio": Features} (dense windows, e.g. the backbone features "h" of
    demo.embed_split). "joint" stacks both modalities' L2-normalised points in one map, taken from
    `joint` (same layout; e.g. the projections "z", the space the cross-modal terms align) or else from
    `feats` (needs equal widths); colouring it by modality shows how well the two are aligned.
    reducer: `[N, D] → [N, 2]` (default viz.plots.umap_2d).
    """
    import warnings
    from .plots import umap_2d

    def _umap(x):
        with warnings.catch_warnings():   # "n_jobs overridden by random_state": expected, seeded on purpose
            warnings.filterwarnings("ignore", message=".*n_jobs value.*", category=UserWarning)
            return umap_2d(x, seed=seed, n_neighbors=15)
    reducer = reducer or _umap
    index = {it.rid: i for i, it in enumerate(items)}
    names = np.array([it.label_name or "?" for it in items], dtype=object)

    def parts_of(fs: dict) -> dict:
        out = {}
        for mod, f in fs.items():
            item = np.array([index[r] for r in f.rid.tolist()], np.int64)
            off = window_offsets(f, items, clip_duration[mod], windows)
            x = f.x / (np.linalg.norm(f.x, axis=1, keepdims=True) + 1e-8)
            out[mod] = (x, item, np.array([mod] * len(item), dtype=object), off, names[item])
        return out
    parts = parts_of(feats)
    out = {mod: PointSet(reducer(x), item, m, off, lab) for mod, (x, item, m, off, lab) in parts.items()}
    jparts = parts_of(joint) if joint else parts
    if len(jparts) == 2 and len({p[0].shape[1] for p in jparts.values()}) == 1:
        cat = [np.concatenate(z) for z in zip(*jparts.values())]
        out["joint"] = PointSet(reducer(cat[0]), *cat[1:])
    return out


def scatter_figure(ps: PointSet, colour_by: str = "label", selected: Optional[int] = None, title: str = ""):
    """Scatter of a PointSet coloured by "label", "modality" (categorical) or "time offset" (continuous)."""
    import matplotlib.pyplot as plt
    from .plots import scatter_2d
    if colour_by == "time offset":
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        sc = ax.scatter(ps.xy[:, 0], ps.xy[:, 1], c=ps.offset, cmap="viridis", s=14)
        fig.colorbar(sc, ax=ax, label="window start (s)")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title)
    else:
        vals = ps.label if colour_by == "label" else ps.modality
        fig = scatter_2d(ps.xy, vals, title, markers=ps.modality if colour_by == "label" and
                         len(set(ps.modality.tolist())) > 1 else None)
        ax = fig.axes[0]
    if selected is not None:
        ax.scatter([ps.xy[selected, 0]], [ps.xy[selected, 1]], s=160, facecolors="none", edgecolors="black",
                   linewidths=2, zorder=5)
    fig.tight_layout()
    return fig


class EmbeddingExplorer(Shown):
    """UMAP maps (video / audio / joint) coloured by label, modality or time offset; pick a point (slider)
    to see its window's frames and hear its audio.

    points: {space: PointSet} (embedding_points); items: evaluate.media.Items (path, duration);
    clip_duration: seconds of media shown per point. Attributes: space, colour, point (widgets);
    scatter, frames (Image); audio (Audio); info (HTML); selected (current point index).
    """

    def __init__(self, points: dict, items: Sequence, clip_duration: float = 1.0, audio_rate: int = 16000):
        import ipywidgets as W
        self.points, self.items, self.clip_duration, self.rate = points, list(items), clip_duration, audio_rate
        self._media: dict = {}
        first = next(iter(points))
        self.space = W.Dropdown(options=list(points), value=first, description="space")
        self.colour = W.Dropdown(options=["label", "modality", "time offset"], value="label", description="colour by")
        self.point = W.IntSlider(value=0, min=0, max=len(points[first].xy) - 1, description="point",
                                 continuous_update=False)
        self.scatter = W.Image(format="png")
        self.frames = W.Image(format="png")
        self.audio = W.Audio(format="wav", autoplay=False, loop=False)
        self.info = W.HTML()
        self.space.observe(self._on_space, names="value")
        self.colour.observe(lambda _c: self.update(), names="value")
        self.point.observe(lambda _c: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.space, self.colour]), self.point,
                              W.HBox([self.scatter, W.VBox([self.info, self.frames, self.audio])])])
        self.selected = 0
        self.update()

    def _on_space(self, _change) -> None:
        n = len(self.points[self.space.value].xy)
        self.point.max = n - 1
        self.point.value = min(self.point.value, n - 1)
        self.update()

    def media(self, item: int, start: float):
        key = (item, round(float(start), 3))
        if key not in self._media:
            self._media[key] = load_preview(self.items[item].path, float(start), self.clip_duration, fps=8.0,
                                            short_side=64, audio_rate=self.rate)
        return self._media[key]

    def update(self) -> None:
        ps = self.points[self.space.value]
        j = int(self.point.value)
        self.selected = j
        self.scatter.value = figure_png(scatter_figure(ps, self.colour.value, j,
                                                       f"{self.space.value} — colour: {self.colour.value}"))
        it = self.items[int(ps.item[j])]
        frames, wave = self.media(int(ps.item[j]), float(ps.offset[j]))
        self.frames.value = png_bytes(frame_strip(frames, 6)) if len(frames) else b""
        self.audio.value = wav_bytes(wave, self.rate, normalise=True) if len(wave) else wav_bytes(np.zeros(160))
        self.info.value = (f"point {j}: <b>{ps.label[j]}</b> · {ps.modality[j]} · window at "
                           f"{ps.offset[j]:.2f} s<br><code>{Path(it.path).name}</code>")
