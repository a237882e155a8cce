"""UCF101 / HMDB51 full fine-tuning (docs/evaluation.md, "Fine-tuning").

    hp = finetune_hparams("ucf101", "kinetics400", frames=8)         # batch, lr, gamma, milestones, dropout
    res = run_finetune(backbone, train_items, test_items, 101, FinetuneConfig(frames=8, **hp))

Model: the pretrained R(2+1)D, conv5x → AdaptiveMaxPool3d(1) → [Dropout] → Linear (orthogonal, zero
bias); the whole network is trained. SGD (momentum 0.9, no weight decay), MultiStepLR per epoch,
20 epochs; every epoch visits each training video `clips_per_video` times with one random clip and the
strong video augmentation (crop 224, no blur). Test: `test_clips` evenly spaced clips over the whole
video, softmax averaged. Reported: last-epoch top-1 (`mean`); with `eval_each_epoch` the release's
best-over-epochs test top-1 is reported too as `best_over_epochs_test` (test-set selection, as the release reports).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.manifest import ManifestError
from .features import VideoSettings, _eval_video
from .media import Item, dense_starts, load_video_windows, media_duration

# (dataset, pretraining group, frames) → hyper-parameters of the release's configs (identical for folds 1–3).
# Pretraining group "kinetics" covers Kinetics-Sound and Kinetics400 (their configs are identical).
FT_TABLE = {
    ("ucf101", "kinetics", 8): dict(batch_size=64, lr=5e-4, gamma=0.3, milestones=(6, 10, 14), dropout=0.0),
    ("ucf101", "kinetics", 32): dict(batch_size=32, lr=7e-5, gamma=0.3, milestones=(8, 12, 16), dropout=0.0),
    ("ucf101", "audioset", 8): dict(batch_size=64, lr=7e-5, gamma=0.1, milestones=(8, 12, 16), dropout=0.1),
    ("ucf101", "audioset", 32): dict(batch_size=32, lr=7e-5, gamma=0.3, milestones=(8, 12, 16), dropout=0.0),
    ("hmdb51", "kinetics", 8): dict(batch_size=64, lr=5e-4, gamma=0.1, milestones=(6, 10, 14), dropout=0.0),
    ("hmdb51", "kinetics", 32): dict(batch_size=32, lr=1e-4, gamma=0.3, milestones=(8, 12, 16), dropout=0.0),
    ("hmdb51", "audioset", 8): dict(batch_size=64, lr=1e-4, gamma=0.1, milestones=(8, 12, 16), dropout=0.5),
    ("hmdb51", "audioset", 32): dict(batch_size=32, lr=1e-4, gamma=0.1, milestones=(6, 10, 14), dropout=0.5),
}
NUM_CLASSES = {"ucf101": 101, "hmdb51": 51}


def finetune_hparams(dataset: str, pretrain: str, frames: int) -> dict:
    """The release's fine-tuning hyper-parameters. pretrain: kinetics_sound | kinetics400 | kinetics | audioset."""
    group = "audioset" if pretrain == "audioset" else "kinetics" if pretrain.startswith("kinetics") else None
    key = (dataset.lower(), group, int(frames))
    if key not in FT_TABLE:
        raise KeyError(f"no fine-tuning hyper-parameters for dataset={dataset!r}, pretrain={pretrain!r}, "
                       f"frames={frames}; known: ucf101/hmdb51 × kinetics_sound/kinetics400/audioset × 8/32")
    return dict(FT_TABLE[key])


@dataclass
class FinetuneConfig:
    frames: int = 8
    fps: float = 16.0
    crop_size: int = 224
    epochs: int = 20
    batch_size: int = 64
    lr: float = 5e-4
    gamma: float = 0.3
    milestones: tuple = (6, 10, 14)
    dropout: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    clips_per_video: int = 10      # training clips per video per epoch
    test_clips: int = 10
    eval_each_epoch: bool = False  # True: also the release's best-over-epochs test accuracy
    amp: str = "auto"              # "auto" (bf16 on CUDA), "bf16", "none"
    num_workers: int = 0
    max_steps: int = 0             # stop after this many steps (0 = all epochs); smoke tests
    aug: dict = field(default_factory=lambda: {"blur_p": 0.0})   # VideoAugConfig overrides (no blur, as released)
    seed: int = 0


