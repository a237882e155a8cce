"""The embedding explorer: 2-D maps (UMAP) of per-window features as interactive scatter widgets.

    ps = embedding_points({"video": fv, "audio": fa}, items, joint=..., aligned=...)   # {map: PointSet}
    ex = EmbeddingExplorer(ps, items, clip_duration={"video": 0.5, "audio": 2.0})
    ex                                  # two linked maps: hover / click / lasso → frames, audio, table
    ex.selection                        # pandas DataFrame of the lasso (or clicked) points, in Python

The maps are jupyter-scatter widgets (WebGL; chosen by measured fluency at 100k points, see
notebooks/README.md): pan and zoom, hover (tooltip + the clip's frames beside the map), click (the
window's frames and audio), lasso (the toolbar's lasso button: the selection as a table and a strip
of its clips). The two maps are linked by clip: a selection in one selects the same clips' points in
the other. Colour by label, modality, time offset (window start) or split.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .media import frame_strip, image_layout, load_preview, png_bytes, wav_bytes
from .shown import Shown

COLOURS = {"label": "label", "modality": "modality", "time offset": "start_s", "split": "split"}


@dataclass
class PointSet:
    """Points of one 2-D map: xy `[M, 2]`; per point its item index (into `items`), modality, window
    start (s), label name and split tag."""
    xy: np.ndarray
    item: np.ndarray
    modality: np.ndarray
    offset: np.ndarray
    label: np.ndarray
    split: Optional[np.ndarray] = None

    def frame(self, items: Sequence):
        """pandas DataFrame, one row per point: x, y, item, clip (file name), label, modality, start_s, split."""
        import pandas as pd
        names = np.array([Path(it.path).name for it in items], dtype=object)
        split = self.split if self.split is not None else np.array([""] * len(self.item), dtype=object)
        return pd.DataFrame({
            "x": self.xy[:, 0].astype(np.float32), "y": self.xy[:, 1].astype(np.float32),
            "item": self.item.astype(np.int64), "clip": names[self.item],
            "label": pd.Categorical(self.label.astype(str)), "modality": pd.Categorical(self.modality.astype(str)),
            "start_s": self.offset.astype(np.float32), "split": pd.Categorical([str(s) or "-" for s in split])})


# ----------------------------------------------------------------------------- building the maps

def window_offsets(feats, items, clip_duration: float, windows: int) -> np.ndarray:
    """Start time (s) of each feature row's window: `feats.meta["start_s"]` when the features carry it
    (crisscross embed's Embeddings.features), else evaluate.media.dense_starts over the item's duration."""
    if "start_s" in (feats.meta or {}):
        return np.asarray(feats.meta["start_s"], np.float32)
    from crisscross_core.evaluate.media import dense_starts, media_duration
    by_rid = {it.rid: it for it in items}
    cache: dict = {}
    out = np.zeros(len(feats.rid), np.float32)
    for j, (rid, w) in enumerate(zip(feats.rid.tolist(), feats.window.tolist())):
        if rid not in cache:
            it = by_rid[rid]
            cache[rid] = dense_starts(it.duration or media_duration(it.path), clip_duration, windows)
        out[j] = cache[rid][min(max(w, 0), len(cache[rid]) - 1)]
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)


def embedding_points(feats: dict, items, clip_duration: Optional[dict] = None, windows: Optional[int] = None,
                     reducer: Optional[Callable] = None, seed: int = 0, joint: Optional[dict] = None,
                     aligned: Optional[dict] = None) -> dict:
    """2-D maps of per-window features: {"video": PointSet, "audio": PointSet, "joint": ..., "aligned": ...}.

    feats: {"video": Features, "audio": Features} (e.g. the backbone features "h"); rows' `rid` index
    `items` by Item.rid. joint: the same layout in a space both modalities share (the projections "z");
    aligned: {"audio": p_a, "video": z_v} -- the audio prediction beside the video projection, the pair
    the a→v loss term pulls together (a clip's two points should land close). Each joint map is one UMAP
    of both modalities' L2-normalised points. reducer: `[N, D] → [N, 2]` (default viz.plots.umap_2d).
    clip_duration / windows: only for features without `meta["start_s"]` (see window_offsets).
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
    splits = np.array([it.split or "" for it in items], dtype=object)

    def parts_of(fs: dict, tags: Optional[dict] = None) -> dict:
        out = {}
        for mod, f in fs.items():
            item = np.array([index[r] for r in f.rid.tolist()], np.int64)
            off = window_offsets(f, items, (clip_duration or {}).get(mod, 1.0), windows or 1)
            tag = (tags or {}).get(mod, mod)
            out[mod] = (_unit(f.x), item, np.array([tag] * len(item), dtype=object), off, names[item], splits[item])
        return out

    out = {mod: PointSet(reducer(x), *rest) for mod, (x, *rest) in parts_of(feats).items()}
    for name, fs, tags in (("joint", joint, None),
                           ("aligned", aligned, {"audio": "audio (p)", "video": "video (z)"})):
        jparts = parts_of(fs, tags) if fs else (parts_of(feats) if name == "joint" else {})
        if len(jparts) == 2 and len({p[0].shape[1] for p in jparts.values()}) == 1:
            cat = [np.concatenate(z) for z in zip(*jparts.values())]
            out[name] = PointSet(reducer(cat[0]), *cat[1:])
    return out


def alignment(a, b) -> dict:
    """How far two modalities' embeddings of the same windows are aligned (a, b: Features with the same
    rows, e.g. p_a and z_v). gap: ‖mean(â) − mean(b̂)‖ of the L2-normalised rows (0 = the two clouds share a
    centre; up to 2); cos_own: mean cosine of each window with its own counterpart; cos_other: with the
    other windows' counterparts (the same statistic for unrelated pairs). cos_own − cos_other > 0 means the
    pairing is learnt even where the clouds sit apart."""
    if len(a.x) != len(b.x) or not (np.asarray(a.rid) == np.asarray(b.rid)).all():
        raise ValueError("alignment: the two feature sets must hold the same rows (same rid order)")
    x, y = _unit(a.x), _unit(b.x)
    sim = x @ y.T
    n = len(x)
    own = float(np.trace(sim) / n)
    other = float((sim.sum() - np.trace(sim)) / max(1, n * n - n))
    return {"gap": float(np.linalg.norm(x.mean(0) - y.mean(0))), "cos_own": own, "cos_other": other, "n": n}


def scatter_figure(ps: PointSet, colour_by: str = "label", selected: Optional[int] = None, title: str = ""):
    """A static matplotlib scatter of a PointSet (for reports): "label", "modality", "split" (categorical)
    or "time offset" (continuous)."""
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
        vals = {"label": ps.label, "modality": ps.modality}.get(colour_by, ps.split)
        fig = scatter_2d(ps.xy, vals, title, markers=ps.modality if colour_by == "label" and
                         len(set(ps.modality.tolist())) > 1 else None)
        ax = fig.axes[0]
    if selected is not None:
        ax.scatter([ps.xy[selected, 0]], [ps.xy[selected, 1]], s=160, facecolors="none", edgecolors="black",
                   linewidths=2, zorder=5)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the explorer

def category_colours(values) -> dict:
    """{category: "#rrggbb"}: tab10 / tab20 for up to 20 categories, evenly spaced hues beyond."""
    import matplotlib
    from matplotlib.colors import hsv_to_rgb, to_hex
    cats = sorted({str(v) for v in values})
    if len(cats) <= 20:
        cmap = matplotlib.colormaps["tab10" if len(cats) <= 10 else "tab20"]
        return {c: to_hex(cmap(i)) for i, c in enumerate(cats)}
    return {c: to_hex(hsv_to_rgb((i / len(cats), 0.65 if i % 2 else 0.9, 0.85 if i % 3 else 0.65)))
            for i, c in enumerate(cats)}


def legend_html(df, colour: str) -> str:
    """The colour key of a map, as HTML above it (the scatter's own legend would cover points)."""
    col = COLOURS[colour]
    if col == "start_s":
        lo, hi = float(df[col].min()), float(df[col].max())
        return (f"<span style='font-size:12px'>window start: {lo:.2f} s "
                "<span style='display:inline-block;width:120px;height:10px;background:linear-gradient(90deg,"
                "#440154,#3b528b,#21918c,#5ec962,#fde725)'></span>"
                f" {hi:.2f} s</span>")
    items = "".join(f"<span style='white-space:nowrap;margin-right:10px'><span style='color:{c}'>●</span> {k}</span> "
                    for k, c in category_colours(df[col]).items())
    return f"<div style='font-size:12px;line-height:1.4'>{colour}: {items}</div>"


def _scatter(df, colour: str, height: int):
    import jscatter
    col = COLOURS[colour]
    cmap = "viridis" if col == "start_s" else category_colours(df[col])
    sc = jscatter.Scatter(data=df, x="x", y="y", color_by=col, color_map=cmap, height=height, axes=False,
                          legend=False, tooltip=True,
                          tooltip_properties=["label", "clip", "modality", "start_s", "split"],
                          size=5 if len(df) < 5_000 else 3 if len(df) < 100_000 else 2)
    return sc


class EmbeddingExplorer(Shown):
    """Two linked interactive maps (jupyter-scatter) of `points`, the clip view and the selection.

    points: {map name: PointSet} (embedding_points); items: evaluate.media.Items (path); clip_duration:
    {modality: seconds of its window} (a float: the same for both); the clip view shows the span both
    modalities' windows share (the longest window, centred on the point's window).

    Attributes: maps {"left", "right"}: jscatter.Scatter; space {"left", "right"}, colour (Dropdowns);
    frames (Image: the clicked window's frames, native aspect), audio (Audio), info (HTML), hover (HTML +
    hover_frames Image); table (HTML of the selection), strip (Image: one frame per selected clip);
    selection (DataFrame of the selected points of the map they were chosen in), selected_items (item
    indices), clicked ((map side, point index) or None). Drive from code with select(side, indices).
    """

    def __init__(self, points: dict, items: Sequence, clip_duration=1.0, audio_rate: int = 16000,
                 left: Optional[str] = None, right: Optional[str] = None, height: int = 420,
                 colour: str = "label", max_strip: int = 12):
        import ipywidgets as W
        self.points, self.items, self.rate, self.height, self.max_strip = points, list(items), audio_rate, height, max_strip
        self.clip_duration = clip_duration if isinstance(clip_duration, dict) else \
            {"video": float(clip_duration), "audio": float(clip_duration)}
        self._media: dict = {}
        self._frames_cache: dict = {}
        self._linking = False
        names = list(points)
        left = left or ("video" if "video" in points else names[0])
        right = right or ("audio" if "audio" in points else names[min(1, len(names) - 1)])
        self.colour = W.Dropdown(options=list(COLOURS), value=colour, description="colour by")
        self.space = {"left": W.Dropdown(options=names, value=left, description="left map"),
                      "right": W.Dropdown(options=names, value=right, description="right map")}
        self.frames = W.Image(format="png", layout=image_layout())
        self.audio = W.Audio(format="wav", autoplay=False, loop=False)
        self.info = W.HTML("click a point (or lasso a group with the toolbar's lasso) to see and hear it")
        self.hover = W.HTML()
        self.hover_frames = W.Image(format="png", layout=image_layout())
        self.table = W.HTML()
        self.strip = W.Image(format="png", layout=image_layout())
        self.info.add_class("cc-clip-info")
        self.frames.add_class("cc-clip-frames")
        self.audio.add_class("cc-clip-audio")
        self.table.add_class("cc-selection-table")
        self.maps: dict = {}
        self._dfs: dict = {}
        self._boxes = {side: W.VBox() for side in ("left", "right")}
        for side in ("left", "right"):
            self._build(side)
            self.space[side].observe(lambda c, s=side: self._build(s), names="value")
        self.colour.observe(lambda _c: self._recolour(), names="value")
        self.selection = self._dfs["left"].iloc[:0]
        self.selected_items = np.zeros(0, np.int64)
        self.clicked: Optional[tuple] = None
        clip = W.VBox([W.HTML("<b>clip</b>"), self.info, self.frames, self.audio, self.hover, self.hover_frames],
                      layout=W.Layout(width="44%"))
        selection = W.VBox([W.HTML("<b>selection</b> (in Python: <code>explorer.selection</code>)"), self.strip,
                            self.table], layout=W.Layout(width="55%"))
        self.widget = W.VBox([W.HBox([self.space["left"], self.space["right"], self.colour]),
                              W.HBox([self._boxes["left"], self._boxes["right"]]),
                              W.HBox([clip, selection])])

    # ---- maps
    def _build(self, side: str) -> None:
        import ipywidgets as W
        ps = self.points[self.space[side].value]
        df = ps.frame(self.items)
        sc = _scatter(df, self.colour.value, self.height)
        sc.widget.observe(lambda c, s=side: self._on_select(s, c["new"]), names="selection")
        sc.widget.observe(lambda c, s=side: self._on_hover(s, c["new"]), names="hovering")
        self.maps[side], self._dfs[side] = sc, df
        self._boxes[side].children = [W.HTML(f"<b>{self.space[side].value}</b> · {len(df)} points"),
                                      W.HTML(legend_html(df, self.colour.value)), sc.show()]
        self._boxes[side].layout = W.Layout(width="50%")

    def _recolour(self) -> None:
        for side in ("left", "right"):
            self._build(side)

    # ---- events
    def _on_hover(self, side: str, idx) -> None:
        if idx is None or int(idx) < 0:
            return
        df = self._dfs[side]
        i = int(idx)
        if i >= len(df):
            return
        r = df.iloc[i]
        self.hover.value = (f"hover: <b>{r['label']}</b> · {r['modality']} · {r['start_s']:.2f} s · "
                            f"<code>{r['clip']}</code>")
        frames, _ = self.media(int(r["item"]), str(r["modality"]), float(r["start_s"]))
        self.hover_frames.value = png_bytes(frame_strip(frames, 4)) if len(frames) else b""

    def _on_select(self, side: str, idx) -> None:
        if self._linking:
            return
        idx = np.asarray([] if idx is None else idx, np.int64)
        df = self._dfs[side]
        self.selection = df.iloc[idx]
        self.selected_items = np.unique(df["item"].to_numpy()[idx]) if len(idx) else np.zeros(0, np.int64)
        other = "right" if side == "left" else "left"
        odf = self._dfs[other]
        self._linking = True
        try:   # the same clips in the other map
            self.maps[other].widget.selection = np.flatnonzero(np.isin(odf["item"].to_numpy(), self.selected_items))
        finally:
            self._linking = False
        if len(idx):
            self.show_point(side, int(idx[0]))
        self._show_selection()

    def select(self, side: str, indices) -> None:
        """Select points of one map from code (what a click -- one index -- or a lasso does)."""
        self.maps[side].widget.selection = np.asarray(indices, np.int64)

    # ---- media
    def window(self, modality: str, start: float) -> tuple[float, float]:
        """(start, duration) shown for a point: the longest modality window, centred on the point's window."""
        show = max(self.clip_duration.values())
        mod = "audio" if "audio" in modality else "video"
        centre = start + self.clip_duration.get(mod, show) / 2
        return max(0.0, centre - show / 2), show

    def media(self, item: int, modality: str, start: float):
        s, d = self.window(modality, start)
        key = (item, round(s, 3))
        if key not in self._media:
            self._media[key] = load_preview(self.items[item].path, s, d, fps=8.0, short_side=64, audio_rate=self.rate)
        return self._media[key]

    def show_point(self, side: str, i: int) -> None:
        r = self._dfs[side].iloc[i]
        item, mod, start = int(r["item"]), str(r["modality"]), float(r["start_s"])
        frames, wave = self.media(item, mod, start)
        s, d = self.window(mod, start)
        self.clicked = (side, i)
        self.frames.value = png_bytes(frame_strip(frames, 6)) if len(frames) else b""
        self.audio.value = wav_bytes(wave, self.rate, normalise=True) if len(wave) else wav_bytes(np.zeros(160))
        self.info.value = (f"<b>{r['label']}</b> · {mod} window at {start:.2f} s (shown {s:.2f}–{s + d:.2f} s) · "
                           f"split {r['split']}<br><code>{Path(self.items[item].path).name}</code>")

    def _show_selection(self) -> None:
        sel = self.selection
        if not len(sel):
            self.table.value, self.strip.value = "", b""
            return
        self.strip.value = self.clips_strip(self.selected_items[: self.max_strip])
        cols = ["item", "clip", "label", "modality", "start_s", "split"]
        head = sel[cols].head(12).to_html(index=False, float_format=lambda v: f"{v:.2f}", border=0)
        head = head.replace("<th>", '<th style="padding: 0 8px; text-align: left">').replace(
            "<td>", '<td style="padding: 0 8px">')
        more = f" (first 12 rows shown)" if len(sel) > 12 else ""
        self.table.value = (f"{len(sel)} points of {sel['item'].nunique()} clips, "
                            f"{sel['label'].nunique()} labels{more}{head}")

    def clips_strip(self, item_ids) -> bytes:
        """PNG: the middle frame of each clip, side by side (frames keep their aspect)."""
        tiles = []
        for i in item_ids:
            i = int(i)
            if i not in self._frames_cache:
                it = self.items[i]
                dur = it.duration or 0.0
                frames, _ = load_preview(it.path, max(0.0, dur / 2 - 0.25) if dur else 0.0, 0.5, fps=4.0,
                                         short_side=64, with_audio=False)
                self._frames_cache[i] = frames[len(frames) // 2] if len(frames) else None
            if self._frames_cache[i] is not None:
                tiles.append(self._frames_cache[i])
        if not tiles:
            return b""
        h = min(t.shape[0] for t in tiles)
        return png_bytes(frame_strip(np.stack([t[:h] for t in tiles]) if len({t.shape for t in tiles}) == 1
                                     else _same_height(tiles, h), len(tiles)))


def _same_height(tiles, h):
    """Frames of different sizes → one array of height h (nearest neighbour, aspect kept, padded right)."""
    out = []
    for t in tiles:
        scale = h / t.shape[0]
        w = max(1, int(round(t.shape[1] * scale)))
        rows = np.minimum((np.arange(h) / scale).astype(int), t.shape[0] - 1)
        cols = np.minimum((np.arange(w) / scale).astype(int), t.shape[1] - 1)
        out.append(t[rows][:, cols])
    wmax = max(o.shape[1] for o in out)
    return np.stack([np.pad(o, ((0, 0), (0, wmax - o.shape[1]), (0, 0)), constant_values=255) for o in out])


def points_table(points: dict, items) -> "object":
    """All maps' points as one DataFrame (column "map"), e.g. to save or to filter in Python."""
    import pandas as pd
    return pd.concat([ps.frame(items).assign(map=name) for name, ps in points.items()], ignore_index=True)


__all__ = ["PointSet", "embedding_points", "alignment", "EmbeddingExplorer", "scatter_figure", "window_offsets",
           "points_table"]
