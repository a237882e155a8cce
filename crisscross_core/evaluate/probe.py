"""Frozen-feature probes: logistic-regression linear probe and a cosine kNN probe (docs/evaluation.md).

Both take per-item features (`Features.per_item()`: windows L2-normalised and averaged) of a train and
a test set. The kNN probe is cheap enough to run during pretraining (numpy/torch only, no fitting).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .features import Features


def _l2(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int = 20,
                temperature: Optional[float] = 0.07, num_classes: Optional[int] = None,
                chunk: int = 1024) -> np.ndarray:
    """Cosine kNN: class scores `[M, C]` from the k most similar training items.

    Votes are exp(sim / temperature) (DINO-style) or 1 each when temperature is None (majority vote).
    """
    tx, qx = _l2(train_x.astype(np.float32)), _l2(test_x.astype(np.float32))
    c = int(num_classes or (max(train_y.max(), 0) + 1))
    k = min(k, len(tx))
    out = np.zeros((len(qx), c), np.float64)
    for s in range(0, len(qx), chunk):
        sim = qx[s:s + chunk] @ tx.T                               # [m, N]
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        ss = np.take_along_axis(sim, idx, 1)
        w = np.ones_like(ss) if temperature is None else np.exp(ss / temperature)
        np.add.at(out[s:s + chunk], (np.arange(len(idx))[:, None], train_y[idx]), w)
    return out


def knn_probe(train: Features, test: Features, k: int = 20, temperature: Optional[float] = 0.07) -> dict:
    """Top-1 of a cosine kNN classifier on per-item features."""
    tr, te = train.per_item(), test.per_item()
    c = int(max(tr.label.max(), te.label.max()) + 1)
    scores = knn_predict(tr.x, tr.label, te.x, k=k, temperature=temperature, num_classes=c)
    return {"top1": float((scores.argmax(1) == te.label).mean()), "k": k, "temperature": temperature,
            "n_train": len(tr.x), "n_test": len(te.x)}


def linear_probe(train: Features, test: Features, c_grid=(0.1, 1.0, 10.0), max_iter: int = 1000,
                 seed: int = 0, val_fraction: float = 0.2) -> dict:
    """Logistic regression on standardised per-item features.

    C is chosen on a stratified held-out `val_fraction` of the training items (never the test set), then
    the model is refitted on all training items. With fewer than 2 items per class, the first C is used.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    tr, te = train.per_item(), test.per_item()
    sc = StandardScaler().fit(tr.x)
    xtr, xte = sc.transform(tr.x), sc.transform(te.x)

    def fit(x, y, c):
        return LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(x, y)

    chosen, val_acc = c_grid[0], {}
    counts = np.bincount(tr.label)
    if len(c_grid) > 1 and counts[counts > 0].min() >= 2 and len(tr.x) >= 10:
        from sklearn.model_selection import train_test_split
        a, b, ya, yb = train_test_split(xtr, tr.label, test_size=val_fraction, random_state=seed,
                                        stratify=tr.label if counts[counts > 0].min() >= 5 else None)
        if len(np.unique(ya)) > 1:
            val_acc = {str(c): float((fit(a, ya, c).predict(b) == yb).mean()) for c in c_grid}
            chosen = max(c_grid, key=lambda c: val_acc[str(c)])
    clf = fit(xtr, tr.label, chosen)
    return {"top1": float((clf.predict(xte) == te.label).mean()), "c": chosen, "val_acc_by_c": val_acc,
            "n_train": len(tr.x), "n_test": len(te.x)}
