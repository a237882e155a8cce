"""Probes (linear / kNN) and retrieval Recall@K: synthetic checks + end to end on the shared clips."""

import numpy as np
import pytest
import torch

from crisscross_core.evaluate.features import Features
from crisscross_core.evaluate.probe import knn_predict, knn_probe, linear_probe
from crisscross_core.evaluate.retrieval import class_retrieval, cross_modal_retrieval, recall_at_k, search

from shared_paths import SHARED
CLIPS = SHARED / "clips" / "manifest.csv"


def _clusters(n_per, k, d=16, noise=0.3, seed=0, rid0=0):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(size=(k, d))
    y = np.repeat(np.arange(k), n_per)
    x = centres[y] + noise * rng.normal(size=(len(y), d))
    return Features(x.astype(np.float32), rid0 + np.arange(len(y)), y, np.zeros(len(y), np.int64))


def test_probes_separate_clusters_and_fail_on_shuffled_labels():
    tr, te = _clusters(20, 5, seed=0), _clusters(10, 5, seed=1, rid0=1000)
    assert knn_probe(tr, te, k=5)["top1"] > 0.95
    assert linear_probe(tr, te)["top1"] > 0.95
    shuffled = Features(tr.x, tr.rid, np.random.default_rng(0).permutation(tr.label), tr.window)
    assert knn_probe(shuffled, te, k=5)["top1"] < 0.6


def test_knn_majority_vote_counts_neighbours():
    train = np.array([[1, 0], [1, 0.1], [0, 1]], np.float32)
    scores = knn_predict(train, np.array([0, 0, 1]), np.array([[1, 0.05]], np.float32), k=3, temperature=None)
    assert scores.tolist() == [[2.0, 1.0]]


def test_search_faiss_equals_numpy_and_recall_is_monotone():
    rng = np.random.default_rng(0)
    q, d = rng.normal(size=(30, 8)), rng.normal(size=(200, 8))
    a, b = search(q, d, 20, use_faiss=True), search(q, d, 20, use_faiss=False)
    np.testing.assert_array_equal(a, b)
    hits = rng.random((30, 20)) < 0.1
    r = recall_at_k(hits)
    assert r["R@1"] <= r["R@5"] <= r["R@10"] <= r["R@20"]


def test_class_and_cross_modal_retrieval():
    tr, te = _clusters(20, 5, seed=0), _clusters(10, 5, seed=1, rid0=1000)
    r = class_retrieval(te, tr)
    assert r["R@1"] > 0.95 and r["n_queries"] == 50 and r["n_gallery"] == 100
    with pytest.raises(ValueError):
        class_retrieval(tr, tr)                               # a query in its own gallery is refused
    rng = np.random.default_rng(0)
    v = Features(rng.normal(size=(40, 8)).astype(np.float32), np.arange(40), np.zeros(40, np.int64),
                 np.zeros(40, np.int64))
    a = Features(v.x + 0.01 * rng.normal(size=v.x.shape).astype(np.float32), v.rid, v.label, v.window)
    assert cross_modal_retrieval(a, v)["R@1"] == 1.0
    perm = rng.permutation(40)
    a_shuf = Features(a.x[perm], v.rid, v.label, v.window)   # pairing destroyed
    assert cross_modal_retrieval(a_shuf, v)["R@1"] < 0.2
    # class_at_1: the top-1 shares the query's class even when it is not the query's own item
    tr_b = Features(tr.x + 0.5 * rng.normal(size=tr.x.shape).astype(np.float32), tr.rid, tr.label, tr.window)
    r = cross_modal_retrieval(tr_b, tr)
    assert r["class_at_1"] > 0.95 and r["R@1"] < r["class_at_1"]


@pytest.mark.slow
@pytest.mark.skipif(not CLIPS.is_file(), reason="../shared/data/clips absent")
def test_end_to_end_on_shared_clips():
    from crisscross_core.evaluate.features import (AudioFeatures, AudioSettings, VideoFeatures, VideoSettings,
                                                   extract_features, load_encoder)
    from crisscross_core.evaluate.media import load_items
    torch.set_num_threads(2)
    torch.manual_seed(0)
    items, names = load_items(CLIPS)
    assert len(items) >= 10
    venc, _ = load_encoder(None, "video", depth=10, width=0.25)
    vs = VideoSettings(frames=4, crop_size=32)
    fv = extract_features(VideoFeatures(venc, "maxpool"), items, "video", windows=2, video=vs, batch_size=8,
                          progress=False)
    assert fv.x.shape == (2 * len(items), 128) and np.isfinite(fv.x).all()
    tr = fv.select(np.isin(fv.rid, [it.rid for it in items[::2]]))
    te = fv.select(~np.isin(fv.rid, [it.rid for it in items[::2]]))
    r = class_retrieval(te, tr)
    assert 0.0 <= r["R@1"] <= r["R@5"] <= 1.0
    assert 0.0 <= knn_probe(tr, te, k=3)["top1"] <= 1.0
    assert 0.0 <= linear_probe(tr, te)["top1"] <= 1.0
    with_audio = load_items(CLIPS, require_audio=True)[0]
    assert 3 <= len(with_audio) < len(items)
    aenc, _ = load_encoder(None, "audio", width=0.25)
    fa = extract_features(AudioFeatures(aenc, "pool"), with_audio, "audio", windows=2,
                          audio=AudioSettings(clip_duration=1.0), progress=False)
    fv2 = fv.select(np.isin(fv.rid, fa.rid))
    out = cross_modal_retrieval(fa, fv2)
    assert out["n_queries"] == len(with_audio) and 0.0 <= out["R@1"] <= out["R@20"] == 1.0