class VideoClassifier(nn.Module):
    """video `[B,3,T,H,W]` → logits `[B, K]`: backbone conv5x → AdaptiveMaxPool3d(1) → Dropout → Linear."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.backbone = backbone
        dim = getattr(backbone, "output_dim", None)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.LazyLinear(num_classes) if dim is None else nn.Linear(dim, num_classes)
        if dim is not None:
            nn.init.orthogonal_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = F.adaptive_max_pool3d(self.backbone(x, return_embs=True)["conv5x"], 1).flatten(1)
        return self.fc(self.drop(f))


class _TrainClips(torch.utils.data.Dataset):
    """(uint8 clip [T, H, W, 3], label): one random clip per (video, repeat), seeded by (seed, epoch, index)."""

    def __init__(self, items: Sequence[Item], v: VideoSettings, repeats: int, seed: int):
        self.items, self.v, self.repeats, self.seed, self.epoch = list(items), v, repeats, seed, 0
        self.size = (v.decode_short_side, int(round(v.decode_short_side * 4 / 3)))

    def __len__(self):
        return len(self.items) * self.repeats

    def __getitem__(self, i, tries: int = 10):
        """A file that fails to decode here (the CLI screens files first) is replaced by the next item,
        at most `tries` times, then the error propagates naming the file."""
        from crisscross_core.data.decode import DecodeError
        for j in range(tries):
            try:
                return self._clip(i + j)
            except DecodeError:
                if j == tries - 1:
                    raise

    def _clip(self, i):
        it = self.items[i % len(self.items)]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        dur = it.duration or media_duration(it.path)
        start = float(rng.uniform(0, max(0.0, dur - self.v.duration)))
        from crisscross_core.data.decode import decode_windows
        frames, _ = decode_windows(it.path, [(start, self.v.duration)], [], fps=self.v.fps,
                                   short_side=self.v.decode_short_side, size=self.size)
        f = frames[0]
        t = self.v.frames
        if len(f) < t:
            f = f[np.arange(t) % max(1, len(f))]
        return torch.from_numpy(np.ascontiguousarray(f[:t])), it.label


@torch.no_grad()
def evaluate_dense(model: nn.Module, items: Sequence[Item], v: VideoSettings, clips: int = 10,
                   device="cpu", amp_dtype=None, progress: bool = False) -> dict:
    """Video-level top-1/top-5: softmax averaged over `clips` evenly spaced clips per video."""
    from tqdm.auto import tqdm
    model.eval()
    tf = _eval_video(v, device)
    from crisscross_core.data.decode import DecodeError
    probs, labels, failed = [], [], []
    for it in tqdm(items, desc="dense test", disable=not progress, leave=False):
        s = v.decode_short_side
        try:
            dur = it.duration or media_duration(it.path)
            x = load_video_windows(it.path, dense_starts(dur, v.duration, clips), v.duration, v.fps, s, (s, s))
        except DecodeError as e:       # counted; the accuracy is over the videos that decode
            failed.append({"rid": it.rid, "path": it.path, "reason": str(e).splitlines()[0]})
            continue
        x = tf(torch.from_numpy(x).to(device))
        with torch.autocast(device_type=torch.device(device).type, dtype=amp_dtype, enabled=amp_dtype is not None):
            p = torch.softmax(model(x).float(), 1).mean(0)
        probs.append(p.cpu().numpy()), labels.append(it.label)
    if not probs:
        raise DecodeError(f"dense test: none of the {len(items)} test videos could be decoded"
                          + (f" (first: {failed[0]['path']}: {failed[0]['reason']})" if failed else ""))
    P, y = np.stack(probs), np.asarray(labels)
    top5 = np.argsort(-P, 1)[:, :5]
    return {"top1": float((P.argmax(1) == y).mean()), "top5": float((top5 == y[:, None]).any(1).mean()),
            "n": len(y), "n_failed": len(failed)}


def _amp_dtype(amp: str, device) -> Optional[torch.dtype]:
    if amp == "bf16" or (amp == "auto" and torch.device(device).type == "cuda"):
        return torch.bfloat16
    return None


def run_finetune(backbone: nn.Module, train_items: Sequence[Item], test_items: Sequence[Item],
                 num_classes: int, cfg: FinetuneConfig, device="cpu", progress: bool = True) -> dict:
    """Fine-tune the whole network; return {"mean": last-epoch top-1, "top5", "per_epoch", ...}."""
    from crisscross_core.config import VideoAugConfig
    from crisscross_core.data.video_aug import VideoAugment
    from tqdm.auto import tqdm
    leak = {i.rid for i in train_items} & {i.rid for i in test_items}
    if leak:
        raise ManifestError(f"finetune: {len(leak)} videos are in both train and test (e.g. row {min(leak)})")
    torch.manual_seed(cfg.seed)
    v = VideoSettings(fps=cfg.fps, frames=cfg.frames, crop_size=cfg.crop_size)
    model = VideoClassifier(backbone, num_classes, cfg.dropout).to(device)
    aug = VideoAugment(VideoAugConfig(crop_size=cfg.crop_size, **cfg.aug))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), gamma=cfg.gamma)
    ds = _TrainClips(train_items, v, cfg.clips_per_video, cfg.seed)
    amp = _amp_dtype(cfg.amp, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    per_epoch, step, t0 = [], 0, time.time()
    for ep in range(cfg.epochs):
        ds.epoch = ep
        loader = torch.utils.data.DataLoader(ds, batch_size=min(cfg.batch_size, len(ds)), shuffle=True,
                                             drop_last=len(ds) >= cfg.batch_size, num_workers=cfg.num_workers,
                                             generator=torch.Generator().manual_seed(cfg.seed + ep))
        model.train()
        losses, correct, seen, te = [], 0, 0, time.time()
        for clips, y in tqdm(loader, desc=f"finetune ep {ep}", disable=not progress, leave=False):
            x = aug(clips.to(device), generator=gen)
            y = y.to(device)
            with torch.autocast(device_type=torch.device(device).type, dtype=amp, enabled=amp is not None):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            step += 1
            if cfg.max_steps and step >= cfg.max_steps:
                break
        sched.step()
        rec = {"epoch": ep, "loss": float(np.mean(losses)), "train_top1": correct / max(1, seen),
               "lr": opt.param_groups[0]["lr"], "clips_per_s": seen / max(1e-9, time.time() - te)}
        last = ep == cfg.epochs - 1 or (cfg.max_steps and step >= cfg.max_steps)
        if cfg.eval_each_epoch or last:
            rec.update({f"test_{k}": val for k, val in evaluate_dense(model, test_items, v, cfg.test_clips,
                                                                     device, amp).items()})
        per_epoch.append(rec)
        if progress:
            print(f"[finetune] epoch {ep}: " + ", ".join(f"{k} {val:.4g}" for k, val in rec.items()
                                                       if isinstance(val, float)), flush=True)
        if last:
            break
    final = per_epoch[-1]
    tested = [e["test_top1"] for e in per_epoch if "test_top1" in e]
    out = {"config": asdict(cfg), "mean": final["test_top1"], "std": None, "top5": final["test_top5"],
           "last_epoch_top1": final["test_top1"], "per_epoch": per_epoch, "steps": step,
           "n_train": len(train_items), "n_test": len(test_items), "seconds": round(time.time() - t0, 2)}
    if cfg.eval_each_epoch:
        out["best_over_epochs_test"] = max(tested)
    return out
