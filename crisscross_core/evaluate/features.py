"""One feature extractor for every protocol: video or audio encoder, any manifest, clip or dense.

    enc = load_encoder("vid_crisscross_kinetics_400.pth.tar", "video")      # or a run directory
    feats = extract_features(VideoFeatures(enc), items, "video", windows=10)  # Features(x, rid, label, window)

Featurizers map a batch of model inputs to `[B, D]`:
* `AudioFeatures(backbone, "conv5x")`: conv5x `[B,C,F',T']` → MaxPool2d((1,3),(1,2)) over time → flatten →
  L2 norm of the flattened vector (docs/evaluation.md; `legacy_norm=True`: the release's L2 norm over
  the last (time) axis of the 4-D map). `"pool"`: the backbone's pooled `[B, C]` output.
* `VideoFeatures(backbone, "pool" | "maxpool")`: pooled output, or AdaptiveMaxPool3d(1) of conv5x.
* `LogMelStats()`: per-mel-bin mean and std over time of the log-mel, `[B, 2F]` (a no-network baseline).
Every feature row carries `rid` (the manifest row of its recording) so protocols can prove that test
recordings never reach training.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError
from ..data.decode import DecodeError
from .media import Item, dense_starts, load_audio, load_video_windows, media_duration


# ----------------------------------------------------------------------------- weights / encoders

def file_sha256(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(chunk), b""):
            h.update(b)
    return h.hexdigest()


def resolve_weights(weights, modality: str) -> Path:
    """A weights file, or a run directory: its newest `{vid,aud}_*.pth.tar` export, else `checkpoint.pt`."""
    p = Path(weights)
    if p.is_dir():
        prefix = "vid" if modality == "video" else "aud"
        cands = sorted(p.glob(f"{prefix}_*.pth.tar*"), key=lambda q: q.stat().st_mtime)
        if not cands and (p / "checkpoint.pt").is_file():
            return p / "checkpoint.pt"          # unfinished run: backbone keys of the full checkpoint
        if not cands:
            raise FileNotFoundError(f"run directory {p} has no {prefix}_*.pth.tar export and no "
                                    f"checkpoint.pt (train first, or pass a weights file)")
        return cands[-1]
    if not p.is_file():
        raise FileNotFoundError(f"weights not found: {p}")
    return p


from crisscross_core.pretrained import build_backbone, infer_arch  # noqa: E402  (one definition, shared)


RANDOM = "random"


def is_random(weights) -> bool:
    return weights in (None, "", RANDOM)


def load_encoder(weights, modality: str, depth: Optional[int] = None, width: Optional[float] = None,
                 device="cpu", seed: int = 0) -> tuple[nn.Module, dict]:
    """Backbone in eval mode + info {weights, sha256, depth, width, random, seed}.

    `weights`: a released `vid_crisscross_*` / `aud_crisscross_*` file (zip-wrapped or not), our exported
    backbone, a full checkpoint, or a run directory; "random" (or None) = random init seeded by `seed`
    (the same `seed` always gives the same network, whatever the global RNG state: load it once and use
    it for every split of an evaluation).
    """
    info = {"weights": None, "sha256": None, "modality": modality, "random": is_random(weights)}
    state = None
    if not is_random(weights):
        from crisscross_core import checkpoint
        path = resolve_weights(weights, modality)
        state = checkpoint.load_released(str(path), modality)
        d, w = infer_arch(state, modality)
        depth, width = depth or d, width or w
        info.update(weights=str(path), sha256=file_sha256(path))
    depth, width = depth or 18, width or 1.0
    if state is None:
        with torch.random.fork_rng(devices=[]):     # seeded init that leaves the caller's RNG alone
            torch.manual_seed(seed)
            model = build_backbone(modality, depth, width)
        info["seed"] = seed
    else:
        model = build_backbone(modality, depth, width)
        from crisscross_core import checkpoint
        rep = checkpoint.load_backbone(model, str(info["weights"]), modality, strict=True)
        info["loaded_keys"] = len(rep.loaded)
    info.update(depth=depth, width=width)
    return model.to(device).eval(), info


def identity(obj) -> dict:
    """What a featurizer or transform computes, for cache keys: its class, its plain settings (numbers,
    strings, dataclass configs), its architecture (module repr) and a sha256 of every parameter and buffer.
    Two different networks (architecture or weights) never share an identity."""
    from dataclasses import is_dataclass
    if obj is None:
        return {}
    out: dict = {"class": f"{type(obj).__module__}.{type(obj).__qualname__}"}
    attrs = {}
    for k, v in sorted(vars(obj).items()) if hasattr(obj, "__dict__") else []:
        if k.startswith("_") or k == "training":      # features are always computed in eval mode
            continue
        if isinstance(v, (int, float, str, bool, tuple)) or v is None:
            attrs[k] = v
        elif is_dataclass(v) and not isinstance(v, type):
            attrs[k] = asdict(v)
    out["attrs"] = attrs
    if isinstance(obj, nn.Module):
        h = hashlib.sha256()
        for k, v in obj.state_dict().items():
            t = v.detach().cpu().contiguous().reshape(-1)
            h.update(f"{k}|{tuple(v.shape)}|{v.dtype}|".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
        out["repr"] = repr(obj)
        out["state_sha256"] = h.hexdigest()
    return out


# ----------------------------------------------------------------------------- featurizers

def svm_pool(conv5x: torch.Tensor, legacy_norm: bool = False) -> torch.Tensor:
    """conv5x `[B, C, F', T']` → MaxPool2d((1,3),(1,2)) → `[B, C·F'·T'']`, L2-normalised."""
    x = F.max_pool2d(conv5x, kernel_size=(1, 3), stride=(1, 2))
    if legacy_norm:
        return F.normalize(x, dim=-1).flatten(1)
    return F.normalize(x.flatten(1), dim=1)


class AudioFeatures(nn.Module):
    """log-mel `[B,1,F,T]` → `[B, D]` from a frozen audio backbone ('conv5x' SVM features or 'pool')."""

    def __init__(self, backbone: nn.Module, mode: str = "conv5x", legacy_norm: bool = False):
        super().__init__()
        if mode not in ("conv5x", "pool"):
            raise ConfigError(f"AudioFeatures mode must be 'conv5x' or 'pool', got {mode!r}")
        self.backbone, self.mode, self.legacy_norm = backbone, mode, legacy_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "pool":
            return self.backbone(x).flatten(1)
        return svm_pool(self.backbone(x, return_embs=True)["conv5x"], self.legacy_norm)


class VideoFeatures(nn.Module):
    """video `[B,3,T,H,W]` → `[B, D]`: 'pool' (backbone output) or 'maxpool' (AdaptiveMaxPool3d of conv5x)."""

    def __init__(self, backbone: nn.Module, mode: str = "pool"):
        super().__init__()
        if mode not in ("pool", "maxpool"):
            raise ConfigError(f"VideoFeatures mode must be 'pool' or 'maxpool', got {mode!r}")
        self.backbone, self.mode = backbone, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "pool":
            return self.backbone(x).flatten(1)
        return F.adaptive_max_pool3d(self.backbone(x, return_embs=True)["conv5x"], 1).flatten(1)


class LogMelStats(nn.Module):
    """log-mel `[B,1,F,T]` → `[B, 2F]`: per-bin mean and std over time (no learned weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1, 2) if x.dim() == 4 else x
        return torch.cat([x.mean(-1), x.std(-1)], dim=1)


