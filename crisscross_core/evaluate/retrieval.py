"""Retrieval Recall@K with exact inner-product search (docs/evaluation.md, "Retrieval").

* within-modality (video→video, audio→audio): test items query the train items; a hit at K = at least
  one same-class item among the top K (`leave_one_out_retrieval`: every item queries all the others);
* cross-modal (audio→video, video→audio): item i's other modality is the one positive (same clip index);
  needs no labels and no splits.
Features are L2-normalised, so inner product = cosine. faiss `IndexFlatIP` when installed, else numpy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.manifest import ManifestError
from .features import Features

KS = (1, 5, 10, 20)


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def search(queries: np.ndarray, keys: np.ndarray, k: int, use_faiss: bool = True) -> np.ndarray:
    """Indices `[M, k]` of the k most similar keys (cosine), best first. Exact."""
    q, d = _l2(queries), _l2(keys)
    if not len(d) or not len(q):
        raise ManifestError(f"retrieval: {'no gallery items' if not len(d) else 'no query items'} "
                            f"(every row was left out; see the dropped rows)")
    k = min(k, len(d))
    if use_faiss:
        try:
            import faiss
            index = faiss.IndexFlatIP(d.shape[1])
            index.add(d)
            return index.search(q, k)[1]
        except ImportError:
            pass
    sim = q @ d.T
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sim, idx, 1), axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1)


def recall_at_k(hits: np.ndarray, ks: Sequence[int] = KS) -> dict:
    """hits `[M, K]` bool (ranked) → {"R@k": fraction of queries with a hit in the top k}."""
    return {f"R@{k}": float(hits[:, :k].any(1).mean()) for k in ks}


def class_retrieval(query: Features, gallery: Features, ks: Sequence[int] = KS, use_faiss: bool = True) -> dict:
    """Same-modality retrieval on per-item features: test queries against the train gallery."""
    q, g = query.per_item(), gallery.per_item()
    shared = set(q.rid.tolist()) & set(g.rid.tolist())
    if shared:
        raise ManifestError(f"retrieval: {len(shared)} items are both query and gallery (e.g. row {min(shared)})")
    idx = search(q.x, g.x, max(ks), use_faiss)
    out = recall_at_k(g.label[idx] == q.label[:, None], ks)
    out.update(n_queries=len(q.x), n_gallery=len(g.x))
    return out


def cross_modal_retrieval(a: Features, b: Features, ks: Sequence[int] = KS, use_faiss: bool = True) -> dict:
    """a→b retrieval: query item i of `a` (per-item features) must find the item with the same rid in `b`.
    Also `class_at_1`, the fraction of queries whose top-1 has the query's class (labelled items)."""
    qa, gb = a.per_item(), b.per_item()
    common = np.intersect1d(qa.rid, gb.rid)
    qa = qa.select(np.isin(qa.rid, common))
    gb = gb.select(np.isin(gb.rid, common))
    idx = search(qa.x, gb.x, max(ks), use_faiss)
    out = recall_at_k(gb.rid[idx] == qa.rid[:, None], ks)
    out.update(n_queries=len(qa.x), n_gallery=len(gb.x), chance_r1=1.0 / max(1, len(gb.x)))
    if (qa.label >= 0).all():  # diagnostic: does the top-1 at least share the query's class?
        out["class_at_1"] = float((gb.label[idx[:, 0]] == qa.label).mean())
    return out


def leave_one_out_retrieval(feats: Features, ks: Sequence[int] = KS, use_faiss: bool = True) -> dict:
    """Same-modality retrieval without splits: every labelled item queries all the other items."""
    f = feats.per_item()
    f = f.select(f.label >= 0)
    if len(f.x) < 2:
        raise ManifestError(f"leave-one-out retrieval needs at least 2 labelled items, got {len(f.x)}")
    idx = search(f.x, f.x, min(len(f.x), max(ks) + 1), use_faiss)
    ranked = np.stack([row[row != i][:max(ks)] for i, row in enumerate(idx)])   # the query itself left out
    out = recall_at_k(f.label[ranked] == f.label[:, None], ks)
    out.update(n_queries=len(f.x), n_gallery=len(f.x) - 1)
    return out


def cross_modal(audio: Features, video: Features, video_q: Features = None, audio_g: Features = None,
                ks: Sequence[int] = KS, use_faiss: bool = True) -> dict:
    """Both directions of cross-modal retrieval: {"audio_to_video", "video_to_audio", "mean" (of their
    R@1)}. audio queries `audio` search gallery `video`; video queries `video_q` (default `video`) search
    `audio_g` (default `audio`) — e.g. predictions p against projections z, as the pretraining loss pairs them."""
    a2v = cross_modal_retrieval(audio, video, ks, use_faiss)
    v2a = cross_modal_retrieval(video_q if video_q is not None else video,
                                audio_g if audio_g is not None else audio, ks, use_faiss)
    return {"audio_to_video": a2v, "video_to_audio": v2a, "mean": (a2v["R@1"] + v2a["R@1"]) / 2,
            "n_items": a2v["n_queries"]}
