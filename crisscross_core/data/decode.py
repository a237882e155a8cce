"""Probe media and decode time windows with PyAV (docs/method.md §6.1).

    info = probe("clip.mp4")                       # MediaInfo: durations, fps, sizes, audio format
    frames, waves = decode_windows("clip.mp4", [(1.0, 0.5)], [(0.5, 2.0)],
                                   fps=16, short_side=128, size=(128, 170))
    frames[0]: uint8 [8, 128, 170, 3]; waves[0]: float32 [32000] (16 kHz mono)

Video: output times t_k = start + k/fps for k < floor(dur*fps); each takes the nearest *earlier*
source frame (the last frame whose timestamp is <= t_k; for constant frame rate this is the
release's index floor((t_k - stream_start) * src_fps)). Audio: resampled to `audio_rate`, down-mixed
by averaging the channels, cut to exactly round(dur * audio_rate) samples.
One container open per call; per modality, windows closer than `gap_s` are read in one pass
from one seek (so `overlapped` decodes one 0.75 s video snippet and one 3 s audio snippet).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import av
import numpy as np

Window = tuple  # (start_s, duration_s)


class DecodeError(RuntimeError):
    """The file cannot be opened or decoded; the message names the file and the reason."""


class ShortClipError(DecodeError):
    """A requested window extends past the end of a stream and short_clip='skip'."""


class NoAudioError(DecodeError):
    """Audio was requested from a file without an audio stream and no_audio='skip'."""


def open_source(path: str):
    """What PyAV opens for `path`: the path itself, or a member of a tar shard as a file-like view
    ('<shard>.tar::<member>', shards.py). Shard problems (missing, truncated) raise DecodeError."""
    return open_member(path) if is_shard_ref(path) else path


def media_exists(path) -> bool:
    """A file, a shard member or a frame-store clip that is there (cheap: no decoding)."""
    if is_shard_ref(path):
        return member_exists(path)
    if is_frame_ref(path):
        return store_exists(path)
    return Path(path).is_file()


@dataclass
class MediaInfo:
    """Stream facts of one file (times in seconds; 0 / None where a stream is absent)."""
    path: str
    has_video: bool
    has_audio: bool
    duration: float            # container duration (max of the streams when unknown)
    video_start: float = 0.0
    video_duration: float = 0.0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    num_frames: int = 0
    video_codec: str = ""
    audio_start: float = 0.0
    audio_duration: float = 0.0
    audio_rate: int = 0
    audio_channels: int = 0
    audio_codec: str = ""
    size_bytes: int = 0


def _stream_times(stream, container) -> tuple[float, float]:
    tb = stream.time_base
    start = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
    if stream.duration is not None and tb:
        dur = float(stream.duration * tb)
    elif container.duration is not None:
        dur = container.duration / av.time_base - start
    else:
        dur = 0.0
    return start, max(dur, 0.0)


def _measured_ends(container, streams) -> dict:
    """{stream index: end time (s)} from the packets' timestamps (demux only, no decoding), for streams
    whose headers carry no duration: Matroska/WebM often give only the container's, which can be
    longer than a stream that ends early (audio ending before the video)."""
    ends: dict = {}
    for packet in container.demux(list(streams)):
        if packet.pts is None or packet.time_base is None:
            continue
        end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        ends[packet.stream.index] = max(ends.get(packet.stream.index, 0.0), end)
    return ends


def probe(path: str | Path) -> MediaInfo:
    """Read stream headers (no full decode). Raises DecodeError naming the file if unreadable.

    A stream without a header duration is measured from its packets (demux, no decode), so a
    stream shorter than the container is not recorded as the container's length."""
    path = str(path)
    if is_frame_ref(path):                                   # the decode-free tier (frames.py)
        return probe_entry(path)
    try:
        source = open_source(path)
        size = source.size if is_shard_ref(path) else Path(path).stat().st_size
        with av.open(source, metadata_errors="ignore") as c:
            vs = c.streams.video[0] if c.streams.video else None
            as_ = c.streams.audio[0] if c.streams.audio else None
            if vs is None and as_ is None:
                raise DecodeError(f"{path}: no video or audio stream")
            info = MediaInfo(path=path, has_video=vs is not None, has_audio=as_ is not None,
                             duration=(c.duration / av.time_base) if c.duration else 0.0,
                             size_bytes=size)
            if vs is not None:
                info.video_start, info.video_duration = _stream_times(vs, c)
                rate = vs.average_rate or vs.guessed_rate or vs.base_rate
                info.fps = float(rate) if rate else 0.0
                info.width, info.height = vs.codec_context.width, vs.codec_context.height
                info.num_frames = int(vs.frames or round(info.video_duration * info.fps))
                info.video_codec = vs.codec_context.name
                if info.width <= 0 or info.height <= 0:
                    raise DecodeError(f"{path}: video stream has no frame size")
            if as_ is not None:
                info.audio_start, info.audio_duration = _stream_times(as_, c)
                info.audio_rate = int(as_.codec_context.sample_rate or as_.rate or 0)
                info.audio_channels = int(as_.codec_context.channels
                                          if hasattr(as_.codec_context, "channels")
                                          else len(as_.codec_context.layout.channels))
                info.audio_codec = as_.codec_context.name
            unknown = [st for st in (vs, as_) if st is not None and st.duration is None]
            if unknown:
                ends = _measured_ends(c, unknown)
                if vs in unknown and vs.index in ends:
                    info.video_duration = max(0.0, ends[vs.index] - info.video_start)
                    info.num_frames = int(vs.frames or round(info.video_duration * info.fps))
                if as_ in unknown and as_.index in ends:
                    info.audio_duration = max(0.0, ends[as_.index] - info.audio_start)
            if not info.duration:
                info.duration = max(info.video_start + info.video_duration,
                                    info.audio_start + info.audio_duration)
            return info
    except DecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as e:
        raise DecodeError(f"{path}: cannot probe ({type(e).__name__}: {e})") from e


