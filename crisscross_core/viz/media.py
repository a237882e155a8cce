"""Media helpers for notebooks and explorers: frame strips, WAV/PNG bytes, clip previews.

    frames, wave = load_preview("clip.mp4", start=0.0, duration=4.0)   # uint8 [T,H,W,3], float32 [N]
    strip = frame_strip(frames, n=8)                                    # uint8 [H, 8*W + gaps, 3]
    widgets.Image(value=png_bytes(strip)); widgets.Audio(value=wav_bytes(wave, 16000), format="wav")

Decoding goes through `crisscross_core.data.decode.decode_windows` (the pipeline's decoder), so what
a notebook shows is what training reads. matplotlib is imported lazily.
"""
from __future__ import annotations

import io
import wave as _wave
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def wav_bytes(wave: np.ndarray, rate: int = 16000, normalise: bool = False) -> bytes:
    """float waveform `[N]` in [-1, 1] → 16-bit mono PCM WAV file bytes (clipped; peak-normalised if asked)."""
    x = np.asarray(wave, dtype=np.float32).reshape(-1)
    if normalise and x.size and np.abs(x).max() > 0:
        x = x / np.abs(x).max() * 0.9
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with _wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 `[H, W, 3]` (or float in [0, 1], or `[H, W]` grey) → PNG file bytes."""
    from matplotlib import image as mpimg
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 1)
    buf = io.BytesIO()
    mpimg.imsave(buf, img, format="png", cmap="magma" if img.ndim == 2 else None)
    return buf.getvalue()


def image_layout(**kw):
    """ipywidgets Layout for an Image that keeps its aspect (never stretched by a flex row or column)."""
    import ipywidgets as W
    return W.Layout(object_fit="contain", align_self="flex-start", height="auto", **kw)


def strip_on_axis(ax, frames: np.ndarray, t0: float, t1: float, fig=None, max_frames: int = 32) -> int:
    """Draw an evenly spaced frame strip across [t0, t1] of a time axis without stretching the frames:
    as many frames as fit the axes box at their own aspect (call after the figure's layout is final).
    Returns the number of frames drawn."""
    fig = fig or ax.figure
    box = ax.get_position()
    w_in, h_in = box.width * fig.get_figwidth(), box.height * fig.get_figheight()
    fh, fw = frames.shape[1:3]
    n = max(1, min(len(frames), max_frames, int(round(w_in / h_in * fh / fw))))
    strip = frame_strip(frames, n, gap=0)
    # the strip spans the axes exactly: leftover width (rounding n) is split between the frames, < 1/2 frame
    ax.imshow(strip, aspect="auto", extent=[t0, t1, 0, 1])
    return n


def figure_png(fig, dpi: int = 90, close: bool = True) -> bytes:
    """A matplotlib Figure → PNG bytes (closed afterwards so notebooks do not also draw it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        import matplotlib.pyplot as plt
        plt.close(fig)
    return buf.getvalue()


def pick_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """`n` evenly spaced frames of uint8 `[T, H, W, 3]` (all of them when T <= n)."""
    frames = np.asarray(frames)
    if len(frames) <= n:
        return frames
    return frames[np.linspace(0, len(frames) - 1, n).round().astype(int)]


def frame_strip(frames: np.ndarray, n: int = 8, gap: int = 2, height: Optional[int] = None) -> np.ndarray:
    """Evenly spaced frames of uint8 `[T, H, W, 3]` side by side → uint8 `[H, n·W + (n-1)·gap, 3]`.

    `height`: nearest-neighbour rescale of each frame to this height first (keeps strips readable).
    """
    sel = pick_frames(frames, n)
    if len(sel) == 0:
        raise ValueError("frame_strip: no frames")
    if height and sel.shape[1] != height:
        scale = height / sel.shape[1]
        rows = np.minimum((np.arange(height) / scale).astype(int), sel.shape[1] - 1)
        w = max(1, int(round(sel.shape[2] * scale)))
        cols = np.minimum((np.arange(w) / scale).astype(int), sel.shape[2] - 1)
        sel = sel[:, rows][:, :, cols]
    h, w = sel.shape[1:3]
    out = np.full((h, len(sel) * w + (len(sel) - 1) * gap, 3), 255, np.uint8)
    for i, f in enumerate(sel):
        out[:, i * (w + gap): i * (w + gap) + w] = f
    return out


def denormalise(video: "np.ndarray | object", mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Augmented float video `[3, T, H, W]` (normalised with mean/std) → uint8 `[T, H, W, 3]` for display."""
    x = video.detach().cpu().float().numpy() if hasattr(video, "detach") else np.asarray(video, np.float32)
    x = x * np.asarray(std, np.float32)[:, None, None, None] + np.asarray(mean, np.float32)[:, None, None, None]
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 3, 0)


def load_preview(path: str | Path, start: float = 0.0, duration: Optional[float] = None, fps: float = 4.0,
                 short_side: int = 64, audio_rate: int = 16000, with_audio: bool = True):
    """Frames uint8 `[T, H, W, 3]` at `fps` and mono audio float32 `[N]` of one window of a file.

    `duration` None = the whole file (probed). A file without audio gives a zero-length waveform.
    """
    from crisscross_core.data.decode import decode_windows, probe
    info = probe(path)
    if duration is None:
        end = max(info.video_start + info.video_duration, info.audio_start + info.audio_duration)
        duration = max(0.1, end - start)
    vids = [(float(start), float(duration))] if info.has_video else []
    auds = [(float(start), float(duration))] if (with_audio and info.has_audio) else []
    frames, waves = decode_windows(str(path), vids, auds, fps=fps, short_side=short_side,
                                   audio_rate=audio_rate, short_clip="pad", no_audio="silence")
    f = np.asarray(frames[0]) if frames else np.zeros((0, short_side, short_side, 3), np.uint8)
    w = np.asarray(waves[0], np.float32) if waves else np.zeros(0, np.float32)
    return f, w


def log_mel(wave: np.ndarray, rate: int = 16000, n_mels: int = 80, n_fft: int = 1024, hop: int = 160) -> np.ndarray:
    """float32 `[F, T]` log-mel of a waveform `[N]` with the kit's front end (crisscross_core.data.audio.LogMel)."""
    import torch
    from crisscross_core.data.audio import LogMel
    x = torch.as_tensor(np.asarray(wave, np.float32))[None]
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    with torch.no_grad():
        return LogMel(rate, n_fft, hop, n_mels)(x)[0, 0].numpy()


def clip_figure(frames: np.ndarray, wave: np.ndarray, rate: int = 16000, start: float = 0.0,
                title: str = "", n_frames: int = 8):
    """Frame strip (at most `n_frames`, as many as fit at their own aspect), waveform and log-mel of one
    clip, stacked on a shared time axis. Returns a Figure."""
    import matplotlib.pyplot as plt
    dur = len(wave) / rate if len(wave) else len(frames) / 4.0
    fig, axes = plt.subplots(3, 1, figsize=(9, 5), gridspec_kw={"height_ratios": [1.2, 1, 1.2]})
    axes[0].set_yticks([])
    axes[0].set_title(title or "frames")
    t = start + np.arange(len(wave)) / rate
    axes[1].plot(t, wave, lw=0.4, color="tab:blue")
    axes[1].set_xlim(start, start + dur)
    axes[1].set_ylabel("wave")
    if len(wave):
        spec = log_mel(wave, rate)
        axes[2].imshow(spec, origin="lower", aspect="auto", cmap="magma", extent=[start, start + dur, 0, spec.shape[0]])
    axes[2].set_ylabel("mel bin")
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    if len(frames):
        strip_on_axis(axes[0], frames, start, start + dur, max_frames=n_frames)
    return fig
