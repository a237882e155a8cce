"""Online evaluation during pretraining: is the representation any good, and is it collapsing?

A CrissCross run has no negatives, so it can fail quietly. Every `eval.every` steps (and at the end)
the main rank embeds a fixed held-out set and reports, in metrics.jsonl (`kind: "eval"`):

* `knn_video`, `knn_audio` — leave-one-out cosine kNN top-1 on the backbone features (labels from the
  manifest; absent when the clips carry fewer than two labels);
* `r1_a2v`, `r1_v2a` — cross-modal Recall@1 in the head space: the audio predictor's output p_a
  queries the video projections z_v (and back), which is what the loss aligns; `chance_r1` = 1/N;
* `sync_cos`, `async_cos`, `sync_gap` — mean cos(p_a, z_v) for the audio window drawn with the video
  window (view 1's pair) and for the audio window the configured relation puts apart (view 2's audio
  against view 1's video), and their difference: the quantity CrissCross is about.

The held-out windows are drawn once per clip from a generator of their own and decoded once, at
start; evaluation runs the frozen model in eval mode under no_grad and touches no random generator,
no parameter and no BatchNorm statistic, so a run with online evaluation trains bit-identically to one
without (tests/test_online_eval.py).

    ev = OnlineEvaluator.from_config(cfg, device)        # None when eval.manifest is empty
    rec = ev(model, step)                                # {"kind": "eval", "step": ..., ...}
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .config import Config
from .data.decode import DecodeError, decode_windows
from .data.manifest import read_manifest, select_split
from .data.pipeline import EvalTransform
from .data.sampling import sample_views

_SEED_SALT = 7919                    # the held-out windows' generator: never the training stream's


class OnlineEvaluator:
    """A fixed held-out set (decoded once) and the metrics above; call it with the model and the step."""

    def __init__(self, cfg: Config, device: torch.device, progress: bool = False):
        e, d = cfg.eval, cfg.data
        self.cfg, self.device, self.knn_k, self.every = cfg, device, e.knn_k, e.every
        m = read_manifest(e.manifest, root=e.root or None, on_error="collect")
        rows = [r for r in select_split(m.rows, e.split) if r.has_video and r.has_audio][: e.max_items]
        self.dropped = {"manifest_problems": len(m.problems), "undecodable": []}
        crop = cfg.aug.video.crop_size
        side = int(crop / 0.875)
        video, audio1, audio2, labels = [], [], [], []
        for i, r in enumerate(rows):
            rng = np.random.default_rng([cfg.train.seed, _SEED_SALT, i])
            w = sample_views(d.relation, r.video_limits, r.audio_limits, d.video_duration, d.audio_duration,
                             rng, centred=d.centred)
            try:
                frames, waves = decode_windows(m.root / r.path, [w.v1], [w.a1, w.a2], fps=d.video_fps,
                                               short_side=side, size=(side, side), audio_rate=d.audio_rate,
                                               short_clip="pad", no_audio="silence")
            except DecodeError as exc:
                self.dropped["undecodable"].append(f"{r.path}: {exc}")
                continue
            video.append(frames[0])
            audio1.append(waves[0])
            audio2.append(waves[1])
            labels.append(r.label)
        if len(video) < 2:
            raise DecodeError(f"eval.manifest {e.manifest}: fewer than 2 usable clips (split {e.split!r}, "
                              f"with video and audio, decodable): {self.dropped}")
        self.video = torch.from_numpy(np.stack(video))                  # uint8 [N, T, s, s, 3]
        self.audio = torch.from_numpy(np.stack([np.stack(audio1), np.stack(audio2)], 1))  # [N, 2, S]
        names = sorted(set(labels) - {""})
        self.labels = (torch.tensor([names.index(x) if x in names else -1 for x in labels])
                       if len(names) >= 2 and "" not in labels else None)
        self.transform = EvalTransform(cfg.aug, d.audio_rate).to(device)
        self.n = len(video)
        left = len(m.problems) + len(self.dropped["undecodable"])
        print(f"[crisscross] online evaluation: {self.n} held-out clips of {e.manifest} "
              f"(split {e.split!r}; {len(labels) and len(names)} labels; {left} rows left out"
              f"{': ' + '; '.join(self.dropped['undecodable'][:3]) if self.dropped['undecodable'] else ''}), "
              f"every {e.every or 'end-of-run'} steps", flush=True)

    def due(self, step: int, stop_step: int) -> bool:
        """Evaluate after this step? Every `eval.every` steps, and at the last step."""
        return step == stop_step or (self.every > 0 and step % self.every == 0)

    @classmethod
    def from_config(cls, cfg: Config, device: torch.device) -> Optional["OnlineEvaluator"]:
        return cls(cfg, device) if cfg.eval.manifest else None

    @torch.no_grad()
    def embed(self, model, batch: int = 32) -> dict:
        """{"hv", "zv", "pv", "ha", "za1", "pa1", "za2", "pa2"}: [N, D] float32 on the CPU."""
        out: dict = {k: [] for k in ("hv", "zv", "pv", "ha", "za1", "pa1", "za2", "pa2")}
        for s in range(0, self.n, batch):
            v = self.transform.video(self.video[s:s + batch].to(self.device))       # [b, 3, T, c, c]
            hv = model.video_backbone(v).flatten(1)
            zv = model.video_projector(hv)
            out["hv"].append(hv), out["zv"].append(zv), out["pv"].append(model.video_predictor(zv))
            for k in (1, 2):
                a = self.transform.audio(self.audio[s:s + batch, k - 1].to(self.device))   # [b, 1, F, T]
                ha = model.audio_backbone(a).flatten(1)
                za = model.audio_projector(ha)
                if k == 1:
                    out["ha"].append(ha)
                out[f"za{k}"].append(za), out[f"pa{k}"].append(model.audio_predictor(za))
        return {k: torch.cat(v).float().cpu() for k, v in out.items()}

    def __call__(self, model, step: int) -> dict:
        """Evaluate `model` (a CrissCross, not the DDP wrapper) at `step`; its train/eval mode is restored."""
        t0 = time.perf_counter()
        was_training = model.training
        model.eval()
        try:
            e = self.embed(model)
        finally:
            model.train(was_training)
        rec = {"kind": "eval", "step": int(step), "n_items": self.n}
        if self.labels is not None:
            rec["knn_video"] = knn_loo_top1(e["hv"], self.labels, self.knn_k)
            rec["knn_audio"] = knn_loo_top1(e["ha"], self.labels, self.knn_k)
        rec["r1_a2v"] = recall_at_1(e["pa1"], e["zv"])
        rec["r1_v2a"] = recall_at_1(e["pv"], e["za1"])
        rec["chance_r1"] = 1.0 / self.n
        sync = F.cosine_similarity(e["pa1"], e["zv"], dim=1).mean().item()
        asyn = F.cosine_similarity(e["pa2"], e["zv"], dim=1).mean().item()
        rec.update(sync_cos=sync, async_cos=asyn, sync_gap=sync - asyn,
                   seconds=round(time.perf_counter() - t0, 3), time=time.time())
        return rec


def knn_loo_top1(x: torch.Tensor, labels: torch.Tensor, k: int = 20) -> float:
    """Leave-one-out cosine kNN (majority vote of the k nearest other clips) top-1 accuracy. x: [N, D]."""
    xn = F.normalize(x, dim=1)
    sim = xn @ xn.T
    sim.fill_diagonal_(-float("inf"))
    k = min(k, len(x) - 1)
    idx = sim.topk(k, dim=1).indices                                   # [N, k]
    votes = F.one_hot(labels[idx], int(labels.max()) + 1).sum(1)       # [N, C]
    return float((votes.argmax(1) == labels).float().mean())


def recall_at_1(queries: torch.Tensor, gallery: torch.Tensor) -> float:
    """Fraction of queries i whose most cosine-similar gallery row is row i. [N, D] each."""
    sim = F.normalize(queries, dim=1) @ F.normalize(gallery, dim=1).T
    return float((sim.argmax(1) == torch.arange(len(sim))).float().mean())


def format_eval(rec: dict) -> str:
    """One line for the log: what was measured, on how many clips, at which step."""
    pct = lambda v: f"{100 * v:.1f} %"
    knn = (f"kNN top-1 video {pct(rec['knn_video'])} / audio {pct(rec['knn_audio'])}, "
           if "knn_video" in rec else "")
    return (f"online eval at step {rec['step']} ({rec['n_items']} held-out clips): {knn}"
            f"R@1 a→v {pct(rec['r1_a2v'])} / v→a {pct(rec['r1_v2a'])} (chance {pct(rec['chance_r1'])}), "
            f"sync − async cos {rec['sync_gap']:+.3f} ({rec['sync_cos']:.3f} vs {rec['async_cos']:.3f}); "
            f"{rec['seconds']:.1f} s")
