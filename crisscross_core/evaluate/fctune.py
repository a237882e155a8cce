"""DCASE-style fc-tuning: a linear head on a frozen audio backbone (docs/evaluation.md, "DCASE").

    res = run_fctune(backbone, train_items, test_items, num_classes, FCTuneConfig(epochs=200))

Head: flatten → L2 norm → Dropout(0.1) → Linear (orthogonal init, zero bias) on conv5x features
(MaxPool2d((1,3),(1,2)) over time; 1 s clips → 512×3×1 = 1536-d). Adam lr 0.007 (constant), weight decay
1e-5, batch 512, drop_last. Each epoch draws `crops_per_epoch` fresh random 1 s crops per training recording
with the training audio augmentation (time warp on) and passes them through the frozen backbone
(`distinct_epochs=K` re-uses K pre-extracted epochs cyclically, a cheaper approximation).
Test: the whole recording (no trim), `test_windows` evenly spaced windows, softmax averaged.
Reported: last-epoch top-1 (`mean`); the release's best-over-epochs test top-1 is `best_over_epochs_test`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.manifest import ManifestError
from .features import AudioFeatures, AudioSettings, Features, audio_train_transform, extract_features
from .media import Item


@dataclass
class FCTuneConfig:
    clip_duration: float = 1.0
    epochs: int = 200
    crops_per_epoch: int = 60
    distinct_epochs: Optional[int] = None   # None: fresh augmented crops every epoch (the release)
    batch_size: int = 512
    lr: float = 0.007
    weight_decay: float = 1e-5
    dropout: float = 0.1
    test_windows: int = 60
    recording_duration: Optional[float] = None   # None: whole file (DCASE 30 s, no trim)
    feature_batch: int = 64
    legacy_norm: bool = False
    seed: int = 0


class LinearHead(nn.Module):
    """features `[B, D]` → L2 norm → Dropout → Linear(D → K), orthogonal weight, zero bias."""

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.orthogonal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(F.normalize(x.flatten(1), dim=1)))


def _accuracy(head: nn.Module, test: Features, device) -> float:
    head.eval()
    with torch.no_grad():
        prob = torch.softmax(head(torch.from_numpy(test.x).to(device)), 1).cpu().numpy()
    rids, inv = np.unique(test.rid, return_inverse=True)
    s = np.zeros((len(rids), prob.shape[1]))
    np.add.at(s, inv, prob)
    lab = np.zeros(len(rids), np.int64)
    lab[inv] = test.label
    return float((s.argmax(1) == lab).mean())


def run_fctune(backbone: nn.Module, train_items: Sequence[Item], test_items: Sequence[Item], num_classes: int,
               cfg: FCTuneConfig, audio: Optional[AudioSettings] = None, augment: Optional[Callable] = None,
               device="cpu", progress: bool = True, on_error: str = "skip") -> dict:
    """Train the head; return {"mean": last-epoch top-1, "best_over_epochs_test", "per_epoch", "failed", ...}.
    Recordings that cannot be decoded are left out (`on_error="skip"`) and listed in `failed`."""
    leak = {i.rid for i in train_items} & {i.rid for i in test_items}
    if leak:
        raise ManifestError(f"fctune: {len(leak)} recordings are in both train and test (e.g. row {min(leak)})")
    a = audio or AudioSettings()
    a = AudioSettings(**{**asdict(a), "clip_duration": cfg.clip_duration})
    augment = augment or audio_train_transform(a, device=device)
    feat = AudioFeatures(backbone, "conv5x", cfg.legacy_norm).to(device).eval()
    common = dict(audio=a, batch_size=cfg.feature_batch, device=device, progress=False,
                  pad_to=cfg.recording_duration, on_error=on_error)
    t0 = time.time()
    test = extract_features(feat, test_items, "audio", windows=cfg.test_windows, seed=cfg.seed, **common)
    torch.manual_seed(cfg.seed)
    head = LinearHead(test.x.shape[1], num_classes, cfg.dropout).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    cache: dict = {}
    per_epoch = []
    failed = {f["rid"]: f for f in test.meta.get("failed", [])}
    from tqdm.auto import trange
    for ep in trange(cfg.epochs, desc="fc-tune", disable=not progress, leave=False):
        key = ep % cfg.distinct_epochs if cfg.distinct_epochs else ep
        if key not in cache:
            tr = extract_features(feat, train_items, "audio", crops=cfg.crops_per_epoch, augment=augment,
                                  seed=cfg.seed * 100003 + key, **common)
            if cfg.distinct_epochs:
                cache[key] = tr
        else:
            tr = cache[key]
        failed.update({f["rid"]: f for f in tr.meta.get("failed", [])})
        head.train()
        g = torch.Generator().manual_seed(cfg.seed + ep)
        perm = torch.randperm(len(tr.x), generator=g)
        bs = min(cfg.batch_size, len(perm))
        losses = []
        for s in range(0, len(perm) - bs + 1, bs):          # drop_last
            idx = perm[s:s + bs]
            x = torch.from_numpy(tr.x[idx.numpy()]).to(device)
            y = torch.from_numpy(tr.label[idx.numpy()]).to(device)
            loss = F.cross_entropy(head(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        per_epoch.append({"epoch": ep, "loss": float(np.mean(losses)) if losses else None,
                          "test_top1": _accuracy(head, test, device)})
    accs = [e["test_top1"] for e in per_epoch]
    return {"config": asdict(cfg), "mean": accs[-1], "std": None, "last_epoch_top1": accs[-1],
            "best_over_epochs_test": max(accs), "best_epoch": int(np.argmax(accs)), "per_epoch": per_epoch,
            "feature_dim": int(test.x.shape[1]), "n_train": len(train_items), "n_test": len(test_items),
            "failed": sorted(failed.values(), key=lambda f: f["rid"]),
            "seconds": round(time.time() - t0, 2)}