# ----------------------------------------------------------------------------- front ends

@dataclass
class AudioSettings:
    """How audio windows are made: `clip_duration` seconds per window; the kit's log-mel front end (data.audio)."""
    rate: int = 16000
    n_fft: int = 1024
    hop: int = 160
    n_mels: int = 80
    clip_duration: float = 2.0

    @property
    def frames(self) -> int:            # 201 for 2 s, 501 for 5 s (centre=True STFT)
        return int(round(self.clip_duration * self.rate / self.hop)) + 1


@dataclass
class VideoSettings:
    fps: float = 16.0
    frames: int = 8
    crop_size: int = 112
    short_side: Optional[int] = None     # decode short side; None = crop_size / 0.875

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    @property
    def decode_short_side(self) -> int:
        return self.short_side or int(self.crop_size / 0.875)


def settings_for(cfg) -> tuple[VideoSettings, AudioSettings]:
    """(VideoSettings, AudioSettings) matching a pretraining Config's data and augmentation sizes."""
    d, a = cfg.data, cfg.aug.audio
    v = VideoSettings(fps=d.video_fps, frames=int(round(d.video_duration * d.video_fps)),
                      crop_size=cfg.aug.video.crop_size, short_side=d.decode_short_side or None)
    return v, AudioSettings(rate=d.audio_rate, n_fft=a.n_fft, hop=a.hop, n_mels=a.n_mels,
                            clip_duration=d.audio_duration)