def resize_dims(h: int, w: int, short_side: Optional[int], size: Optional[tuple]) -> tuple[int, int]:
    """Output (h, w) before the centre crop: short side -> short_side, grown to cover `size`."""
    scale = 1.0
    if short_side:
        scale = short_side / min(h, w)
    if size:
        scale = max(scale, size[0] / h, size[1] / w) if short_side else max(size[0] / h, size[1] / w)
    if scale == 1.0:
        return h, w
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if size:
        nh, nw = max(nh, size[0]), max(nw, size[1])
    return nh, nw


FRAME_MODES = ("full", "centre_crop")


def frame_dims(h: int, w: int, short_side: Optional[int], size: Optional[tuple],
               frame_mode: str = "centre_crop") -> tuple:
    """((resize h, w), centre-crop size or None) for a source frame of h×w.

    "centre_crop": short side -> `short_side` (grown to cover `size`), then a centre crop to `size`.
    "full": the whole frame resized onto the `size` canvas (aspect ratio not kept; the caller keeps
    the source size to undo it), or by `short_side` with its aspect ratio when `size` is None.
    """
    if frame_mode == "full":
        return (tuple(int(v) for v in size) if size else resize_dims(h, w, short_side, None)), None
    return resize_dims(h, w, short_side, size), size


def _centre_crop(a: np.ndarray, size: Optional[tuple]) -> np.ndarray:
    if not size:
        return a
    h, w = a.shape[:2]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return a[top:top + size[0], left:left + size[1]]


def _frame_times(win: Window, fps: float) -> np.ndarray:
    n = int(math.floor(win[1] * fps + 1e-6))
    return win[0] + np.arange(n) / fps


