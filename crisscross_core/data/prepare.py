"""Re-encode a dataset for fast random access: capped short side, short keyframe interval.

    transcode("in.avi", "out.mp4", short_side=256, gop=16)     # H.264 yuv420p + AAC, via PyAV
    rows, health = prepare_dataset("k400.csv", "/fast/k400_256", workers=8)   # + new manifest

Seeking dominates decode time on long-GOP sources (environment_notes.md): with a keyframe every
`gop` frames a 0.75 s snippet decodes at most gop + 12 frames. Files without video (audio-only)
are re-encoded audio-only. Failures are skipped and reported; the new manifest lists the outputs.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np

from .decode import DecodeError, probe
from .manifest import Entry, health_summary, load_rows, row_from_info, write_health, write_manifest


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def transcode(src: str | Path, dst: str | Path, short_side: Optional[int] = 256, gop: int = 16,
              crf: int = 23, preset: str = "veryfast", audio_bitrate: int = 128000,
              threads: int = 1) -> Path:
    """Re-encode `src` to `dst` (.mp4): video libx264 yuv420p, short side <= short_side (never
    upscaled), keyframe every `gop` frames; audio AAC at the source rate and layout."""
    src, dst = str(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.stem + ".part" + dst.suffix)
    try:
        with av.open(src, metadata_errors="ignore") as inp, av.open(str(tmp), "w", format="mp4") as out:
            ivs = inp.streams.video[0] if inp.streams.video else None
            ias = inp.streams.audio[0] if inp.streams.audio else None
            if ivs is None and ias is None:
                raise DecodeError(f"{src}: no video or audio stream")
            ovs = oas = None
            if ivs is not None:
                rate = ivs.average_rate or ivs.guessed_rate or Fraction(25)
                rate = Fraction(rate).limit_denominator(1001)
                w, h = ivs.codec_context.width, ivs.codec_context.height
                s = min(1.0, short_side / min(w, h)) if short_side else 1.0
                ovs = out.add_stream("libx264", rate=rate)
                ovs.width, ovs.height, ovs.pix_fmt = _even(w * s), _even(h * s), "yuv420p"
                ovs.codec_context.options = {"crf": str(crf), "preset": preset, "g": str(gop),
                                             "keyint_min": str(gop), "sc_threshold": "0",
                                             "threads": str(threads)}
                vtb = Fraction(1) / rate          # the stream's time base changes once the header is written
                ovs.time_base = vtb
                ivs.thread_type = "AUTO"
            if ias is not None:
                arate = ias.codec_context.sample_rate
                layout = ias.codec_context.layout.name if ias.codec_context.layout else "mono"
                layout = layout if layout in ("mono", "stereo") else "stereo"
                oas = out.add_stream("aac", rate=arate, layout=layout)
                oas.bit_rate = audio_bitrate
                resampler = av.AudioResampler(format="fltp", layout=layout, rate=arate,
                                              frame_size=oas.codec_context.frame_size or 1024)
            n_v = n_a = 0
            for packet in inp.demux([s for s in (ivs, ias) if s is not None]):
                for frame in packet.decode():
                    if packet.stream is ivs:
                        f = frame.reformat(width=ovs.width, height=ovs.height, format="yuv420p")
                        f.pts, f.time_base = n_v, vtb
                        n_v += 1
                        out.mux(ovs.encode(f))
                    else:
                        for f in resampler.resample(frame):
                            n_a = _mux_audio(out, oas, f, n_a)
            if oas is not None:
                for f in resampler.resample(None):
                    n_a = _mux_audio(out, oas, f, n_a)
                out.mux(oas.encode(None))
            if ovs is not None:
                out.mux(ovs.encode(None))
        tmp.replace(dst)
        return dst
    except DecodeError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise DecodeError(f"{src}: transcode failed ({type(e).__name__}: {e})") from e


def _mux_audio(out, oas, f, n_a: int) -> int:
    f.pts, f.time_base = n_a, Fraction(1, f.sample_rate)
    out.mux(oas.encode(f))
    return n_a + f.samples


def _job(args):
    src, dst, kw, row = args
    try:
        transcode(src, dst, **kw)
        return row, probe(dst), None
    except Exception as e:               # report and go on
        return row, None, str(e)


def prepare_dataset(manifest, out_root: str | Path, out_manifest: Optional[str | Path] = None,
                    root=None, short_side: int = 256, gop: int = 16, crf: int = 23,
                    preset: str = "veryfast", workers: int = 4, progress: bool = True,
                    skip_existing: bool = True):
    """Transcode every manifest row into `out_root` (same relative paths, `.mp4`), in parallel.

    Returns (rows, health); writes `out_manifest` (default `<out_root>/manifest.csv`) and its
    `.health.json`. Existing outputs are re-used when skip_existing (resumable)."""
    from tqdm.auto import tqdm
    rows, src_root = load_rows(manifest, root)
    out_root = Path(out_root)
    out_manifest = Path(out_manifest or out_root / "manifest.csv")
    kw = dict(short_side=short_side, gop=gop, crf=crf, preset=preset)
    jobs, done = [], []
    for r in rows:
        dst = out_root / Path(r.path).with_suffix(".mp4")
        if skip_existing and dst.exists():
            done.append((r, dst))
        else:
            jobs.append((str(src_root / r.path), str(dst), kw, r))
    results = []
    for r, dst in done:
        try:
            results.append((r, probe(dst), None))
        except DecodeError:
            jobs.append((str(src_root / r.path), str(dst), kw, r))
    if workers <= 1:
        results += [_job(j) for j in tqdm(jobs, desc="prepare", disable=not progress)]
    else:
        with ProcessPoolExecutor(workers) as ex:
            results += list(tqdm(ex.map(_job, jobs), total=len(jobs), desc="prepare",
                                 disable=not progress))
    new_rows, failed = [], []
    for r, info, err in results:
        if info is None:
            failed.append({"path": r.path, "reason": err})
            continue
        e = Entry(str(Path(r.path).with_suffix(".mp4")), r.label, r.label_idx, r.split, r.fold)
        new_rows.append(row_from_info(e, info))
    new_rows.sort(key=lambda r: r.path)
    write_manifest(new_rows, out_manifest, meta={"prepared_from": str(manifest) if isinstance(
        manifest, (str, Path)) else "rows", "short_side": short_side, "gop": gop, "crf": crf})
    health = health_summary(new_rows, failed)
    write_health(health, out_manifest)
    return new_rows, health


def write_media(path: str | Path, video=None, fps: float = 16, audio=None, rate: int = 16000,
                gop: int = 16, vcodec: str = "libx264", acodec: str = "aac", crf: int = 18) -> Path:
    """Write arrays to a media file (tests, demos): video uint8 [T, H, W, 3] (H, W even for
    yuv420p codecs) and/or audio float32 [C, N] in [-1, 1]. vcodec e.g. libx264, mpeg4;
    acodec e.g. aac, pcm_s16le (use .mkv/.avi/.wav), flac."""
    import numpy as np
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate_f = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as out:
        vs = as_ = None
        if video is not None:
            vs = out.add_stream(vcodec, rate=rate_f)
            vs.height, vs.width = int(video.shape[1]), int(video.shape[2])
            vs.pix_fmt = "yuv420p"
            opts = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
            if vcodec == "libx264":
                opts.update({"crf": str(crf), "preset": "ultrafast", "bf": "0"})
            else:
                vs.codec_context.qmin, vs.codec_context.qmax = 1, 3
            vs.codec_context.options = opts
            vtb = Fraction(1) / rate_f
            vs.time_base = vtb
        if audio is not None:
            audio = np.asarray(audio, np.float32)
            audio = audio[None] if audio.ndim == 1 else audio
            layout = "mono" if audio.shape[0] == 1 else "stereo"
            as_ = out.add_stream(acodec, rate=rate, layout=layout)
            fmt = as_.codec_context.codec.audio_formats[0].name
            fs = as_.codec_context.frame_size or 1024
            resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate, frame_size=fs)
        if vs is not None:
            for k, img in enumerate(video):
                f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                f = f.reformat(format="yuv420p")
                f.pts, f.time_base = k, vtb
                out.mux(vs.encode(f))
            out.mux(vs.encode(None))
        if as_ is not None:
            src = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio), format="fltp", layout=layout)
            src.sample_rate, src.pts, src.time_base = rate, 0, Fraction(1, rate)
            n = 0
            for f in resampler.resample(src) + resampler.resample(None):
                n = _mux_audio(out, as_, f, n)
            out.mux(as_.encode(None))
    return path


# ----------------------------------------------------------------------------- storage tiers: shards, frames

def _sample_key(i: int, path: str) -> str:
    """A webdataset-safe key (no dots: webdataset splits key and extension at the first dot)."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)
    return f"{i:07d}_{stem[:80]}"