_LOGMEL_CACHE: dict = {}


def logmel(s: AudioSettings, device="cpu") -> nn.Module:
    """The kit's LogMel front end (crisscross_core.data.audio.LogMel), cached per settings/device."""
    key = (s.rate, s.n_fft, s.hop, s.n_mels, str(device))
    if key not in _LOGMEL_CACHE:
        from crisscross_core.data.audio import LogMel
        _LOGMEL_CACHE[key] = LogMel(rate=s.rate, n_fft=s.n_fft, hop=s.hop, n_mels=s.n_mels).to(device).eval()
    return _LOGMEL_CACHE[key]


def audio_train_transform(s: AudioSettings, aug_cfg=None, device="cpu") -> Callable:
    """Training audio augmentation as the release's SVM protocol uses it (volume jitter, masks, resize-crop,
    time warp on): wave `[B,N]` → `[B,1,F,T]`."""
    from crisscross_core.config import AudioAugConfig
    from crisscross_core.data.audio import AudioAugment
    cfg = aug_cfg or AudioAugConfig(n_fft=s.n_fft, hop=s.hop, n_mels=s.n_mels, time_warp=True)
    aug = AudioAugment(cfg, s.rate)
    if hasattr(aug, "to"):
        aug = aug.to(device)
    return aug


