"""The retrieval browser: a query clip and its top-K neighbours (within or across modalities), and the
Recall@K table computed with the same protocol the browser shows.

    rb = RetrievalBrowser({"video": hv, "audio": ha}, items, k=5)   # query → top-K strips with audio
    table = recall_table(h, z, p)                                    # {direction: {"R@1": …, …}}
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .media import frame_strip, image_layout, load_preview, png_bytes, wav_bytes
from .shown import Shown

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


class RetrievalBrowser(Shown):
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
        self.query_view = W.Image(format="png", layout=image_layout())
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
            W.Image(value=png_bytes(frame_strip(frames, 6)) if len(frames) else b"", format="png",
                    layout=image_layout()),
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
        # a hit: same class (within modality), or the query's own clip (cross-modal, docs/evaluation.md)
        self.matches = np.array([(i == q) if cross else (self.items[int(i)].label == qi.label) for i in idx], bool)
        self.results.children = [self._row(r + 1, int(i), float(s), bool(m))
                                 for r, (i, s, m) in enumerate(zip(idx, sims, self.matches))]
        first = int(np.argmax(self.matches)) + 1 if self.matches.any() else None
        self.query_info.value += (f"<br>first hit at rank {first}" if first else f"<br>no hit in the top {len(idx)}")


PROTOCOL = ("Within a modality: leave-one-out over all clips -- every clip queries all the others (itself left "
            "out, as in the browser); a hit at K = a clip of the query's class among the top K. Across "
            "modalities: every clip's prediction p queries the other modality's projections z of all clips; "
            "the one hit is the clip itself (chance R@1 = 1/N).")


def recall_table(h: dict, z: Optional[dict] = None, p: Optional[dict] = None, ks=(1, 5, 10)) -> dict:
    """Recall@K by direction, with the browser's protocol (PROTOCOL): {"video → video": {...}, ...}.

    h: {"video": Features, "audio": Features} per item (the browser's within-modality features); z, p: the
    head spaces for the cross-modal directions (skipped when absent). Each entry: R@k, n_queries, n_gallery.
    Uses evaluate.retrieval (leave_one_out_retrieval, cross_modal_retrieval)."""
    from crisscross_core.evaluate.retrieval import cross_modal_retrieval, leave_one_out_retrieval
    rows = {}
    for m in ("video", "audio"):
        if m in h and (h[m].label >= 0).sum() >= 2:
            rows[f"{m} → {m}"] = leave_one_out_retrieval(h[m], ks)
    if z and p:
        for a, b in (("audio", "video"), ("video", "audio")):
            if a in p and b in z:
                rows[f"{a} → {b}"] = cross_modal_retrieval(p[a], z[b], ks)
    return rows


def recall_markdown(rows: dict, ks=(1, 5, 10)) -> str:
    lines = ["| direction | " + " | ".join(f"R@{k}" for k in ks) + " | queries | gallery per query |",
             "|---|" + "---|" * (len(ks) + 2)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * r[f'R@{k}']:.1f}" for k in ks)
                     + f" | {r['n_queries']} | {r['n_gallery']} |")
    return "\n".join(lines)