def _clusters(windows: list[tuple[float, float]], gap_s: float) -> list[tuple[float, float]]:
    """Merge (start, end) intervals whose gaps are below gap_s."""
    out: list[list[float]] = []
    for s, e in sorted(windows):
        if out and s <= out[-1][1] + gap_s:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def decode_windows(path: str | Path, video_windows: Sequence[Window] = (),
                   audio_windows: Sequence[Window] = (), fps: float = 16,
                   short_side: Optional[int] = None, size: Optional[tuple] = None,
                   audio_rate: int = 16000, short_clip: str = "pad", no_audio: str = "skip",
                   gap_s: float = 1.0, threads: int = 1, frame_mode: str = "centre_crop",
                   info: Optional[dict] = None):
    """Decode video and audio windows from one container open.

    Returns (frames, waves): frames[i] uint8 [T_i, H, W, 3] with T_i = floor(dur*fps), H,W = `size`
    (or the resized frame); waves[i] float32 [round(dur*audio_rate)] in [-1, 1].
    frame_mode: "centre_crop" resizes the short side to `short_side` and centre-crops `size`;
    "full" resizes the whole frame onto `size` (`frame_dims`). `info` (a dict), if given, receives
    "frame_hw": the decoded source frame's (height, width) in pixels.
    short_clip: "pad" repeats the last frame / zero-pads audio past the stream end, "skip" raises
    ShortClipError. no_audio: "skip" raises NoAudioError, "silence" returns zeros.
    gap_s: windows of one modality closer than this are read from one seek.
    threads: video decoder slice threads (1: DataLoader workers parallelise across items).
    """
    path = str(path)
    if is_frame_ref(path):                                   # the decode-free tier: slices, no decoding
        return read_windows(path, video_windows, audio_windows, fps=fps, short_side=short_side, size=size,
                            audio_rate=audio_rate, short_clip=short_clip, no_audio=no_audio,
                            frame_mode=frame_mode, info=info)
    if short_clip not in ("pad", "skip") or no_audio not in ("skip", "silence"):
        raise ValueError(f"short_clip={short_clip!r} (pad|skip), no_audio={no_audio!r} (skip|silence)")
    if frame_mode not in FRAME_MODES:
        raise ValueError(f"frame_mode={frame_mode!r}; expected one of {FRAME_MODES}")
    vwins = [(float(s), float(d)) for s, d in video_windows]
    awins = [(float(s), float(d)) for s, d in audio_windows]
    try:
        container = av.open(open_source(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as e:
        raise DecodeError(f"{path}: cannot open ({type(e).__name__}: {e})") from e
    try:
        vs = container.streams.video[0] if (vwins and container.streams.video) else None
        as_ = container.streams.audio[0] if (awins and container.streams.audio) else None
        if vwins and vs is None:
            raise DecodeError(f"{path}: video requested but the file has no video stream")
        if awins and as_ is None and no_audio == "skip":
            raise NoAudioError(f"{path}: audio requested but the file has no audio stream "
                               f"(no_audio='silence' would return zeros)")
        if vs is not None:
            vs.thread_type = "SLICE"
            vs.thread_count = max(1, threads)
        targets = [_frame_times(w, fps) for w in vwins]
        all_t = np.unique(np.concatenate(targets)) if targets else np.zeros(0)
        picked: dict[float, np.ndarray] = {}
        audio_chunks: list[tuple[float, np.ndarray]] = []  # (start time, mono samples)
        # Video and audio are read in separate passes (each from its own seek): a joint pass would
        # decode video from the (earlier) audio start, ~1.5x slower for the default windows.
        if vs is not None:
            for lo, hi in _clusters([(t, t + 1e-3) for t in all_t], gap_s):
                _read_span(container, vs, None, lo, hi, all_t, picked, audio_chunks, short_side,
                           size, audio_rate, frame_mode, info)
        if as_ is not None:
            for lo, hi in _clusters([(s, s + d) for s, d in awins], gap_s):
                _read_span(container, None, as_, lo, hi, all_t, picked, audio_chunks, short_side,
                           size, audio_rate, frame_mode, info)
        frames = [_assemble_video(path, t, picked, short_clip) for t in targets]
        waves = [_assemble_audio(path, w, audio_chunks, audio_rate, short_clip, as_ is not None)
                 for w in awins]
        return frames, waves
    except DecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError, MemoryError) as e:
        raise DecodeError(f"{path}: decode failed ({type(e).__name__}: {e})") from e
    finally:
        container.close()


def _read_span(container, vs, as_, lo, hi, all_t, picked, audio_chunks, short_side, size, rate,
               frame_mode="centre_crop", info=None):
    """One seek to `lo`, then demux until the stream(s) given pass `hi`."""
    want_t = all_t[(all_t >= lo - 1e-9) & (all_t <= hi)] if vs is not None else np.zeros(0)
    seek_stream = vs if vs is not None else as_
    seek_to = max(lo - 0.05, 0.0)
    try:
        container.seek(int(seek_to / seek_stream.time_base), stream=seek_stream, backward=True,
                       any_frame=False)
    except av.FFmpegError:
        container.seek(0)
    for s in (vs, as_):
        if s is not None:
            s.codec_context.flush_buffers()
    streams = [s for s in (vs, as_) if s is not None]
    v_done = vs is None or len(want_t) == 0
    a_done = as_ is None
    ti = 0
    prev = None           # last video frame seen (nearest-earlier candidate)
    prev_rgb = None       # its converted array, once needed
    resampler = None
    a_start = None
    a_parts: list[np.ndarray] = []
    dims = None
    for packet in container.demux(streams):
        is_v = packet.stream is vs
        if (is_v and v_done) or (not is_v and a_done):
            if v_done and a_done:
                break
            continue
        for frame in packet.decode():
            if frame.time is None:
                continue
            if is_v:
                t = frame.time
                if dims is None:
                    dims = frame_dims(frame.height, frame.width, short_side, size, frame_mode)
                    if info is not None:
                        info.setdefault("frame_hw", (frame.height, frame.width))
                while ti < len(want_t) and t > want_t[ti] + 1e-6:
                    if want_t[ti] not in picked:
                        if prev_rgb is None:
                            prev_rgb = _to_rgb(prev if prev is not None else frame, dims)
                        picked[want_t[ti]] = prev_rgb
                    ti += 1
                prev, prev_rgb = frame, None
                if ti >= len(want_t):
                    v_done = True
                    break
            else:
                if resampler is None:
                    resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=rate)
                    a_start = frame.time
                for out in resampler.resample(frame):
                    x = out.to_ndarray()
                    a_parts.append(x[0] if x.shape[0] == 1 else x.mean(axis=0))
                if frame.time + frame.samples / frame.sample_rate >= hi:
                    a_done = True
        if v_done and a_done:
            break
    if vs is not None and prev is not None and ti < len(want_t):  # stream ended before some targets
        last = prev_rgb if prev_rgb is not None else _to_rgb(prev, dims)
        while ti < len(want_t):
            if want_t[ti] not in picked:
                picked[want_t[ti]] = last if want_t[ti] <= prev.time + 1.0 / max(_fps(vs), 1) \
                    else ("END", last)
            ti += 1
    if resampler is not None:
        for out in resampler.resample(None):
            a_parts.append(out.to_ndarray().mean(axis=0))
        if a_parts:
            audio_chunks.append((a_start, np.clip(np.concatenate(a_parts), -1.0, 1.0)  # as s16
                                 .astype(np.float32)))