def dense_spec_windows(spec: torch.Tensor, n: int, frames: int) -> torch.Tensor:
    """spectrogram `[1, F, T]` → `n` evenly spaced windows `[n, 1, F, frames]` (zero-padded if T < frames)."""
    t = spec.shape[-1]
    if t < frames:
        spec = F.pad(spec, (0, frames - t))
        t = frames
    starts = [(t - frames) // 2] if n == 1 else np.round(np.linspace(0, t - frames, n)).astype(int)
    return torch.stack([spec[..., s:s + frames] for s in starts])


def legacy_spec_windows(spec: torch.Tensor, n: int, frames: int) -> torch.Tensor:
    """The release's 2 s test crop (a bug, kept behind a flag): spectrogram of the first clip only (`frames`
    columns), n windows of frames−1 columns at offsets linspace(0, 1, n) → [0,…,0,1]."""
    spec = spec[..., :frames]
    starts = np.linspace(0, spec.shape[-1] - (frames - 1), n).astype(int)
    return torch.stack([spec[..., s:s + frames - 1] for s in starts])


# ----------------------------------------------------------------------------- extraction

@dataclass
class Features:
    """x `[M, D]` float32; rid `[M]` recording id (manifest row); label `[M]`; window `[M]` index in item."""
    x: np.ndarray
    rid: np.ndarray
    label: np.ndarray
    window: np.ndarray
    meta: dict = field(default_factory=dict)

    def select(self, mask: np.ndarray) -> "Features":
        return Features(self.x[mask], self.rid[mask], self.label[mask], self.window[mask], dict(self.meta))

    def per_item(self, how: str = "mean", normalize: bool = True) -> "Features":
        """One row per recording: windows L2-normalised (optional) then averaged."""
        x = self.x / (np.linalg.norm(self.x, axis=1, keepdims=True) + 1e-12) if normalize else self.x
        rids, inv = np.unique(self.rid, return_inverse=True)
        out = np.zeros((len(rids), x.shape[1]), np.float32)
        np.add.at(out, inv, x)
        out /= np.bincount(inv)[:, None]
        lab = np.zeros(len(rids), np.int64)
        lab[inv] = self.label
        return Features(out, rids, lab, np.zeros(len(rids), np.int64), dict(self.meta))

    def save(self, path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(path) + ".tmp.npz")
        np.savez(tmp, x=self.x, rid=self.rid, label=self.label, window=self.window,
                 meta=json.dumps(self.meta, default=str))
        tmp.replace(path)

    @classmethod
    def load(cls, path) -> "Features":
        z = np.load(path, allow_pickle=False)
        return cls(z["x"], z["rid"], z["label"], z["window"], json.loads(str(z["meta"])))


def _file_stamp(path: str) -> str:
    try:
        st = Path(path).stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return "missing"


def cache_key(weights_sha: Optional[str], settings: dict, items: Sequence[Item]) -> str:
    """Hash of weights + every setting + the exact item list (paths, row ids, labels, file size and mtime)."""
    h = hashlib.sha256(json.dumps({"w": weights_sha, "s": settings}, sort_keys=True, default=str).encode())
    for it in items:
        h.update(f"{it.rid}|{it.path}|{it.label}|{_file_stamp(it.path)}\n".encode())
    return h.hexdigest()[:24]


ON_ERROR = ("skip", "fail")
# what a broken or odd file raises while it is decoded (anything else is a bug and propagates)
MEDIA_ERRORS = (DecodeError, OSError, ValueError, EOFError, IndexError, ZeroDivisionError)


class _ItemSource(torch.utils.data.Dataset):
    """Decodes one item's raw windows in a worker: audio → waveform [N]; video → uint8 [K,T,H,W,3].
    Returns (i, raw, None), or (i, None, reason) when the file cannot be decoded."""

    def __init__(self, items, modality, a: AudioSettings, v: VideoSettings, windows, crops, seed,
                 legacy_test_crop, pad_to):
        self.items, self.modality, self.a, self.v = items, modality, a, v
        self.windows, self.crops, self.seed = windows, crops, seed
        self.legacy, self.pad_to = legacy_test_crop, pad_to

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        try:
            return i, self._load(self.items[i]), None
        except MEDIA_ERRORS as e:
            return i, None, _reason(e, self.items[i].path)

    def _load(self, it):
        rng = np.random.default_rng([self.seed, it.rid])
        if self.modality == "audio":
            wav = load_audio(it.path, self.a.rate, duration=self.pad_to)
            n = int(round(self.a.clip_duration * self.a.rate))
            if len(wav) < n:
                wav = np.pad(wav, (0, n - len(wav)))
            if self.crops:   # random training crops (waveform), augmented later in a batch
                starts = rng.integers(0, len(wav) - n + 1, size=self.crops)
                return np.stack([wav[s:s + n] for s in starts])
            if self.legacy:
                wav = wav[:n]
            return wav
        dur = it.duration or media_duration(it.path)
        s = self.v.decode_short_side
        if self.crops:   # keep a 4:3 field for the random resized crop of the training augmentation
            starts = rng.uniform(0, max(0.0, dur - self.v.duration), size=self.crops)
            size = (s, int(round(s * 4 / 3)))
        else:            # = EvalVideoTransform's resize + centre crop region, so clips of all files stack
            starts = dense_starts(dur, self.v.duration, self.windows)
            size = (s, s)
        return load_video_windows(it.path, starts, self.v.duration, self.v.fps, s, size)


def _reason(e: BaseException, path=None) -> str:
    """One line: the error's message, without the "<path>: " prefix the decoder puts in front."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    if path is not None and msg.startswith(f"{path}: "):
        msg = msg[len(str(path)) + 2:]
    msg = msg.replace(f": '{path}'", "") if path is not None else msg
    return msg if isinstance(e, DecodeError) else f"{type(e).__name__}: {msg}"


@torch.no_grad()
def extract_features(featurizer: Callable, items: Sequence[Item], modality: str, *,
                     windows: int = 1, crops: int = 0, audio: Optional[AudioSettings] = None,
                     video: Optional[VideoSettings] = None, augment: Optional[Callable] = None,
                     legacy_test_crop: bool = False, pad_to: Optional[float] = None,
                     batch_size: int = 64, device="cpu", seed: int = 0, num_workers: int = 0,
                     cache_dir=None, cache_tag: Optional[dict] = None, progress: bool = True,
                     on_error: str = "skip") -> Features:
    """Features of every item.

    Test / dense mode (`crops=0`): audio → spectrogram of the whole recording, `windows` evenly spaced
    clip-length windows (`legacy_test_crop`: the release's first-2-s crop); video → `windows`
    evenly spaced clips over the file (uint8 → EvalVideoTransform); `windows=1` is one centred window.
    Train mode (`crops=K`): K random clip-length crops per item (seeded by (seed, rid)); audio passes
    through `augment` (wave `[B,N]` → log-mel `[B,1,F,T]`), video through `augment` (uint8 → float).
    `cache_dir`: npz cache keyed by the featurizer's and the augmentation's identity (class, settings,
    architecture, sha256 of every parameter), `cache_tag`, every setting and the items (path, size, mtime).
    `on_error`: "skip" leaves out an item whose file cannot be decoded and lists it in `meta["failed"]`
    ({rid, path, reason}); "fail" raises DecodeError naming the file.
    """
    from tqdm.auto import tqdm
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    a, v = audio or AudioSettings(), video or VideoSettings()
    settings = {"modality": modality, "windows": windows, "crops": crops, "audio": asdict(a),
                "video": asdict(v), "legacy_test_crop": legacy_test_crop, "pad_to": pad_to, "seed": seed,
                "tag": cache_tag or {}}
    path = None
    if cache_dir is not None:
        ident = {"featurizer": identity(featurizer), "augment": identity(augment) if augment else None}
        path = Path(cache_dir) / f"feats_{cache_key(None, {**settings, **ident}, items)}.npz"
        if path.is_file():
            return Features.load(path)
    if isinstance(featurizer, nn.Module):
        featurizer = featurizer.to(device).eval()
    src = _ItemSource(list(items), modality, a, v, windows, crops, seed, legacy_test_crop, pad_to)
    loader = torch.utils.data.DataLoader(src, batch_size=None, shuffle=False, num_workers=num_workers)
    gen = torch.Generator().manual_seed(seed)
    xs, rids, labs, wins = [], [], [], []
    buf, meta_buf, failed = [], [], []

    win_fn = legacy_spec_windows if legacy_test_crop else dense_spec_windows

    def flush():
        if not buf:
            return
        if ready:   # dense audio: spectrogram of each whole recording (batched when lengths agree), windows
            lm = logmel(a, device)
            if len({len(w) for w in buf}) == 1:
                specs = list(lm(torch.stack(buf).to(device)))                 # B × [1, F, T]
            else:
                specs = [lm(w[None].to(device))[0] for w in buf]
            batch = torch.cat([win_fn(sp, windows, a.frames) for sp in specs])   # [B·n, 1, F, frames]
        else:
            batch = torch.cat(buf).to(device)
            if modality == "audio":
                batch = augment(batch, generator=gen) if augment else logmel(a, device)(batch)
            else:
                batch = augment(batch, generator=gen) if augment else _eval_video(v, device)(batch)
        for s in range(0, len(batch), batch_size):
            xs.append(featurizer(batch[s:s + batch_size].float()).float().cpu().numpy())
        for r, l, w in meta_buf:
            rids.append(r), labs.append(l), wins.append(w)
        buf.clear(), meta_buf.clear()

    ready = modality == "audio" and not crops
    pending, t0 = 0, time.perf_counter()
    bar = tqdm(loader, total=len(src), desc=f"{modality} features", disable=not progress, leave=False)
    for i, raw, err in bar:
        it = items[i]
        if err is not None:
            if on_error == "fail":
                raise DecodeError(f"{it.path}: {err} (--on-error skip leaves such files out and counts them)")
            failed.append({"rid": int(it.rid), "path": str(it.path), "reason": err})
            bar.set_postfix(failed=len(failed))
            continue
        raw = torch.as_tensor(np.asarray(raw))
        n = windows if ready else len(raw)
        buf.append(raw)                    # [N] whole-recording wave, [K, N] crops or [K, T, H, W, 3] clips
        meta_buf.extend((it.rid, it.label, k) for k in range(n))
        pending += n
        if pending >= batch_size:
            flush()
            pending = 0
    flush()
    x = np.concatenate(xs) if xs else np.zeros((0, 0), np.float32)
    feats = Features(x.astype(np.float32), np.asarray(rids, np.int64), np.asarray(labs, np.int64),
                     np.asarray(wins, np.int64), {"settings": settings, "failed": failed})
    dt = time.perf_counter() - t0
    feats.meta.update(seconds=round(dt, 3), clips_per_s=round(len(feats.x) / max(dt, 1e-9), 2))
    if failed and progress:
        print(f"[features] {modality}: skipped {len(failed)} of {len(src)} files that could not be decoded "
              f"(first: {failed[0]['path']}: {failed[0]['reason']})", file=sys.stderr, flush=True)
    if failed and not len(feats.x):
        raise DecodeError(f"no {modality} features: all {len(src)} files failed to decode"
                          + (f" (first: {failed[0]['path']}: {failed[0]['reason']})" if failed else ""))
    if path is not None:
        feats.save(path)
    return feats


_VT_CACHE: dict = {}


def _eval_video(v: VideoSettings, device) -> Callable:
    """uint8 `[B, T, H, W, 3]` (or `[B, K, ...]` flattened by the caller) → float `[B, 3, T, c, c]`."""
    key = (v.crop_size, str(device))
    if key not in _VT_CACHE:
        from crisscross_core.data.video_aug import EvalVideoTransform
        t = EvalVideoTransform(v.crop_size)
        _VT_CACHE[key] = t.to(device) if hasattr(t, "to") else t
    t = _VT_CACHE[key]
    return lambda x: t(x.reshape(-1, *x.shape[-4:]))
