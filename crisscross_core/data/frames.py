"""The decode-free tier: clips stored as decoded uint8 frames and 16 kHz audio in memory-mapped files.

    write_frame_store(rows, src_root, "ucf101.frames", short_side=128, fps=16)   # + manifest.csv
    frames, waves = read_windows("ucf101.frames::v_ApplyEyeMakeup_g01_c01", [(1.0, 0.5)], [(0.0, 2.0)])

For small datasets (UCF101, HMDB51, ESC-50, Kinetics-Sound at 112 px) decoding is the whole cost of
every epoch of fine-tuning and of every SVM feature pass. A store is a directory `<name>.frames/`:

* `video.u8` — every clip's frames at `fps` (16, the kit's rate), short side `short_side`, RGB, one
  flat uint8 file (frame k of a clip is the source frame shown at k / fps, as decode.py picks it);
* `audio.f16` — every clip's mono waveform at 16 kHz as float16, one flat file;
* `index.json` — per clip key: the byte offsets and shapes, fps, rate, stream starts, durations.

A manifest row addresses a clip as `<store>.frames::<key>`; `decode.probe` and `decode.decode_windows`
read it transparently (windows are slices; a different crop or size is resized from the stored
frames), so pretraining, the protocols and the explorers need no change.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

SEP = "::"
SUFFIX = ".frames"
_STORES: dict = {}


def is_frame_ref(path) -> bool:
    s = str(path)
    return SEP in s and s.split(SEP, 1)[0].endswith(SUFFIX)


def split_ref(path) -> tuple[str, str]:
    store, key = str(path).split(SEP, 1)
    return store, key


class FrameStore:
    """An opened store: its index and its two memory maps (opened once per process)."""

    def __init__(self, path: str | os.PathLike):
        from .decode import DecodeError
        self.path = Path(path)
        try:
            self.index = json.loads((self.path / "index.json").read_text())
        except (OSError, ValueError) as e:
            raise DecodeError(f"{self.path}: not a readable frame store ({e})") from None
        v, a = self.path / "video.u8", self.path / "audio.f16"
        self.video = np.memmap(v, np.uint8, "r") if v.stat().st_size else np.zeros(0, np.uint8)
        self.audio = np.memmap(a, np.float16, "r") if a.stat().st_size else np.zeros(0, np.float16)

    @classmethod
    def open(cls, path) -> "FrameStore":
        key = (os.getpid(), str(path))
        if key not in _STORES:
            _STORES[key] = cls(path)
        return _STORES[key]

    def entry(self, key: str) -> dict:
        from .decode import DecodeError
        e = self.index["clips"].get(key)
        if e is None:
            raise DecodeError(f"{self.path}{SEP}{key}: no such clip in the store")
        return e

    def clip_frames(self, e: dict) -> np.ndarray:
        off, t, h, w = e["video"]
        return self.video[off:off + t * h * w * 3].reshape(t, h, w, 3)

    def clip_audio(self, e: dict) -> np.ndarray:
        off, n = e["audio"]
        return self.audio[off:off + n]


def probe_entry(ref):
    """decode.MediaInfo of a stored clip (from the index; nothing is read)."""
    from .decode import MediaInfo
    store, key = split_ref(ref)
    e = FrameStore.open(store).entry(key)
    has_v, has_a = e["video"][1] > 0, e["audio"][1] > 0
    vd, ad = e["video_duration"], e["audio_duration"]
    return MediaInfo(path=str(ref), has_video=has_v, has_audio=has_a, duration=max(vd, ad),
                     video_start=e["video_start"], video_duration=vd, fps=float(e["fps"]) if has_v else 0.0,
                     width=e["video"][3], height=e["video"][2], num_frames=e["video"][1],
                     video_codec="raw-rgb24" if has_v else "", audio_start=e["audio_start"], audio_duration=ad,
                     audio_rate=int(e["rate"]) if has_a else 0, audio_channels=1 if has_a else 0,
                     audio_codec="raw-f16" if has_a else "", size_bytes=e["video"][1] * e["video"][2]
                     * e["video"][3] * 3 + 2 * e["audio"][1])


def read_windows(ref, video_windows: Sequence = (), audio_windows: Sequence = (), fps: float = 16,
                 short_side: Optional[int] = None, size: Optional[tuple] = None, audio_rate: int = 16000,
                 short_clip: str = "pad", no_audio: str = "skip", frame_mode: str = "centre_crop",
                 info: Optional[dict] = None, **_unused):
    """decode.decode_windows for a stored clip: the same outputs, by slicing (and resizing when the
    requested frame differs from the stored one)."""
    from .decode import DecodeError, NoAudioError, ShortClipError, frame_dims
    store, key = split_ref(ref)
    st = FrameStore.open(store)
    e = st.entry(key)
    if video_windows and e["video"][1] == 0:
        raise DecodeError(f"{ref}: video requested but the clip has no video")
    if audio_windows and e["audio"][1] == 0 and no_audio == "skip":
        raise NoAudioError(f"{ref}: audio requested but the clip has no audio (no_audio='silence' would return zeros)")
    if abs(fps - e["fps"]) > 1e-6 and video_windows:
        raise DecodeError(f"{ref}: stored at {e['fps']} fps, asked for {fps} fps; write the store at that rate")
    if audio_windows and e["audio"][1] and audio_rate != e["rate"]:
        raise DecodeError(f"{ref}: stored at {e['rate']} Hz, asked for {audio_rate} Hz")
    frames_out = []
    if video_windows:
        clip = st.clip_frames(e)
        t0, n = e["video_start"], len(clip)
        h, w = clip.shape[1:3]
        if info is not None:
            info["frame_hw"] = (h, w)
        dims, crop = frame_dims(h, w, short_side, size, frame_mode)
        for start, dur in video_windows:
            k = int(math.floor(dur * fps + 1e-6))
            idx = np.floor((start - t0) * fps + np.arange(k) + 1e-6).astype(np.int64)
            if (idx >= n).any() and short_clip == "skip":
                raise ShortClipError(f"{ref}: video window reaches {start + dur:.3f}s, past the stream end")
            frames_out.append(_resize(np.asarray(clip[np.clip(idx, 0, n - 1)]), dims, crop))
    waves = []
    for start, dur in audio_windows:
        n = int(round(dur * audio_rate))
        wave = np.zeros(n, np.float32)
        if e["audio"][1]:
            a = st.clip_audio(e)
            lo = int(round((start - e["audio_start"]) * audio_rate))
            src_lo, src_hi = max(lo, 0), min(lo + n, len(a))
            if src_hi > src_lo:
                wave[src_lo - lo:src_hi - lo] = a[src_lo:src_hi]
            if lo + n > len(a) and short_clip == "skip":
                raise ShortClipError(f"{ref}: audio window reaches {start + dur:.3f}s, past the stream end")
        waves.append(wave)
    return frames_out, waves


def _resize(frames: np.ndarray, dims: tuple, crop: Optional[tuple]) -> np.ndarray:
    """uint8 [T, h, w, 3] -> resized to dims (bilinear, antialiased) then centre-cropped to `crop`."""
    h, w = frames.shape[1:3]
    if (h, w) != tuple(dims):
        import torch
        import torch.nn.functional as F
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=tuple(dims), mode="bilinear", align_corners=False, antialias=True)
        frames = x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    if crop:
        H, W = frames.shape[1:3]
        top, left = (H - crop[0]) // 2, (W - crop[1]) // 2
        frames = frames[:, top:top + crop[0], left:left + crop[1]]
    return np.ascontiguousarray(frames)


def store_exists(ref) -> bool:
    try:
        store, key = split_ref(ref)
        return (Path(store) / "index.json").is_file() and key in FrameStore.open(store).index["clips"]
    except Exception:  # noqa: BLE001
        return False


# ----------------------------------------------------------------------------- writing

def decode_clip(path: str, fps: float = 16, short_side: int = 128, rate: int = 16000) -> dict:
    """All frames of a file at `fps` (short side `short_side`, aspect kept) and its mono audio at `rate`."""
    from .decode import decode_windows, probe
    info = probe(path)
    out = {"info": info, "frames": np.zeros((0, 0, 0, 3), np.uint8), "audio": np.zeros(0, np.float32)}
    if info.has_video and info.video_duration > 0:
        (frames,), _ = decode_windows(path, [(info.video_start, info.video_duration)], [], fps=fps,
                                      short_side=short_side, size=None)
        out["frames"] = frames
    if info.has_audio and info.audio_duration > 0:
        _, (wave,) = decode_windows(path, [], [(info.audio_start, info.audio_duration)], audio_rate=rate)
        out["audio"] = wave
    return out
