"""ipywidgets explorers the notebooks show, built as plain objects so tests can drive them.

    ex = PairingExplorer(manifest, data_cfg)          # relation / clip / resample → timeline + views + audio
    ex.relation.value = "far_apart"                   # redraws; ex.windows is the new ViewWindows
    emb = EmbeddingExplorer(points, items)            # UMAP scatter; ex.point.value = 3 → frames + audio
    rb = RetrievalBrowser(video_feats, audio_feats, items, k=5)   # query → top-K strips with audio

Each explorer keeps its widgets as attributes and its top-level box in `.widget`; showing the object
in a notebook cell shows the box. Figures are rendered to PNG into `ipywidgets.Image`, so the same
code runs in a kernel, in nbclient and in plain pytest. Also the figures of the result tables
(`results_figure`). Notebook plumbing (small mode, paths, encoders, features) is in viz/notebook.py.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .media import denormalise, figure_png, frame_strip, load_preview, log_mel, png_bytes, wav_bytes

VIEW_COLOURS = {"v1": "tab:blue", "a1": "tab:orange", "v2": "tab:green", "a2": "tab:red"}


class _Shown:
    """Mixin: showing the object in a notebook shows `.widget`."""
    widget = None

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)


# ----------------------------------------------------------------------------- pairings

def pairing_figure(windows, frames: np.ndarray, wave: np.ndarray, rate: int, t0: float = 0.0,
                   title: str = "", spectrogram: bool = True):
    """The four windows v1, a1, v2, a2 on one timeline, over a frame strip and the waveform / log-mel.

    `windows`: sampling.ViewWindows; `frames` uint8 `[T, H, W, 3]` and `wave` `[N]` cover [t0, t0 + len/rate].
    Axis 1 holds one bar per view (patch order v1, a1, v2, a2). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    dur = len(wave) / rate if len(wave) else max(w[0] + w[1] for w in (windows.v1, windows.v2)) - t0
    t1 = t0 + dur
    fig, axes = plt.subplots(3, 1, figsize=(9, 5.2), sharex=True,
                             gridspec_kw={"height_ratios": [1.1, 1.0, 1.3]})
    if len(frames):
        n = int(np.clip(round(dur), 4, 14))
        axes[0].imshow(frame_strip(frames, n), aspect="auto", extent=[t0, t1, 0, 1])
    for name in ("v1", "v2"):
        s, d = getattr(windows, name)
        axes[0].axvspan(s, s + d, ymin=0.0, ymax=1.0, fill=False, lw=2, ec=VIEW_COLOURS[name])
    axes[0].set_yticks([])
    axes[0].set_title(title)
    names = ("v1", "a1", "v2", "a2")
    for y, name in zip((3, 2, 1, 0), names):
        s, d = getattr(windows, name)
        axes[1].broken_barh([(s, d)], (y - 0.35, 0.7), color=VIEW_COLOURS[name], alpha=0.85)
    axes[1].set_yticks([3, 2, 1, 0], names)
    axes[1].set_ylim(-0.6, 3.6)
    axes[1].grid(axis="x", alpha=0.3)
    shared = [n for n, f in (("video", windows.share_video), ("audio", windows.share_audio)) if f]
    if shared:
        axes[1].text(0.99, 0.02, "one augmented tensor for both " + " & ".join(shared) + " views",
                     transform=axes[1].transAxes, ha="right", va="bottom", fontsize=8)
    if len(wave) and spectrogram:
        spec = log_mel(wave, rate)
        axes[2].imshow(spec, origin="lower", aspect="auto", cmap="magma", extent=[t0, t1, 0, spec.shape[0]])
        axes[2].set_ylabel("mel bin")
    else:
        axes[2].plot(t0 + np.arange(len(wave)) / rate, wave, lw=0.4)
        axes[2].set_ylabel("wave")
    for name in ("a1", "a2"):
        s, d = getattr(windows, name)
        axes[2].axvspan(s, s + d, fill=False, lw=2, ec=VIEW_COLOURS[name])
    axes[2].set_xlim(t0, t1)
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def views_figure(item: dict, video_aug: np.ndarray, audio_aug: np.ndarray, aug_cfg, n_frames: int = 4):
    """Decoded views beside their augmented versions: frames of v1, v2 and log-mels of a1, a2.

    item: a PretrainDataset item (video uint8 `[2, T, H, W, 3]`); video_aug float `[2, 3, T, c, c]`;
    audio_aug float `[2, 1, F, T]`. Returns the Figure.
    """
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1.3, 1.3, 1]})
    for i in range(2):
        raw = np.asarray(item["video"][i])
        aug = denormalise(video_aug[i], aug_cfg.video.mean, aug_cfg.video.std)
        axes[i, 0].imshow(frame_strip(raw, n_frames))
        axes[i, 0].set_title(f"v{i + 1} decoded", fontsize=9)
        axes[i, 1].imshow(frame_strip(aug, n_frames, height=raw.shape[1]))
        axes[i, 1].set_title(f"v{i + 1} augmented", fontsize=9)
        spec = np.asarray(audio_aug[i][0])
        axes[i, 2].imshow(spec, origin="lower", aspect="auto", cmap="magma")
        axes[i, 2].set_title(f"a{i + 1} augmented log-mel", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


class PairingExplorer(_Shown):
    """Sampled windows of one clip for a relation; resample, switch clip / relation, hear a1 and a2.

    Uses `PretrainDataset(manifest, data_cfg)` (its `windows()` and decode, seeded by (seed, epoch,
    index)) and `TrainTransform(aug_cfg)`: what you see is what training draws. Resample = next epoch.
    Attributes: clip, relation, centred, resample (widgets); windows, item (current); plotted (the
    (start, dur) bars drawn, order v1 a1 v2 a2); timeline, views (Image widgets); audio_a1, audio_a2
    (Audio widgets); draws (number of redraws).
    """

    def __init__(self, manifest, data_cfg=None, aug_cfg=None, seed: int = 0, index: int = 0,
                 relation: Optional[str] = None, context_fps: float = 4.0, max_context_s: float = 30.0,
                 augment: bool = True):
        import ipywidgets as W
        import torch
        from crisscross_core.config import AugConfig, DataConfig
        from crisscross_core.data.datasets import PretrainDataset
        from crisscross_core.data.pipeline import TrainTransform
        from crisscross_core.data.sampling import RELATIONS
        cfg = dataclasses.replace(data_cfg or DataConfig(), split="")
        if relation:
            cfg.relation = relation
        self.cfg, self.aug_cfg = cfg, aug_cfg or AugConfig()
        self.dataset = PretrainDataset(manifest, cfg, seed=seed)
        self.transform = TrainTransform(self.aug_cfg, cfg.audio_rate) if augment else None
        self._torch = torch
        self.context_fps, self.max_context_s = context_fps, max_context_s
        self._context: dict = {}
        self.epoch, self.draws, self.windows, self.item, self.plotted = 0, 0, None, None, []
        rows = self.dataset.rows
        self.clip = W.Dropdown(options=[(f"{i}: {r.path}" + (f" [{r.label}]" if r.label else ""), i)
                                        for i, r in enumerate(rows)],
                               value=min(index, len(rows) - 1), description="clip",
                               layout=W.Layout(width="480px"))
        self.relation = W.Dropdown(options=list(RELATIONS), value=cfg.relation, description="relation")
        self.centred = W.Checkbox(value=cfg.centred, description="centred (§11.B1)")
        self.resample = W.Button(description="Resample", icon="refresh")
        self.info = W.HTML()
        self.timeline = W.Image(format="png")
        self.views = W.Image(format="png")
        self.audio_a1 = W.Audio(format="wav", autoplay=False, loop=False)
        self.audio_a2 = W.Audio(format="wav", autoplay=False, loop=False)
        self.resample.on_click(lambda _b: self.next_draw())
        for w in (self.clip, self.relation, self.centred):
            w.observe(lambda _c: self.update(), names="value")
        self.widget = W.VBox([
            W.HBox([self.clip, self.relation]), W.HBox([self.centred, self.resample]), self.info,
            self.timeline,
            W.HBox([W.VBox([W.Label("a1"), self.audio_a1]), W.VBox([W.Label("a2"), self.audio_a2])]),
            self.views])
        self.update()

    def next_draw(self) -> None:
        """Draw new windows (and augmentations) for the same clip: the next epoch's randomness."""
        self.epoch += 1
        self.update()

    def context(self, index: int):
        """(t0, frames, wave) of the clip, from its first stream start, up to max_context_s seconds."""
        if index not in self._context:
            r = self.dataset.rows[index]
            t0 = min(r.video_start, r.audio_start) if r.has_audio else r.video_start
            end = max(r.video_start + r.video_duration, r.audio_start + r.audio_duration)
            frames, wave = load_preview(self.dataset.root / r.path, t0, min(end - t0, self.max_context_s),
                                        fps=self.context_fps, short_side=64, audio_rate=self.cfg.audio_rate)
            self._context[index] = (t0, frames, wave)
        return self._context[index]

    def update(self) -> None:
        """Redraw for the widgets' current clip / relation / centring and the current epoch."""
        self.dataset.cfg.relation = self.relation.value
        self.dataset.cfg.centred = bool(self.centred.value)
        self.dataset.set_epoch(self.epoch)
        i = int(self.clip.value)
        self.windows = self.dataset.windows(i)
        self.item = self.dataset.load(i)
        r = self.dataset.rows[i]
        t0, frames, wave = self.context(i)
        title = f"{r.path} — {self.relation.value} (draw {self.epoch})"
        fig = pairing_figure(self.windows, frames, wave, self.cfg.audio_rate, t0, title)
        self.plotted = plotted_windows(fig)
        self.timeline.value = figure_png(fig)
        a = self.item["audio"].numpy()
        self.audio_a1.value = wav_bytes(a[0], self.cfg.audio_rate, normalise=True)
        self.audio_a2.value = wav_bytes(a[1], self.cfg.audio_rate, normalise=True)
        fmt = lambda w: f"{w[0]:.2f}–{w[0] + w[1]:.2f} s"
        w = self.windows
        self.info.value = (f"v1 {fmt(w.v1)} · a1 {fmt(w.a1)} · v2 {fmt(w.v2)} · a2 {fmt(w.a2)}"
                           + (" · <b>shared video</b>" if w.share_video else "")
                           + (" · <b>shared audio</b>" if w.share_audio else ""))
        if self.transform is not None:
            g = self._torch.Generator().manual_seed(1_000_003 * self.epoch + i)
            with self._torch.no_grad():
                v, a = self.transform(self.item["video"][None], self.item["audio"][None],
                                      self.item["share"][None], generator=g)
            self.views.value = figure_png(views_figure(self.item, v[0], a[0], self.aug_cfg))
        self.draws += 1


def plotted_windows(fig_or_ax) -> list:
    """(start, dur) of the bars on a pairing_figure's timeline axis (order v1, a1, v2, a2)."""
    ax = fig_or_ax.get_axes()[1] if hasattr(fig_or_ax, "get_axes") else fig_or_ax
    out = []
    for coll in ax.collections:
        for p in coll.get_paths():
            xs = p.vertices[:, 0]
            out.append((float(xs.min()), float(xs.max() - xs.min())))
    return out


# ----------------------------------------------------------------------------- embeddings

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


class EmbeddingExplorer(_Shown):
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


# ----------------------------------------------------------------------------- retrieval

DIRECTIONS = {"video → video": ("video", "video"), "audio → audio": ("audio", "audio"),
              "video → audio": ("video", "audio"), "audio → video": ("audio", "video")}


def neighbours(feats: dict, direction: str, query: int, k: int, queries: Optional[dict] = None):
    """Top-k gallery rows for query row `query` of per-item features (same row order in both modalities).

    Gallery: feats[target modality]; query vector: queries[source modality] for cross-modal directions
    when `queries` is given (e.g. predictions p against projections z, as the loss pairs them), else
    feats[source]. Within a modality the query itself is left out. Returns (indices `[k]`, cosine `[k]`).
    Search: evaluate.retrieval.search (exact inner product on L2-normalised features).
    """
    from crisscross_core.evaluate.retrieval import search
    qm, gm = DIRECTIONS[direction]
    q = (queries[qm] if queries and qm != gm else feats[qm]).x
    g = feats[gm].x
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"{direction}: query and gallery features differ in width ({q.shape[1]} vs "
                         f"{g.shape[1]}); cross-modal search needs one space")
    idx = search(q[query:query + 1], g, min(len(g), k + 1))[0]
    if qm == gm:
        idx = idx[idx != query]
    idx = idx[:k]
    qn = q[query] / (np.linalg.norm(q[query]) + 1e-12)
    gn = g[idx] / (np.linalg.norm(g[idx], axis=1, keepdims=True) + 1e-12)
    return idx, gn @ qn


