"""Re-encode a dataset for fast random access: capped short side, short keyframe interval.

    transcode("in.avi", "out.mp4", short_side=256, gop=16)     # H.264 yuv420p + AAC, via PyAV
    rows, health = prepare_dataset("k400.csv", "/fast/k400_256", workers=8)   # + new manifest

Seeking dominates decode time on long-GOP sources (environment_notes.md): with a keyframe every
`gop` frames a 0.75 s snippet decodes at most gop + 12 frames. Files without video (audio-only)
are re-encoded audio-only. Failures are skipped and reported; the new manifest lists the outputs.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av

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
