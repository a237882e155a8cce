"""`crisscross embed`: features of your own media (a folder, a manifest, or single files) from any weights.

    out = embed("my_videos/", "runs/k400", "emb/", windows=4, per_window=True)   # resumable
    e = load_embeddings(out)
    e.frame()                          # pandas: one row per feature row (path, item, window, start_s, label …)
    f = e.features("video", "h")       # evaluate.features.Features → retrieval, probes, the notebook explorers
    x = np.load("emb/video_h.npy", mmap_mode="r")    # or plain numpy, memory-mapped

Output directory (the contract the explorers and `evaluate retrieval --embeddings` read):
* `rows.csv` — one line per feature row: `row` (0..N-1), `path`, `item` (clip index 0..I-1), `rid` (row of the
  source manifest), `label` ("" if none), `label_idx` (-1 if none), `split`, `fold`, `window` (index in the
  clip; -1 for a per-clip row), `start_s`, `duration_s` (the span the row covers) and, per embedded modality,
  `video_start_s` / `audio_start_s` (where that modality's window starts: windows of the two modalities share
  their centre, so the 0.5 s video window sits in the middle of the 2 s audio window).
* `<modality>_<space>.npy` — float32 `[N, D]` for modality `video` / `audio` and space `h` (backbone pooled
  features), `z` (projector output) and `p` (predictor output); z and p exist only when the weights carry the
  pretraining heads (a run directory, a full checkpoint, or `random`). Per-clip rows average the windows'
  outputs. Preallocated with `np.lib.format.open_memmap`, so a million rows never sit in memory.
* `windows.npy` — float64 `[I, K, M]`: the start (s) of window k of item i for modality m.
* `status.npy` — int8 `[I, M]` per item and embedded modality (the order of `settings.modalities`):
  0 pending, 1 done, 2 failed (could not be decoded), 3 the file has no such stream. Feature rows of an item
  that is not done hold zeros (pending) or NaN (failed / no stream).
* `embeddings.json` — what produced it: weights (path and sha256, or `random` with seed and architecture),
  settings (modalities, spaces, windows, per-window or per-clip, clip durations, fps, crop, decode and log-mel
  settings), kit version, counts (items, done, failed, no stream), the failed items with their reasons, the
  source rows left out, and `complete` (false while any item is pending).

A rerun with the same inputs and settings continues where the last one stopped (after a crash or kill -9):
finished items are skipped, pending and failed ones are tried again. Different inputs or settings in the same
directory are refused unless `overwrite=True`.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError
from ..data.decode import DecodeError, NoAudioError
from .features import (AudioSettings, Features, MEDIA_ERRORS, VideoSettings, _eval_video, _reason, file_sha256,
                       logmel, settings_for)
from .media import Item, MEDIA_EXTS, dense_starts

ROW_COLUMNS = ["row", "path", "item", "rid", "label", "label_idx", "split", "fold", "window", "start_s",
               "duration_s"]
MODALITIES = ("video", "audio")
SPACES = ("h", "z", "p")
PENDING, DONE, FAILED, NO_STREAM = 0, 1, 2, 3


# ----------------------------------------------------------------------------- sources

def resolve_source(source, root=None, label_column: Optional[str] = None, labels: str = "auto",
                   progress: bool = False) -> tuple[list[Item], dict, list]:
    """(items, source description, rows left out) from a folder, a manifest (.csv) or media files.

    Folder: every media file below it; labels from class folders (`labels="auto"`: when every file sits in
    a folder of its own class, see data.builders.folder; "folders": always the parent folder; "none").
    Manifest: every row with an existing file (labels and splits when it has them; unlabelled rows stay).
    Files: each file, unlabelled. Items get `rid` = their row in the source, durations are probed later.
    """
    srcs = [Path(s) for s in ([source] if isinstance(source, (str, Path)) else list(source))]
    if not srcs:
        raise ConfigError("embed: no source given (a folder, a manifest .csv, or media files)")
    for s in srcs:
        if not s.exists():
            raise FileNotFoundError(f"embed: {s} does not exist")
    if len(srcs) == 1 and srcs[0].is_dir():
        from ..data.builders import folder
        d = srcs[0]
        entries = folder(d, labels=labels)
        if not entries:
            raise FileNotFoundError(f"embed: no media files under {d} (extensions {', '.join(sorted(MEDIA_EXTS))})")
        items = [Item(str(d / e.path), e.label_idx, e.label, "", e.split, 0.0, i) for i, e in enumerate(entries)]
        names = sorted({e.label for e in entries if e.label})
        return items, {"kind": "folder", "path": str(d.resolve()), "name": d.resolve().name,
                       "labels": f"class folders ({len(names)} classes)" if names else "none"}, []
    if len(srcs) == 1 and srcs[0].suffix.lower() in (".csv", ".tsv", ".txt"):
        from .media import load_items
        dropped: list = []
        items, names = load_items(srcs[0], root, require_label=False, label_column=label_column, dropped=dropped)
        return items, {"kind": "manifest", "path": str(srcs[0].resolve()), "name": srcs[0].stem,
                       "labels": (f"column {label_column!r}" if label_column else "manifest") if names else "none"
                       }, dropped
    bad = [s for s in srcs if s.is_dir() or s.suffix.lower() not in MEDIA_EXTS]
    if bad:
        raise ConfigError(f"embed: {bad[0]} is not a media file ({', '.join(MEDIA_EXTS)}); pass one folder, "
                          f"one manifest .csv, or media files")
    items = [Item(str(s), -1, "", "", "", 0.0, i) for i, s in enumerate(srcs)]
    return items, {"kind": "files", "path": str(srcs[0].parent.resolve()), "name": srcs[0].stem,
                   "labels": "none"}, []


def probe_durations(items: list[Item], workers: int = 4, progress: bool = False) -> dict:
    """{item index: (duration s, reason or None)} for items whose duration the source did not give."""
    from concurrent.futures import ThreadPoolExecutor
    from tqdm.auto import tqdm
    from ..data.decode import probe
    todo = [i for i, it in enumerate(items) if not it.duration]

    def one(i):
        try:
            return i, float(probe(items[i].path).duration), None
        except MEDIA_ERRORS as e:
            return i, 0.0, _reason(e, items[i].path)
    out = {}
    with ThreadPoolExecutor(max(1, workers)) as ex:
        for i, d, err in tqdm(ex.map(one, todo), total=len(todo), desc="probing", disable=not progress or not todo,
                              leave=False):
            out[i] = (d, err)
    return out


# ----------------------------------------------------------------------------- weights

class Tower(nn.Module):
    """One modality: input batch → {"h": [B, D], "z": [B, P], "p": [B, P]} (the spaces asked for)."""

    def __init__(self, backbone: nn.Module, projector: Optional[nn.Module] = None,
                 predictor: Optional[nn.Module] = None, pre_norm: bool = False):
        super().__init__()
        self.backbone, self.projector, self.predictor, self.pre_norm = backbone, projector, predictor, pre_norm

    @property
    def spaces(self) -> tuple:
        return SPACES if self.projector is not None else ("h",)

    def forward(self, x: torch.Tensor, spaces=("h",)) -> dict:
        h = self.backbone(x).flatten(1)
        out = {"h": h}
        if "z" in spaces or "p" in spaces:
            z = self.projector(h)
            z = F.normalize(z, dim=1) if self.pre_norm else z
            out["z"] = z
            if "p" in spaces:
                out["p"] = self.predictor(z)
        return {s: out[s] for s in spaces}


@dataclass
class Towers:
    """Loaded weights: a Tower per modality, what they are (info), the input settings they were trained with."""
    towers: dict
    info: dict
    video: VideoSettings
    audio: AudioSettings


def _from_model(model, modalities, cfg) -> dict:
    return {m: Tower(getattr(model, f"{m}_backbone"), getattr(model, f"{m}_projector"),
                     getattr(model, f"{m}_predictor"), getattr(model, "pre_norm", False)) for m in modalities}


def _config_of(ckpt: dict, path: Path):
    """The pretraining Config a full checkpoint was trained with (its own copy, else config.yaml beside it)."""
    from ..config import Config, ModelConfig, from_dict, load_config
    data = ckpt.get("config") if isinstance(ckpt, dict) else None
    if isinstance(data, dict):
        try:
            return from_dict(Config, data)
        except ConfigError:
            cfg = load_config("paper_kinetics400")
            cfg.model = from_dict(ModelConfig, data.get("model") or {})
            return cfg
    side = path.parent / "config.yaml"
    if side.is_file():
        return load_config(side)
    return None


def _modality_of_file(path: Path) -> str:
    name = path.name.lower()
    if name.startswith("vid_"):
        return "video"
    if name.startswith("aud_"):
        return "audio"
    from ..checkpoint import load_released
    w = load_released(path, "video").get("conv1.0.weight")
    if w is None:
        from ..checkpoint import CheckpointError
        raise CheckpointError(f"{path}: no 'conv1.0.weight' key: not a video or audio backbone, a run directory "
                              f"or a full checkpoint")
    return "video" if w.dim() == 5 else "audio"


def load_towers(weights, audio_weights=None, config=None, width: Optional[float] = None,
                depth: Optional[int] = None, seed: int = 0, device="cpu") -> Towers:
    """Every form of weights the kit accepts → Towers.

    * "random": the architecture of `config` (a preset name or YAML; default paper_kinetics400), `width` /
      `depth` overriding the backbones' sizes, initialised from `seed` (heads included);
    * a run directory: its `checkpoint.pt` + `config.yaml` (backbones and heads), else its `vid_*` / `aud_*`
      exports (backbones);
    * a full training checkpoint (backbones and heads; the config is read from it);
    * a released / exported backbone file (.pth.tar or .zip): one modality (from the name vid_/aud_ or its
      layers); `audio_weights` adds an audio backbone file.
    """
    from ..checkpoint import safe_load
    from ..config import load_config
    from ..models.crisscross import CrissCross
    from .features import is_random, load_encoder, resolve_weights
    if weights is None or weights == "":
        raise ConfigError("embed: weights are required: a weights file, a run directory, or 'random' "
                          "(a random-init network seeded by --seed)")
    if is_random(weights):
        cfg = load_config(config or "paper_kinetics400")
        m = cfg.model
        if width:
            m.video_width = m.audio_width = width
        if depth:
            m.video_depth = depth
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = CrissCross.from_config(m)
        info = {"kind": "random", "weights": "random", "seed": seed, "config": cfg.name,
                "architecture": asdict(m)}
        v, a = settings_for(cfg)
        return Towers(_from_model(model, MODALITIES, cfg), info, v, a)
    p = Path(weights)
    if not p.exists():
        raise FileNotFoundError(f"weights not found: {p}")
    ckpt_path = p / "checkpoint.pt" if p.is_dir() else p
    cfg = None
    if p.is_dir() and (p / "config.yaml").is_file():
        cfg = load_config(p / "config.yaml")
    if ckpt_path.is_file() and (not p.is_dir() or cfg is not None):
        ckpt = safe_load(ckpt_path)
        state = ckpt.get("model") if isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict) else ckpt
        keys = list(state) if isinstance(state, dict) else []
        full = any(k.split(".", 1)[-1].startswith(("video_projector.", "audio_projector."))
                   or k.startswith(("video_projector.", "audio_projector.")) for k in keys)
        if full:
            cfg = cfg or _config_of(ckpt, ckpt_path)
            if cfg is None:
                from ..checkpoint import CheckpointError
                raise CheckpointError(f"{ckpt_path}: a full checkpoint without its config (no 'config' entry, no "
                                      f"config.yaml beside it); cannot build its heads")
            model = CrissCross.from_config(cfg.model)
            state = {k[len("module."):] if k.startswith("module.") else k: t for k, t in state.items()}
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as e:
                from ..checkpoint import CheckpointError
                raise CheckpointError(f"{ckpt_path}: does not fit its config's model "
                                      f"({str(e).splitlines()[0]})") from None
            info = {"kind": "checkpoint", "weights": str(ckpt_path), "sha256": file_sha256(ckpt_path),
                    "step": ckpt.get("step") if isinstance(ckpt, dict) else None, "config": cfg.name,
                    "architecture": asdict(cfg.model)}
            v, a = settings_for(cfg)
            return Towers(_from_model(model, MODALITIES, cfg), info, v, a)
    # backbones only: a run directory's exports, or released / exported files
    files = {}
    if p.is_dir():
        for m in MODALITIES:
            try:
                files[m] = resolve_weights(p, m)
            except FileNotFoundError:
                pass
        if not files:
            raise FileNotFoundError(f"{p}: no checkpoint.pt with config.yaml and no vid_*/aud_* exports "
                                    f"(train first, or pass a weights file)")
    else:
        files[_modality_of_file(p)] = p
    if audio_weights:
        files["audio"] = Path(audio_weights)
    towers, info = {}, {"kind": "backbone", "weights": None, "sha256": None}
    for m, f in files.items():
        enc, einfo = load_encoder(f, m, device="cpu")
        towers[m] = Tower(enc)
        info[m] = {k: einfo.get(k) for k in ("weights", "sha256", "depth", "width")}
    first = info[next(iter(files))]
    info.update(weights=first["weights"], sha256=first["sha256"])
    v, a = settings_for(cfg) if cfg is not None else (VideoSettings(), AudioSettings())
    return Towers(towers, info, v, a)


# ----------------------------------------------------------------------------- windows and rows

def window_plan(duration: float, n: int, durations: dict) -> list[dict]:
    """n windows over a file: each {"start": s, "span": d, "<modality>": modality start}. The span is the
    longest modality's window (evenly spaced over the file, evaluate.media.dense_starts); every modality's
    window is centred in it."""
    d_max = max(durations.values())
    out = []
    for s in dense_starts(duration, d_max, n):
        w = {"start": float(s), "span": float(d_max)}
        for m, d in durations.items():
            w[m] = float(s + (d_max - d) / 2)
        out.append(w)
    return out


def _iter_rows(items, starts: np.ndarray, per_window: bool, durations: dict, modalities, first_item: int = 0):
    """rows.csv lines (dicts) of `items`, numbered from item `first_item`: one per window, or one per clip
    spanning its windows. `starts` `[I, K, M]`: modality window starts."""
    d_max = max(durations.values())
    k_all = starts.shape[1]
    rpi = k_all if per_window else 1
    for n, it in enumerate(items):
        i = first_item + n
        st = starts[n]
        span0 = [float(st[k].min()) for k in range(k_all)]            # span start = earliest modality start
        for k in (range(k_all) if per_window else [-1]):
            if k >= 0:
                start, span, ms = span0[k], d_max, st[k]
            else:        # per clip: from the first window's start to the last window's end
                start, span, ms = span0[0], span0[-1] + d_max - span0[0], st[0]
            r = {"row": i * rpi + max(k, 0), "path": it.path, "item": i, "rid": it.rid, "label": it.label_name or "",
                 "label_idx": it.label if it.label_name else -1, "split": it.split, "fold": it.fold, "window": k,
                 "start_s": round(start, 4), "duration_s": round(span, 4)}
            for j, m in enumerate(modalities):
                r[f"{m}_start_s"] = round(float(ms[j]), 4)
            yield r


def _write_csv(rows, path: Path, modalities) -> None:
    """Stream rows (an iterable of dicts) to `path` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ROW_COLUMNS + [f"{m}_start_s" for m in modalities], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def _read_csv(path: Path) -> list[dict]:
    ints = {"row", "item", "rid", "label_idx", "window"}
    floats = {"start_s", "duration_s", "video_start_s", "audio_start_s"}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in list(r):
            if k in ints:
                r[k] = int(r[k])
            elif k in floats:
                r[k] = float(r[k])
    return rows


