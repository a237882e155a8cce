"""Data-path throughput: two-view pretraining samples/s per CPU core (one JSON line per figure).

    python benchmarks/dataloader.py [--items 42] [--clips ../shared/data/clips] [--keep DIR]

Figures (single process = one worker, so samples per CPU-second = samples/s per core):
  * plain_pyav_seek: a naive loader (seek + decode video, seek again + decode audio, convert every
    decoded frame) on the shared clips, for reference;
  * pretrain_dataset on the original shared clips, on 256p re-encodes with a long GOP (250) and
    on `prepare`'s output (256p, GOP 16);
  * TrainTransform (crisscross_core.data.pipeline) batched augmentation on CPU / CUDA when present.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from crisscross_core.config import DataConfig
from crisscross_core.data.builders import folder
from crisscross_core.data.datasets import PretrainDataset
from crisscross_core.data.manifest import build_manifest, read_manifest, write_manifest
from crisscross_core.data.prepare import prepare_dataset, transcode

REPO = Path(__file__).resolve().parents[1]


def emit(bench, metric, value, unit, device="cpu", **kw):
    print(json.dumps({"bench": bench, "metric": metric, "value": round(float(value), 2), "unit": unit,
                      "device": device, **kw}), flush=True)


def timed(fn, n):
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return time.perf_counter() - w0, time.process_time() - c0


def naive_sample(path, rng):
    """Open, seek, decode 8 frames at 16 fps (112x112), seek again, 2 s of 16 kHz mono audio."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        dur = float(vs.duration * vs.time_base) if vs.duration else 5.0
        s = rng.uniform(0, max(dur - 2.0, 0.01))
        c.seek(int(s / vs.time_base), stream=vs)
        frames, want = [], s
        for f in c.decode(vs):
            img = f.to_ndarray(format="rgb24", width=112, height=112)
            if f.time is not None and f.time >= want:
                frames.append(img)
                want += 1 / 16
            if len(frames) == 8:
                break
        if c.streams.audio:
            a = c.streams.audio[0]
            c.seek(int(s / vs.time_base), stream=vs)
            r = av.AudioResampler(format="s16", layout="mono", rate=16000)
            n = 0
            for f in c.decode(a):
                for o in r.resample(f):
                    n += o.samples
                if n >= 32000:
                    break


def make_variant(rows, root, out, **kw):
    out.mkdir(parents=True, exist_ok=True)
    for r in rows:
        dst = out / Path(r.path).with_suffix(".mp4")
        if not dst.exists():
            transcode(root / r.path, dst, **kw)
    new, _ = build_manifest(folder(out), out, workers=1, progress=False)
    write_manifest(new, out / "manifest.csv")
    return out / "manifest.csv"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default=str(REPO / "data_manifests" / "shared_clips.csv"))
    ap.add_argument("--items", type=int, default=42, help="items per measurement")
    ap.add_argument("--keep", default=None, help="directory for the 256p variants (default: temp)")
    ap.add_argument("--aug-batch", type=int, default=32)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    m = read_manifest(args.manifest)
    cfg = DataConfig(split="", no_audio_policy="silence", short_clip_policy="pad", clips_per_video=4)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cc_bench_"))
    info = {"files": len(m.rows), "decode": f"{cfg.decode_short_side}p crop {tuple(cfg.decode_size)}",
            "relation": cfg.relation, "workers": 1}

    rng = np.random.default_rng(0)
    wall, cpu = timed(lambda i: naive_sample(m.root / m.rows[i % len(m.rows)].path, rng), args.items)
    emit("dataloader", "plain_pyav_seek_samples_per_core_s", args.items / cpu, "samples/s",
         data="shared_clips", wall_samples_per_s=round(args.items / wall, 2), **info)

    variants = {"shared_clips_original": args.manifest}
    fresh = not (tmp / "gop16" / "manifest.csv").exists()      # --keep re-uses earlier outputs
    t0 = time.perf_counter()
    variants["256p_gop250"] = make_variant(m.rows, m.root, tmp / "gop250", short_side=256, gop=250)
    prepare_dataset(args.manifest, tmp / "gop16", short_side=256, gop=16, workers=1, progress=False)
    variants["256p_gop16_prepared"] = tmp / "gop16" / "manifest.csv"
    if fresh:
        emit("prepare", "transcode_seconds_per_file", (time.perf_counter() - t0) / (2 * len(m.rows)),
             "s", data="shared_clips", wall=True)
    results = {}
    for name, man in variants.items():
        ds = PretrainDataset(man, cfg, seed=0)
        ds[0]                                                        # warm up
        wall, cpu = timed(lambda i: ds[i % len(ds)], args.items)
        results[name] = args.items / cpu
        emit("dataloader", "two_view_samples_per_core_s", results[name], "samples/s", data=name,
             wall_samples_per_s=round(args.items / wall, 2), **info)
    emit("dataloader", "speedup_prepared_vs_original",
         results["256p_gop16_prepared"] / results["shared_clips_original"], "x")
    emit("dataloader", "speedup_gop16_vs_gop250_at_256p",
         results["256p_gop16_prepared"] / results["256p_gop250"], "x")

    try:
        from crisscross_core.data.pipeline import TrainTransform
    except ImportError as e:
        print(f"# TrainTransform not available ({e}); skipping augmentation figures", file=sys.stderr)
        return 0
    ds = PretrainDataset(variants["256p_gop16_prepared"], cfg)
    items = [ds[i] for i in range(min(args.aug_batch, len(ds)))]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("video", "audio", "share")}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        tt = TrainTransform().to(dev)
        v, a, s = (batch[k].to(dev) for k in ("video", "audio", "share"))
        tt(v, a, s)
        reps = 2 if dev == "cpu" else 20
        if dev == "cuda":
            torch.cuda.synchronize()
        w0 = time.perf_counter()
        for _ in range(reps):
            tt(v, a, s)
        if dev == "cuda":
            torch.cuda.synchronize()
        dt = (time.perf_counter() - w0) / reps
        emit("augment", "train_transform_samples_per_s", len(items) / dt, "samples/s", device=dev,
             batch=len(items), threads=torch.get_num_threads())
    return 0


if __name__ == "__main__":
    sys.exit(main())
