"""The embedded demo dataset: small real mp4 clips whose class is a *relation* seen and heard.

    manifest = make_demo_dataset("data/demo", n_train=800, n_test=200, seed=0)
    rows = read_manifest(manifest)        # path, label, label_idx, split ("train"/"test"), durations...

Each clip (4 s, 48x48 px at 16 fps, H.264 with a keyframe every 8 frames; mono AAC at 16 kHz)
belongs to one of `K` classes (default 12). The class is the only thing the two modalities share,
and it is a *relation between two things*, never a property of one:

* video: a bullseye (a disc of one hue inside a ring of another) drifting over a flat grey frame.
  The ring's hue is the core's hue plus `class / K` of the hue circle (0, 30, ... 330 degrees for
  K = 12). The core hue, the common saturation and brightness, the grey level, the size and the
  motion are random per clip.
* audio: short sine notes in pairs, root then partner, `1 + 2*class` semitones apart (1 ... 23
  for K = 12). Every pair has a new random root (700 Hz ... 2 kHz); note lengths, gaps, decays and
  loudness are random.

Why a relation: with the base hue / root uniformly random, every single-colour or single-pitch
statistic is independent of the class, so a linear probe on the pooled features of a randomly
initialised encoder stays low (measured on the demo's 200 held-out clips: video 17.5 %, audio
40.5 % with 12 classes, chance 8.3 %). Why a *local*
relation in video: the two hues touch, so a small convolutional filter can see both. An earlier
design put them on two objects in different halves of the frame; the tiny video encoder then
needed most of the demo's 600 steps to relate them, and the cross-modal terms only began to align
at the very end. Nothing else is constant within a clip except per-clip values that the standard
augmentations randomise anyway (grey level, brightness, saturation, hue, size, position,
loudness), so the intra-modal terms (two views of one clip, differently augmented) can only agree
through the relation, and the cross-modal terms can only predict one modality from the other
through it. No timing is shared across the modalities (their events are drawn independently).
The augmentations must keep the relation visible: no grayscale, crops that keep the bullseye,
narrow frequency masks, no spectrogram resize-crop (these are the `tiny_cpu` values).

Deterministic: clip i of a split is drawn from `np.random.SeedSequence([seed, split_id, i])` and
encoded with one encoder thread, so the files are the same bytes whatever the machine, its load
or the number of `workers` processes (checked: 1000 clips written twice under load, identical).
An existing dataset with the same parameters is reused.
"""
from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

FPS = 16
SIZE = 48
RATE = 16000
DURATION = 4.0
NUM_CLASSES = 12
MAX_CLASSES = 12
GOP = 8                                  # keyframe every 0.5 s: cheap seeks
CORE_RATIO = 0.6                         # bullseye core radius / ring outer radius

SPLITS = {"train": 1, "test": 2}


def class_names(k: int = NUM_CLASSES) -> list[str]:
    """Human-readable names: hue difference (degrees) and tone interval (semitones) of each class."""
    return [f"hue{round(360 * c / k):03d}_int{1 + 2 * c:02d}" for c in range(k)]


# ----------------------------------------------------------------------------- video

def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    h = h % 1.0
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], np.float32)