class RetrievalBrowser(_Shown):
    """Pick a query clip and a direction; see the top-K neighbours as frame strips with their audio.

    feats: {"video": Features, "audio": Features} per item (Features.per_item(), rows aligned with
    `items`); queries: optional features of the query side for cross-modal directions (see neighbours).
    Attributes: query, direction, k (widgets); results (VBox of rows); hits (current indices);
    query_view (Image) and query_audio (Audio).
    """

    def __init__(self, feats: dict, items: Sequence, k: int = 5, clip_duration: float = 2.0,
                 audio_rate: int = 16000, queries: Optional[dict] = None):
        import ipywidgets as W
        self.W, self.feats, self.items, self.queries = W, feats, list(items), queries
        self.clip_duration, self.rate = clip_duration, audio_rate
        self._media: dict = {}
        for m, f in [*feats.items(), *(queries or {}).items()]:
            if len(f.x) != len(self.items):
                raise ValueError(f"{m} features have {len(f.x)} rows for {len(self.items)} items; "
                                 "pass Features.per_item() of exactly these items")
        src = lambda a, b: (queries if queries and a != b else feats).get(a)
        dirs = [d for d, (a, b) in DIRECTIONS.items() if src(a, b) is not None and b in feats
                and src(a, b).x.shape[1] == feats[b].x.shape[1]]
        self.query = W.Dropdown(options=[(f"{i}: {it.label_name} — {Path(it.path).name}", i)
                                         for i, it in enumerate(self.items)], value=0, description="query",
                                layout=W.Layout(width="520px"))
        self.direction = W.Dropdown(options=dirs, value=dirs[0], description="direction")
        self.k = W.IntSlider(value=min(k, len(self.items) - 1), min=1, max=max(1, len(self.items) - 1),
                             description="K", continuous_update=False)
        self.query_view = W.Image(format="png")
        self.query_audio = W.Audio(format="wav", autoplay=False, loop=False)
        self.query_info = W.HTML()
        self.results = W.VBox()
        for w in (self.query, self.direction, self.k):
            w.observe(lambda _c: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.query, self.direction, self.k]),
                              W.HBox([W.VBox([self.query_info, self.query_audio]), self.query_view]),
                              W.HTML("<b>neighbours</b>"), self.results])
        self.hits = np.zeros(0, np.int64)
        self.update()

    def media(self, i: int):
        if i not in self._media:
            it = self.items[i]
            from crisscross_core.evaluate.media import dense_starts, media_duration
            start = dense_starts(it.duration or media_duration(it.path), self.clip_duration, 1)[0]
            self._media[i] = load_preview(it.path, start, self.clip_duration, fps=4.0, short_side=48,
                                          audio_rate=self.rate)
        return self._media[i]

    def _row(self, rank: int, i: int, sim: float, match: bool):
        W = self.W
        frames, wave = self.media(i)
        it = self.items[i]
        mark = "✔" if match else "✘"
        return W.HBox([
            W.HTML(f"#{rank} {mark} <b>{it.label_name}</b><br>cos {sim:.3f}<br><code>{Path(it.path).name}</code>",
                   layout=W.Layout(width="260px")),
            W.Image(value=png_bytes(frame_strip(frames, 6)) if len(frames) else b"", format="png"),
            W.Audio(value=wav_bytes(wave, self.rate, normalise=True) if len(wave) else wav_bytes(np.zeros(160)),
                    format="wav", autoplay=False, loop=False)])

    def update(self) -> None:
        q = int(self.query.value)
        idx, sims = neighbours(self.feats, self.direction.value, q, int(self.k.value), self.queries)
        self.hits = idx
        qi = self.items[q]
        frames, wave = self.media(q)
        self.query_view.value = png_bytes(frame_strip(frames, 6)) if len(frames) else b""
        self.query_audio.value = wav_bytes(wave, self.rate, normalise=True) if len(wave) else wav_bytes(np.zeros(160))
        self.query_info.value = f"query <b>{qi.label_name}</b><br><code>{Path(qi.path).name}</code>"
        cross = DIRECTIONS[self.direction.value][0] != DIRECTIONS[self.direction.value][1]
        # a hit: same class (within modality), or the query's own clip (cross-modal, spec §9.4)
        self.results.children = [self._row(r + 1, int(i), float(s), (i == q) if cross else
                                           (self.items[int(i)].label == qi.label))
                                 for r, (i, s) in enumerate(zip(idx, sims))]


# ----------------------------------------------------------------------------- result tables

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
