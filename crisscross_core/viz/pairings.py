"""The asynchronous-pairings explorer: which windows a temporal relation samples, seen and heard.

    ex = PairingExplorer(manifest, data_cfg)   # relation / clip / resample → timeline + views + audio
    ex.relation.value = "far_apart"            # redraws; ex.windows is the new ViewWindows

Figures are rendered to PNG into `ipywidgets.Image`, so the same code runs in a kernel, in nbclient
and in plain pytest.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from .media import denormalise, figure_png, frame_strip, load_preview, log_mel, strip_on_axis, wav_bytes
from .shown import Shown

VIEW_COLOURS = {"v1": "tab:blue", "a1": "tab:orange", "v2": "tab:green", "a2": "tab:red"}


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
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    if len(frames):   # after the layout: as many frames as fit at their own aspect
        strip_on_axis(axes[0], frames, t0, t1)
    axes[2].set_xlim(t0, t1)
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


class PairingExplorer(Shown):
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
        self.centred = W.Checkbox(value=cfg.centred, description="video window centred in its audio window",
                                  style={"description_width": "initial"},
                                  tooltip="data.centred: centre each video window inside its audio window "
                                          "(off in the presets: the video window lies anywhere inside it); "
                                          "unrelated to the 'adjacent' relation")
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
                                      self.item["share"][None], generator=g,
                                      frame_hw=self.item["frame_hw"][None])   # crops in the frame's geometry
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


def relations_figure(windows_by_relation: dict, frames: np.ndarray, t0: float, t1: float, title: str = ""):
    """All relations at a glance: the clip's frames once on top, then one row per relation with the four
    windows v1, a1, v2, a2 as bars on the shared time axis (large enough to read at notebook width).

    windows_by_relation: {relation: sampling.ViewWindows}; frames uint8 `[T, H, W, 3]` over [t0, t1].
    """
    import matplotlib.pyplot as plt
    rels = list(windows_by_relation)
    fig, axes = plt.subplots(len(rels) + 1, 1, figsize=(11, 1.0 + 0.95 * len(rels)), sharex=True,
                             gridspec_kw={"height_ratios": [1.6] + [1.0] * len(rels)})
    axes[0].set_yticks([])
    axes[0].set_title(title, fontsize=11)
    names = ("v1", "a1", "v2", "a2")
    for ax, rel in zip(axes[1:], rels):
        w = windows_by_relation[rel]
        for y, name in zip((3, 2, 1, 0), names):
            s, d = getattr(w, name)
            ax.broken_barh([(s, d)], (y - 0.4, 0.8), color=VIEW_COLOURS[name], alpha=0.9)
        ax.set_yticks([3, 2, 1, 0], names, fontsize=8)
        ax.set_ylim(-0.7, 3.7)
        ax.set_ylabel(rel, rotation=0, ha="right", va="center", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        shared = [n for n, f in (("video", w.share_video), ("audio", w.share_audio)) if f]
        if shared:
            ax.text(0.995, 0.05, "shared " + " & ".join(shared), transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    if len(frames):
        strip_on_axis(axes[0], frames, t0, t1)
    axes[-1].set_xlim(t0, t1)
    return fig