def _bounce(rng, frames: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Positions `[T, 2]` (x, y) of a point moving at constant speed, bouncing inside [lo, hi]."""
    pos = rng.uniform(lo, hi)
    vel = rng.normal(0, 1, 2)
    vel = vel / (np.linalg.norm(vel) + 1e-9) * rng.uniform(0.4, 0.7)
    out = np.zeros((frames, 2), np.float32)
    for t in range(frames):
        out[t] = pos
        pos = pos + vel
        for d in range(2):
            if not lo[d] <= pos[d] <= hi[d]:
                vel[d] = -vel[d]
                pos[d] = np.clip(pos[d], lo[d], hi[d])
    return out


def render_video(label: int, rng: np.random.Generator, frames: int = int(DURATION * FPS), size: int = SIZE,
                 num_classes: int = NUM_CLASSES, supersample: int = 2) -> np.ndarray:
    """One clip's frames, uint8 `[T, S, S, 3]`: a drifting bullseye whose ring hue is its core hue
    plus `label / num_classes` of the hue circle."""
    img = np.full((frames, size, size, 3), rng.uniform(0.25, 0.75), np.float32)   # flat grey
    core_hue = rng.uniform(0, 1)
    sat, val = rng.uniform(0.65, 1.0), rng.uniform(0.7, 1.0)
    outer = rng.uniform(0.19, 0.25) * size                  # the ring's outer radius
    g = (np.arange(size * supersample, dtype=np.float32) + 0.5) / supersample
    yy, xx = np.meshgrid(g, g, indexing="ij")
    p = _bounce(rng, frames, np.full(2, outer + 2), np.full(2, size - outer - 2))
    d2 = (xx[None] - p[:, 0, None, None]) ** 2 + (yy[None] - p[:, 1, None, None]) ** 2
    for radius, hue in ((outer, core_hue + label / num_classes), (CORE_RATIO * outer, core_hue)):
        m = (d2 < radius * radius).astype(np.float32)        # ring first, then the core over it
        m = m.reshape(frames, size, supersample, size, supersample).mean((2, 4))[..., None]
        img = img * (1 - m) + _hsv_to_rgb(hue, sat, val) * m
    img = img * rng.uniform(0.75, 1.15) + rng.normal(0, 0.03, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- audio

def audio_notes(label: int, rng: np.random.Generator, duration: float = DURATION) -> list[tuple]:
    """The note plan of one clip: `(start_s, dur_s, freq_hz, amplitude, decay_per_s)` per note;
    notes 2i and 2i+1 are a pair `1 + 2*label` semitones apart."""
    ratio = 2 ** ((1 + 2 * label) / 12)
    notes, pos, k, root = [], rng.uniform(0, 0.15), 0, 0.0
    while pos < duration:
        nd = rng.uniform(0.15, 0.3)
        if k % 2 == 0:
            root = 700 * 2 ** rng.uniform(0, 1.5)          # every pair: a new random root
        notes.append((pos, nd, root if k % 2 == 0 else root * ratio, rng.uniform(0.6, 1.0), rng.uniform(0, 3)))
        pos += nd + rng.uniform(0.0, 0.08)
        k += 1
    return notes


def render_audio(label: int, rng: np.random.Generator, duration: float = DURATION, rate: int = RATE) -> np.ndarray:
    """One clip's waveform, float32 `[N]` in [-1, 1]: note pairs `1 + 2*label` semitones apart."""
    n = int(round(duration * rate))
    y = np.zeros(n)
    for start, nd, f, amp, decay in audio_notes(label, rng, duration):
        i0, i1 = int(start * rate), min(n, int((start + nd) * rate))
        tt = np.arange(i1 - i0) / rate
        env = np.minimum(tt / 0.015, 1) * np.minimum((nd - tt) / 0.03, 1) * np.exp(-tt * decay)
        y[i0:i1] += env * amp * np.sin(2 * np.pi * f * tt + rng.uniform(0, 2 * np.pi))
    y /= np.abs(y).max() + 1e-6
    y = y * rng.uniform(0.3, 0.7) + rng.normal(0, 0.01, n)
    return np.clip(y, -1, 1).astype(np.float32)


def render_clip(label: int, seed: int, split: str, index: int, num_classes: int = NUM_CLASSES,
                duration: float = DURATION, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(video uint8 `[T, S, S, 3]`, audio float32 `[N]`) of one clip, a pure function of its arguments."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS[split], index]))
    video = render_video(label, rng, frames=int(round(duration * FPS)), size=size, num_classes=num_classes)
    audio = render_audio(label, rng, duration=duration)
    return video, audio


# ----------------------------------------------------------------------------- files

def write_mp4(path: str | Path, video: np.ndarray, audio: np.ndarray, fps: int = FPS, rate: int = RATE,
              gop: int = GOP) -> None:
    """Write uint8 `[T, H, W, 3]` frames (H.264, yuv420p, keyframe every `gop`) and float `[N]` mono
    audio (AAC) to `path` (written to a temporary name, then renamed)."""
    import av
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    with av.open(str(tmp), "w") as c:
        vs = c.add_stream("libx264", rate=fps, options={"g": str(gop), "keyint_min": str(gop), "bf": "0",
                                                        "preset": "ultrafast", "crf": "20"})
        vs.width, vs.height, vs.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        vs.codec_context.thread_count = 1        # one encoder thread: the bytes never depend on the machine
        aus = c.add_stream("aac", rate=rate, layout="mono")
        aus.bit_rate = 48000
        for i, fr in enumerate(video):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(fr), format="rgb24")
            f.pts = i
            c.mux(vs.encode(f))
        c.mux(vs.encode())
        a = np.ascontiguousarray(audio, dtype=np.float32)
        for i0 in range(0, len(a), 1024):
            f = av.AudioFrame.from_ndarray(a[None, i0:i0 + 1024], format="flt", layout="mono")
            f.sample_rate, f.pts = rate, i0
            c.mux(aus.encode(f))
        c.mux(aus.encode())
    tmp.replace(path)


def _make_one(job: tuple) -> str:
    out_dir, rel, label, seed, split, index, k, duration, size = job
    video, audio = render_clip(label, seed, split, index, k, duration, size)
    write_mp4(Path(out_dir) / rel, video, audio)
    return rel


def make_demo_dataset(out_dir: str | Path, n_train: int = 800, n_test: int = 200, seed: int = 0,
                      num_classes: int = NUM_CLASSES, duration: float = DURATION, size: int = SIZE,
                      workers: int = 2, overwrite: bool = False, progress: bool = False) -> Path:
    """Write `n_train + n_test` clips under `out_dir/{train,test}/` plus `manifest.csv` (crisscross
    manifest v1, split "train"/"test", labels balanced: clip i has label i % num_classes) and
    `classes.txt`; return the manifest path. Reused as is when a manifest with the same parameters
    exists (unless `overwrite`)."""
    from .decode import probe
    from .manifest import Entry, row_from_info, write_manifest

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "manifest.csv"
    params = dict(generator="crisscross_core.data.synthetic v2", n_train=n_train, n_test=n_test, seed=seed,
                  num_classes=num_classes, duration=duration, size=size, fps=FPS, audio_rate=RATE)
    stamp = out_dir / "params.json"
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"make_demo_dataset: num_classes={num_classes}; use 2..{MAX_CLASSES} "
                         f"(the widest interval, 1 + 2*(K-1) semitones, must stay below 8 kHz)")
    if (not overwrite and manifest.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == params
            and all((out_dir / f"{sp}/{sp}_{i:05d}_c{i % num_classes}.mp4").is_file()
                    for sp, n in (("train", n_train), ("test", n_test)) for i in range(n))):
        return manifest
    names = class_names(num_classes)
    jobs, entries = [], []
    for split, n in (("train", n_train), ("test", n_test)):
        (out_dir / split).mkdir(exist_ok=True)
        for i in range(n):
            label = i % num_classes
            rel = f"{split}/{split}_{i:05d}_c{label}.mp4"
            jobs.append((str(out_dir), rel, label, seed, split, i, num_classes, duration, size))
            entries.append(Entry(path=rel, label=names[label], label_idx=label, split=split))
    it = map(_make_one, jobs)
    pool = None
    if workers > 1 and len(jobs) > 1:
        pool = ProcessPoolExecutor(workers)
        it = pool.map(_make_one, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
    try:
        if progress:
            from tqdm import tqdm
            it = tqdm(it, total=len(jobs), desc="demo clips")
        for _ in it:
            pass
    finally:
        if pool is not None:
            pool.shutdown()
    rows = [row_from_info(e, probe(out_dir / e.path)) for e in entries]
    (out_dir / "classes.txt").write_text("\n".join(names) + "\n")
    write_manifest(rows, manifest, meta={"dataset": "crisscross_demo", "classes": ",".join(names),
                                         **{k: v for k, v in params.items() if k != "generator"}})
    stamp.write_text(json.dumps(params))
    return manifest