def _fps(vs) -> float:
    r = vs.average_rate or vs.guessed_rate or vs.base_rate
    return float(r) if r else 25.0


_REFORMATTER = (None, None)   # (pid, VideoReformatter): one swscale context per process, re-used
                              # across frames (3x faster); never re-used after fork (its threads hang)


_INHERITED = []                # a forked child keeps the parent's one alive: freeing it would hang


def _reformatter():
    global _REFORMATTER
    if _REFORMATTER[0] != os.getpid():
        from av.video.reformatter import VideoReformatter
        _INHERITED.append(_REFORMATTER)
        _REFORMATTER = (os.getpid(), VideoReformatter())
    return _REFORMATTER[1]


def _to_rgb(frame, dims) -> np.ndarray:
    """uint8 [H, W, 3]: swscale resize (bilinear) to dims[0], then centre crop to dims[1] (if any)."""
    (h, w), size = dims
    a = _reformatter().reformat(frame, format="rgb24", width=w, height=h,
                              interpolation="BILINEAR").to_ndarray()
    return np.ascontiguousarray(_centre_crop(a, size))


def _assemble_video(path, times, picked, short_clip) -> np.ndarray:
    out = []
    for t in times:
        f = picked.get(t)
        if f is None or isinstance(f, tuple):
            if short_clip == "skip":
                raise ShortClipError(f"{path}: video window reaches {t:.3f}s, past the stream end")
            if f is None and not out:
                raise DecodeError(f"{path}: no video frame decoded near {t:.3f}s")
            f = out[-1] if out else f[1]
        out.append(f)
    if not out:
        raise DecodeError(f"{path}: empty video window")
    return np.stack(out)


def _assemble_audio(path, win, chunks, rate, short_clip, has_audio) -> np.ndarray:
    start, dur = win
    n = int(round(dur * rate))
    wave = np.zeros(n, np.float32)
    if not has_audio:
        return wave
    covered = 0
    for c_start, samples in chunks:
        off = int(round((start - c_start) * rate))      # index of the window start in this chunk
        lo, hi = max(off, 0), min(off + n, len(samples))
        if hi > lo:
            wave[lo - off:hi - off] = samples[lo:hi]
            covered = max(covered, hi - off)
    if covered < n - max(1, rate // 100) and short_clip == "skip":
        raise ShortClipError(f"{path}: audio window [{start:.3f}, {start + dur:.3f}]s "
                             f"has only {covered}/{n} samples")
    if not chunks:
        raise DecodeError(f"{path}: no audio decoded for window starting at {start:.3f}s")
    return wave


from .frames import is_frame_ref, probe_entry, read_windows, store_exists  # noqa: E402  (storage tiers)
from .shards import is_shard_ref, member_exists, open_member  # noqa: E402