def _write_json(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


# ----------------------------------------------------------------------------- decoding in workers

class _Source(torch.utils.data.Dataset):
    """Item j → (item index, {modality: uint8 video [K,T,H,W,3] / float audio [K,N] / None},
    {modality: (status, reason)}) — one container open per item; a missing stream or a broken file is
    reported, never raised."""

    def __init__(self, items, todo, starts, modalities, v: VideoSettings, a: AudioSettings):
        self.items, self.todo, self.starts, self.mods, self.v, self.a = items, todo, starts, modalities, v, a

    def __len__(self):
        return len(self.todo)

    def __getitem__(self, j):
        from ..data.decode import decode_windows
        i = self.todo[j]
        path, st = self.items[i].path, self.starts[i]                      # [K, M]
        s = self.v.decode_short_side
        col = {m: j for j, m in enumerate(self.mods)}
        vw = [(float(t), self.v.duration) for t in st[:, col["video"]]] if "video" in col else []
        aw = [(float(t), self.a.clip_duration) for t in st[:, col["audio"]]] if "audio" in col else []
        out, state = {}, {}

        def decode(vw, aw):
            if not vw and not aw:
                return [], []
            return decode_windows(path, vw, aw, fps=self.v.fps, short_side=s, size=(s, s), audio_rate=self.a.rate)
        try:
            try:
                frames, waves = decode(vw, aw)
            except NoAudioError:                          # a video without sound: keep its video
                state["audio"] = (NO_STREAM, "no audio stream")
                aw = []
                frames, waves = decode(vw, aw)
            except DecodeError as e:                      # a sound file: keep its audio
                if not (vw and "no video stream" in str(e)):
                    raise
                state["video"] = (NO_STREAM, "no video stream")
                vw = []
                frames, waves = decode(vw, aw)
            if vw:
                t = self.v.frames
                clips = []
                for f in frames:
                    f = np.asarray(f)
                    if len(f) == 0:
                        raise DecodeError(f"{path}: no video frames decoded")
                    clips.append(f[np.arange(t) % len(f)][:t] if len(f) < t else f[:t])
                out["video"] = np.stack(clips)
            if waves:
                out["audio"] = np.stack(waves).astype(np.float32)
        except MEDIA_ERRORS as e:
            msg = _reason(e, path)
            for m in self.mods:
                if m not in out and m not in state:
                    state[m] = (FAILED, msg)
        for m in self.mods:
            if m in out:
                state[m] = (DONE, None)
            state.setdefault(m, (FAILED, "not decoded"))
        return i, out, state


# ----------------------------------------------------------------------------- embed

def _fingerprint(items, settings: dict, weights_id: dict) -> str:
    h = hashlib.sha256(json.dumps({"s": settings, "w": weights_id}, sort_keys=True, default=str).encode())
    for it in items:
        try:
            size = os.path.getsize(it.path)
        except OSError:
            size = -1
        h.update(f"{it.path}|{size}|{it.label_name}|{it.split}\n".encode())
    return h.hexdigest()[:32]


def embed(source, weights, out, *, audio_weights=None, modalities: Optional[Sequence[str]] = None,
          spaces: Optional[Sequence[str]] = None, windows: int = 4, per_window: bool = False,
          config=None, width: Optional[float] = None, depth: Optional[int] = None, seed: int = 0,
          frames: Optional[int] = None, fps: Optional[float] = None, crop_size: Optional[int] = None,
          clip_duration: Optional[float] = None, root=None, label_column: Optional[str] = None,
          labels: str = "auto", batch_size: int = 32, num_workers: int = 0, device="cpu",
          overwrite: bool = False, progress: bool = True, on_error: str = "skip",
          save_every_s: float = 30.0) -> Path:
    """Embed every item of `source` with `weights` into the directory `out` (see the module docstring).

    `windows` evenly spaced windows per item; `per_window=False` writes one row per item (the windows'
    mean), True one row per window. `modalities` (default: those the weights have) and `spaces` (default: h,
    plus z and p when the weights have heads). Video/audio input settings default to the weights' training
    config (a run directory, a checkpoint, `config` for random), else the paper's (8 frames at 16 fps,
    112 px crop; 2 s of 16 kHz audio); `frames`, `fps`, `crop_size`, `clip_duration` override them.
    `on_error="skip"` counts and lists a file that cannot be decoded and goes on; "fail" stops at it.
    Returns `out`.
    """
    from tqdm.auto import tqdm
    from .. import __version__
    if on_error not in ("skip", "fail"):
        raise ConfigError(f"embed: on_error must be 'skip' or 'fail', got {on_error!r}")
    if windows < 1:
        raise ConfigError(f"embed: windows must be >= 1, got {windows}")
    out = Path(out)
    t_start = time.perf_counter()
    items, src_meta, dropped = resolve_source(source, root, label_column, labels, progress)
    tw = load_towers(weights, audio_weights, config, width, depth, seed)
    mods = tuple(modalities) if modalities else tuple(m for m in MODALITIES if m in tw.towers)
    for m in mods:
        if m not in MODALITIES:
            raise ConfigError(f"embed: modality {m!r} is not one of {MODALITIES}")
        if m not in tw.towers:
            raise ConfigError(f"embed: the weights {weights} have no {m} backbone (they give "
                              f"{', '.join(tw.towers)}){'; add --audio-weights' if m == 'audio' else ''}")
    have = {m: tw.towers[m].spaces for m in mods}
    if spaces:
        spaces = tuple(spaces)
        for m in mods:
            miss = [s for s in spaces if s not in have[m]]
            if miss:
                raise ConfigError(f"embed: the {m} weights have no pretraining heads, so no space {miss[0]!r} "
                                  f"(only h); z and p need a run directory, a full checkpoint or 'random'")
    space_of = {m: tuple(spaces) if spaces else have[m] for m in mods}
    v, a = tw.video, tw.audio
    if frames or fps or crop_size:
        v = VideoSettings(fps=fps or v.fps, frames=frames or v.frames, crop_size=crop_size or v.crop_size,
                          short_side=None if crop_size else v.short_side)
    if clip_duration:
        a = AudioSettings(**{**asdict(a), "clip_duration": clip_duration})
    durations = {m: (v.duration if m == "video" else a.clip_duration) for m in mods}
    settings = {"modalities": list(mods), "spaces": {m: list(space_of[m]) for m in mods}, "windows": windows,
                "per_window": per_window, "rows_per_item": windows if per_window else 1,
                "window_seconds": durations, "video": asdict(v), "audio": asdict(a),
                "decode_short_side": v.decode_short_side, "pooling": None if per_window else "mean of windows"}
    weights_id = {k: tw.info.get(k) for k in ("kind", "weights", "sha256", "seed", "architecture")}
    if tw.info.get("kind") == "backbone":
        weights_id["files"] = {m: tw.info[m] for m in tw.towers}
    fp = _fingerprint(items, settings, weights_id)
    meta_path, rows_path = out / "embeddings.json", out / "rows.csv"
    meta = None
    if meta_path.is_file() and not overwrite:
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") != fp:
            raise ConfigError(f"embed: {out} holds embeddings of other inputs, weights or settings "
                              f"(made {meta.get('created')}); pass another output directory or --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    if meta is None:          # a fresh directory, or --overwrite: no stale arrays of other spaces stay behind
        for f in [*out.glob("*_[hzp].npy"), out / "status.npy", out / "windows.npy", rows_path, meta_path]:
            f.unlink(missing_ok=True)
    # ---- rows and windows (durations probed once; a resumed run reads both back)
    win_path = out / "windows.npy"
    rpi = windows if per_window else 1
    n_items = len(items)
    n_rows = n_items * rpi                           # item i owns rows i·rpi … i·rpi + rpi − 1

    def plan_of(duration):
        return [[w[m] for m in mods] for w in window_plan(duration, windows, durations)]
    if meta is not None and rows_path.is_file() and win_path.is_file():
        starts = np.load(win_path)
        probe_fail = {int(k): v for k, v in meta.get("probe_failed", {}).items()}
        if probe_fail:     # unreadable last time: probe again, and plan the windows of those that open now
            ids = list(probe_fail)
            again = probe_durations([Item(**{**asdict(items[i]), "duration": 0.0}) for i in ids],
                                    workers=max(1, num_workers or 4))
            fixed = {}
            for j, i in enumerate(ids):
                d, err = again[j]
                if err:
                    probe_fail[i] = err
                else:
                    del probe_fail[i]
                    starts[i] = plan_of(d)
                    fixed[i] = list(_iter_rows([items[i]], starts[i:i + 1], per_window, durations, mods, i))
            if fixed:
                rows = _read_csv(rows_path)
                for i, new_rows in fixed.items():
                    rows[i * rpi:(i + 1) * rpi] = new_rows
                np.save(win_path, starts)
                _write_csv(rows, rows_path, mods)
    else:
        probed = probe_durations(items, workers=max(1, num_workers or 4), progress=progress)
        probe_fail = {i: err for i, (d, err) in probed.items() if err}
        items = [Item(**{**asdict(it), "duration": probed[i][0]}) if i in probed else it
                 for i, it in enumerate(items)]
        starts = np.zeros((n_items, windows, len(mods)), np.float64)
        for i, it in enumerate(items):
            starts[i] = plan_of(it.duration)
        np.save(win_path, starts)
        _write_csv(_iter_rows(items, starts, per_window, durations, mods), rows_path, mods)
    # ---- arrays (feature widths from one dummy forward of each tower)
    dev = torch.device(device)
    widths = {}
    for m in mods:
        tw.towers[m].to(dev).eval()
        with torch.no_grad():
            x = torch.zeros(2, 3, v.frames, v.crop_size, v.crop_size) if m == "video" else \
                torch.zeros(2, 1, a.n_mels, a.frames)
            o = tw.towers[m](x.to(dev), space_of[m])
        widths[m] = {s: int(t.shape[1]) for s, t in o.items()}
    arrays = {}
    for m in mods:
        for s in space_of[m]:
            f = out / f"{m}_{s}.npy"
            mode = "r+" if (meta is not None and f.is_file()) else "w+"
            arr = np.lib.format.open_memmap(f, mode=mode, dtype=np.float32, shape=(n_rows, widths[m][s]))
            if arr.shape != (n_rows, widths[m][s]):
                raise ConfigError(f"embed: {f} has shape {arr.shape}, expected {(n_rows, widths[m][s])}; "
                                  f"pass --overwrite")
            arrays[(m, s)] = arr
    st_path = out / "status.npy"
    status = np.lib.format.open_memmap(st_path, mode="r+" if (meta is not None and st_path.is_file()) else "w+",
                                       dtype=np.int8, shape=(n_items, len(mods)))
    reasons = {} if meta is None else {(f["item"], f["modality"]): f["reason"]
                                       for f in meta.get("failed", []) + meta.get("no_stream", [])}
    if probe_fail and on_error == "fail":
        i, err = next(iter(probe_fail.items()))
        raise DecodeError(f"{items[i].path}: {err} (--on-error skip leaves such files out and counts them)")
    for j, m in enumerate(mods):
        for i in range(n_items):
            if status[i, j] == FAILED and i not in probe_fail:
                status[i, j] = PENDING            # failed last time: try again
    for i, err in probe_fail.items():     # unreadable at probing: failed without a decode attempt
        for j, m in enumerate(mods):
            if status[i, j] != DONE:
                status[i, j], reasons[(i, m)] = FAILED, err
    todo = [i for i in range(n_items) if (status[i] == PENDING).any()]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    created = (meta or {}).get("created") or started
    processed = [0]

    def write_meta(final=False):
        counts = {m: {"done": int((status[:, j] == DONE).sum()), "failed": int((status[:, j] == FAILED).sum()),
                      "no_stream": int((status[:, j] == NO_STREAM).sum()),
                      "pending": int((status[:, j] == PENDING).sum())} for j, m in enumerate(mods)}
        lst = {FAILED: [], NO_STREAM: []}
        for code in lst:
            for i, j in zip(*np.nonzero(np.asarray(status) == code)):
                i, m = int(i), mods[int(j)]
                lst[code].append({"item": i, "rid": items[i].rid, "path": items[i].path, "modality": m,
                                  "reason": reasons.get((i, m), "")})
            lst[code].sort(key=lambda f: (f["item"], f["modality"]))
        _write_json({"format": "crisscross-embeddings v1", "created": created,
                     "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "kit_version": __version__,
                     "fingerprint": fp, "source": src_meta, "weights": tw.info, "settings": settings,
                     "widths": widths, "n_items": n_items, "n_rows": n_rows, "counts": counts,
                     "complete": not any(c["pending"] for c in counts.values()),
                     "failed": lst[FAILED], "no_stream": lst[NO_STREAM], "dropped_source_rows": dropped,
                     "probe_failed": {str(k): v for k, v in probe_fail.items()},
                     "runs": (meta or {}).get("runs", []) + [{"started": started, "items_to_do": len(todo),
                                                              "items_processed": processed[0]}],
                     "seconds": round(time.perf_counter() - t_start, 2) + (meta or {}).get("seconds", 0.0)
                     if final else (meta or {}).get("seconds", 0.0)}, meta_path)

    write_meta()
    if progress and len(todo) < n_items:
        print(f"[embed] resuming: {n_items - len(todo)} of {n_items} items already done", file=sys.stderr)
    # ---- the loop: workers decode, the main process batches windows through the towers
    loader = torch.utils.data.DataLoader(_Source(items, todo, starts, mods, v, a), batch_size=None,
                                         shuffle=False, num_workers=num_workers)
    transform = {"video": _eval_video(v, dev), "audio": logmel(a, dev)} if mods else {}
    buf = {m: [] for m in mods}                    # (item, tensor [K, ...])
    n_failed = 0

    def flush(m):
        if not buf[m]:
            return
        x = torch.cat([t for _, t in buf[m]]).to(dev)
        x = transform[m](x)
        outs = {s: [] for s in space_of[m]}
        with torch.no_grad():
            for s0 in range(0, len(x), batch_size):
                o = tw.towers[m](x[s0:s0 + batch_size].float(), space_of[m])
                for s, t in o.items():
                    outs[s].append(t.float().cpu().numpy())
        feats = {s: np.concatenate(o) for s, o in outs.items()}
        pos = 0
        for i, t in buf[m]:
            k = len(t)
            r0 = i * rpi
            for s, fx in feats.items():
                block = fx[pos:pos + k]
                if per_window:
                    arrays[(m, s)][r0:r0 + k] = block
                else:
                    arrays[(m, s)][r0] = block.mean(0)
            pos += k
        for s in space_of[m]:
            arrays[(m, s)].flush()
        j = mods.index(m)
        for i, _ in buf[m]:
            status[i, j] = DONE
            reasons.pop((i, m), None)
        status.flush()
        buf[m].clear()

    def mark(i, m, code, reason):
        j = mods.index(m)
        r0 = i * rpi
        n = rpi
        for s in space_of[m]:
            arrays[(m, s)][r0:r0 + n] = np.nan
        status[i, j], reasons[(i, m)] = code, reason

    last_save = time.perf_counter()
    bar = tqdm(loader, total=len(todo), desc="embedding", disable=not progress, leave=False)
    for i, got, state in bar:
        for m in mods:
            code, reason = state[m]
            if code == DONE:
                buf[m].append((i, torch.as_tensor(np.asarray(got[m]))))
                if sum(len(t) for _, t in buf[m]) >= batch_size:
                    flush(m)
            else:
                if code == FAILED and on_error == "fail":
                    write_meta()
                    raise DecodeError(f"{items[i].path}: {reason} (--on-error skip leaves such files out and "
                                      f"counts them)")
                mark(i, m, code, reason)
                if code == FAILED:
                    n_failed += 1
                    bar.set_postfix(failed=n_failed)
        processed[0] += 1
        if time.perf_counter() - last_save > save_every_s:
            for m in mods:
                flush(m)
            write_meta()
            last_save = time.perf_counter()
    for m in mods:
        flush(m)
    status.flush()
    write_meta(final=True)
    _print_summary(json.loads(meta_path.read_text()), meta_path)   # once, with or without progress bars
    return out


def _print_summary(meta: dict, meta_path: Path) -> None:
    c, mods = meta["counts"], meta["settings"]["modalities"]
    print(f"[embed] {meta['n_items']} items, {meta['n_rows']} rows → {meta_path.parent} ("
          + "; ".join(f"{m}: {c[m]['done']} done, {c[m]['failed']} failed, {c[m]['no_stream']} without {m}"
                      for m in mods) + ")", file=sys.stderr, flush=True)
    for f in meta["failed"][:10]:
        print(f"[embed]   failed: {f['path']} ({f['modality']}): {f['reason']}", file=sys.stderr)
    if len(meta["failed"]) > 10:
        print(f"[embed]   … {len(meta['failed']) - 10} more in {meta_path}", file=sys.stderr)
    if meta.get("dropped_source_rows"):
        from .media import drop_summary
        print(f"[embed] source rows left out: {drop_summary(meta['dropped_source_rows'])}", file=sys.stderr)


# ----------------------------------------------------------------------------- reading

class Embeddings:
    """An embeddings directory: `.rows` (list of dicts), `.meta` (embeddings.json), `.spaces`
    ({"video": ["h", "z", "p"], ...}), `.array(m, s)` (memory-mapped `[N, D]`), `.features(m, s)`
    (evaluate.features.Features of the rows that modality has, rid = item index), `.items()`
    (evaluate.media.Item per item, rid = item index) and `.frame()` (pandas DataFrame of the rows)."""

    def __init__(self, path):
        self.path = Path(path)
        mp = self.path / "embeddings.json"
        if not mp.is_file():
            raise FileNotFoundError(f"{self.path}: no embeddings.json (not an output of `crisscross embed`)")
        self.meta = json.loads(mp.read_text())
        self.rows = _read_csv(self.path / "rows.csv")
        s = self.meta["settings"]
        self.modalities = list(s["modalities"])
        self.spaces = {m: list(s["spaces"][m]) for m in self.modalities}
        self.status = np.load(self.path / "status.npy")
        self._item = np.array([r["item"] for r in self.rows], np.int64)
        self._label = np.array([r["label_idx"] for r in self.rows], np.int64)
        self._window = np.array([r["window"] for r in self.rows], np.int64)

    def __repr__(self):
        c = self.meta.get("counts", {})
        return (f"Embeddings({self.path}, {len(self.rows)} rows, {self.meta.get('n_items')} items, spaces "
                f"{self.spaces}, {'complete' if self.meta.get('complete') else 'PARTIAL'}, counts {c})")

    def frame(self):
        import pandas as pd
        return pd.DataFrame(self.rows)

    def array(self, modality: str, space: str = "h") -> np.ndarray:
        if modality not in self.spaces or space not in self.spaces[modality]:
            raise ConfigError(f"{self.path}: no {modality} space {space!r} (has {self.spaces})")
        return np.load(self.path / f"{modality}_{space}.npy", mmap_mode="r")

    def valid(self, modality: str) -> np.ndarray:
        """bool `[N]`: rows whose item has this modality's features (done)."""
        j = self.modalities.index(modality)
        return self.status[self._item, j] == DONE

    def features(self, modality: str, space: str = "h") -> Features:
        """Features(x `[M, D]`, rid = item index, label = label_idx, window) of the valid rows;
        meta: "row" (rows.csv row of each), "start_s" (this modality's window start), "space", "path"."""
        ok = self.valid(modality)
        idx = np.flatnonzero(ok)
        x = np.asarray(self.array(modality, space)[idx], dtype=np.float32)
        col = f"{modality}_start_s"
        return Features(x, self._item[idx], self._label[idx], self._window[idx],
                        {"row": idx, "start_s": np.array([self.rows[i].get(col, 0.0) for i in idx], np.float32),
                         "space": space, "modality": modality, "path": str(self.path)})

    def items(self, modalities: Optional[Sequence[str]] = None) -> list[Item]:
        """One evaluate.media.Item per item (rid = item index, duration from the rows); with
        `modalities`, only items done in all of them (aligned with `features(m).per_item()` rows)."""
        out, seen = [], set()
        for r in self.rows:
            i = r["item"]
            if i in seen:
                continue
            seen.add(i)
            if modalities and not all(self.status[i, self.modalities.index(m)] == DONE for m in modalities):
                continue
            out.append(Item(r["path"], r["label_idx"], r["label"], r["fold"], r["split"],
                            0.0, i))
        return out

    def path_of(self, item: int) -> str:
        return next(r["path"] for r in self.rows if r["item"] == item)

    def split_of(self, item_ids) -> tuple[list, list]:
        """(split tags, folds) of each item id."""
        by = {r["item"]: (r["split"], r["fold"]) for r in self.rows}
        got = [by[int(i)] for i in item_ids]
        return [g[0] for g in got], [g[1] for g in got]

    def missing(self, modalities) -> list[dict]:
        """{rid, path, reason} for items without features in any of `modalities` (failed or no stream)."""
        out = []
        for f in self.meta.get("failed", []) + self.meta.get("no_stream", []):
            if f["modality"] in modalities:
                out.append({"rid": f["item"], "path": f["path"], "reason": f"{f['modality']}: {f['reason']}"})
        return out


def load_embeddings(path) -> Embeddings:
    """Open an output directory of `crisscross embed` / `embed()`."""
    return Embeddings(path)


# ----------------------------------------------------------------------------- CLI

def _list(s: str) -> tuple:
    return tuple(x.strip() for x in s.split(",") if x.strip())


def add_arguments(p) -> None:
    p.description = ("Embed a folder, a manifest or media files with any weights: backbone features (h) and "
                     "the pretraining heads' outputs (z, p) per clip or per window, into a resumable directory "
                     "(rows.csv + <modality>_<space>.npy + embeddings.json). Details: docs/evaluation.md.")
    p.add_argument("source", nargs="+", help="a folder of media files, a manifest (.csv), or media files")
    p.add_argument("--weights", required=True,
                   help="released file (.pth.tar / .zip), export, full checkpoint, run directory, or 'random'")
    p.add_argument("--out", required=True, help="output directory (a rerun resumes it)")
    p.add_argument("--audio-weights", default=None, help="an audio backbone file beside a video --weights file")
    p.add_argument("--modalities", type=_list, default=None, help="video,audio (default: what the weights have)")
    p.add_argument("--spaces", type=_list, default=None, help="h,z,p (default: h, plus z,p when there are heads)")
    p.add_argument("--windows", type=int, default=4, help="evenly spaced windows per clip")
    p.add_argument("--per-window", action="store_true", help="one row per window (default: one per clip, mean)")
    p.add_argument("--config", default=None, help="random weights: preset or YAML for the architecture "
                                                  "(default paper_kinetics400)")
    p.add_argument("--width", type=float, default=None, help="random weights: backbone width")
    p.add_argument("--depth", type=int, default=None, help="random weights: video backbone depth")
    p.add_argument("--seed", type=int, default=0, help="random weights: initialisation seed")
    p.add_argument("--frames", type=int, default=None, help="video frames per window (default: the weights')")
    p.add_argument("--fps", type=float, default=None)
    p.add_argument("--crop-size", type=int, default=None)
    p.add_argument("--clip-duration", type=float, default=None, help="audio seconds per window")
    p.add_argument("--root", default=None, help="manifest: media root")
    p.add_argument("--label-column", default=None, help="manifest: the CSV column with labels")
    p.add_argument("--labels", default="auto", choices=("auto", "folders", "none"),
                   help="folder: labels from class folders (auto: when every file sits in one)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per forward pass")
    p.add_argument("--num-workers", type=int, default=0, help="decode workers")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--on-error", default="skip", choices=("skip", "fail"))
    p.add_argument("--overwrite", action="store_true", help="replace embeddings of other inputs/settings in --out")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    source = args.source[0] if len(args.source) == 1 else args.source
    out = embed(source, args.weights, args.out, audio_weights=args.audio_weights, modalities=args.modalities,
                spaces=args.spaces, windows=args.windows, per_window=args.per_window, config=args.config,
                width=args.width, depth=args.depth, seed=args.seed, frames=args.frames, fps=args.fps,
                crop_size=args.crop_size, clip_duration=args.clip_duration, root=args.root,
                label_column=args.label_column, labels=args.labels, batch_size=args.batch_size,
                num_workers=args.num_workers, device=dev, overwrite=args.overwrite,
                progress=not args.no_progress, on_error=args.on_error)
    meta = json.loads((out / "embeddings.json").read_text())
    print(json.dumps({"embeddings": str(out), "items": meta["n_items"], "rows": meta["n_rows"],
                      "complete": meta["complete"], "counts": meta["counts"], "spaces": meta["settings"]["spaces"],
                      "seconds": meta["seconds"]}))
    return 0