def _shard_job(args):
    """Worker: transcode one clip to a temporary .mp4 (or take the file as it is when `kw` is None);
    return its bytes, extension and probe, or the error."""
    import tempfile
    i, src, kw, row = args
    if kw is None:
        try:
            return i, row, (Path(src).read_bytes(), Path(src).suffix.lstrip(".").lower() or "bin"), probe(src), None
        except Exception as e:  # noqa: BLE001 - report and go on
            return i, row, None, None, str(e)
    with tempfile.TemporaryDirectory() as d:
        dst = Path(d) / "clip.mp4"
        try:
            transcode(src, dst, **kw)
            return i, row, (dst.read_bytes(), "mp4"), probe(dst), None
        except Exception as e:  # noqa: BLE001 - report and go on
            return i, row, None, None, str(e)


def prepare_shards(manifest, out_dir: str | Path, root=None, shard_bytes: int = 1 << 30, short_side: int = 256,
                   gop: int = 16, crf: int = 23, preset: str = "veryfast", workers: int = 4,
                   progress: bool = True, transcode_clips: bool = True):
    """Transcode every manifest row (as `prepare_dataset`) into tar shards of ~`shard_bytes` in the
    webdataset layout (`<key>.mp4` + `<key>.json`), with an offset index and sha256 per shard
    (data/shards.py). `transcode_clips=False` packs the files as they are (already prepared ones).
    Writes `<out_dir>/manifest.csv` whose rows point into the shards. Returns (rows, health)."""
    import json as _json
    from dataclasses import asdict
    from tqdm.auto import tqdm
    from .shards import SEP, ShardWriter
    rows, src_root = load_rows(manifest, root)
    out_dir = Path(out_dir)
    kw = dict(short_side=short_side, gop=gop, crf=crf, preset=preset) if transcode_clips else None
    jobs = [(i, str(src_root / r.path), kw, r) for i, r in enumerate(rows)]
    writer = ShardWriter(out_dir, shard_bytes)
    new_rows, failed = [], []

    def consume(results):
        for i, r, blob, info, err in tqdm(results, total=len(jobs), desc="shards", disable=not progress):
            if err is not None:
                failed.append({"path": r.path, "reason": err})
                continue
            (data, ext), key = blob, _sample_key(i, r.path)
            shard = Path(writer.add(key, {ext: data, "json": _json.dumps(asdict(r)).encode()}))
            e = Entry(f"{shard.name}{SEP}{key}.{ext}", r.label, r.label_idx, r.split, r.fold)
            nr = row_from_info(e, info)
            nr.size_bytes = len(data)
            new_rows.append(nr)

    try:
        if workers <= 1:
            consume(map(_shard_job, jobs))
        else:
            with ProcessPoolExecutor(workers) as ex:
                consume(ex.map(_shard_job, jobs, chunksize=4))
    finally:
        writer.close()
    out_manifest = out_dir / "manifest.csv"
    write_manifest(new_rows, out_manifest, meta={
        "prepared_from": str(manifest) if isinstance(manifest, (str, Path)) else "rows", "root": ".",
        "storage": "shards", "shards": len(writer.written),
        **({"short_side": short_side, "gop": gop, "crf": crf} if transcode_clips else {"packed": "as is"})})
    health = health_summary(new_rows, failed)
    health["shards"] = len(writer.written)
    write_health(health, out_manifest)
    return new_rows, health


def _frames_job(args):
    from .frames import decode_clip
    i, src, fps, short_side, rate, row = args
    try:
        return i, row, decode_clip(src, fps=fps, short_side=short_side, rate=rate), None
    except Exception as e:  # noqa: BLE001 - report and go on
        return i, row, None, str(e)


def prepare_frames(manifest, out_dir: str | Path, root=None, short_side: int = 128, fps: float = 16.0,
                   rate: int = 16000, workers: int = 4, progress: bool = True):
    """Decode every manifest row once into a frame store (`<out_dir>`, named `*.frames`): uint8 frames
    at `fps` with short side `short_side`, 16 kHz mono audio as float16, an index (data/frames.py).
    Writes `<out_dir>/manifest.csv` whose rows point into the store. Returns (rows, health)."""
    import json as _json
    from tqdm.auto import tqdm
    from ..fileio import atomic_write_text
    from .frames import SEP, SUFFIX, probe_entry
    rows, src_root = load_rows(manifest, root)
    store = Path(out_dir)
    if not store.name.endswith(SUFFIX):
        store = store.with_name(store.name + SUFFIX)
    store.mkdir(parents=True, exist_ok=True)
    jobs = [(i, str(src_root / r.path), fps, short_side, rate, r) for i, r in enumerate(rows)]
    index = {"fps": fps, "rate": rate, "short_side": short_side, "clips": {}}
    entries, failed = [], []
    with open(store / "video.u8.part", "wb") as fv, open(store / "audio.f16.part", "wb") as fa:
        def consume(results):
            for i, r, clip, err in tqdm(results, total=len(jobs), desc="frames", disable=not progress):
                if err is not None:
                    failed.append({"path": r.path, "reason": err})
                    continue
                key, info, frames, audio = _sample_key(i, r.path), clip["info"], clip["frames"], clip["audio"]
                voff, aoff = fv.tell(), fa.tell() // 2
                fv.write(np.ascontiguousarray(frames, np.uint8).tobytes())
                fa.write(np.asarray(audio, np.float16).tobytes())
                t, h, w = (frames.shape[:3] if len(frames) else (0, 0, 0))
                index["clips"][key] = {"video": [voff, int(t), int(h), int(w)], "audio": [aoff, int(len(audio))],
                                       "fps": fps, "rate": rate, "video_start": info.video_start,
                                       "audio_start": info.audio_start,
                                       "video_duration": float(t) / fps if t else 0.0,
                                       "audio_duration": len(audio) / rate, "source": r.path}
                entries.append((key, r))
        if workers <= 1:
            consume(map(_frames_job, jobs))
        else:
            with ProcessPoolExecutor(workers) as ex:
                consume(ex.map(_frames_job, jobs))
    os.replace(store / "video.u8.part", store / "video.u8")
    os.replace(store / "audio.f16.part", store / "audio.f16")
    atomic_write_text(store / "index.json", _json.dumps(index))
    from . import frames as _frames
    _frames._STORES.pop((os.getpid(), str(store)), None)     # a rewritten store is reopened
    new_rows = []
    for key, r in entries:
        ref = f"{store}{SEP}{key}"
        e = Entry(f"{store.name}{SEP}{key}", r.label, r.label_idx, r.split, r.fold)
        new_rows.append(row_from_info(e, probe_entry(ref)))
    out_manifest = store / "manifest.csv"
    write_manifest(new_rows, out_manifest, meta={
        "prepared_from": str(manifest) if isinstance(manifest, (str, Path)) else "rows", "root": "..",
        "storage": "frames", "fps": fps, "short_side": short_side, "rate": rate})
    health = health_summary(new_rows, failed)
    write_health(health, out_manifest)
    return new_rows, health
