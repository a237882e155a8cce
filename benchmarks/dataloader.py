"""Data-path throughput: two-view pretraining samples/s per CPU core (one JSON line per figure).

    python benchmarks/dataloader.py [--items 42] [--manifest data_manifests/shared_clips.csv] [--keep DIR]

Figures (single process = one worker, so samples per CPU-second = samples/s per core):
  * plain_pyav_seek: a naive loader (seek + decode video, seek again + decode audio, convert every
    decoded frame) on the shared clips, for reference;
  * pretrain_dataset per frame mode (`data.frame_mode`, `data.decode_size`) — centre_crop 128x170
    (tiny_cpu's kind: short side 128, 4:3 centre crop), full 256x342 and full 256x456 (the whole
    frame on a canvas; the paper presets) — on the original shared clips, on 256p re-encodes with
    a long GOP (250) and on `prepare`'s output (256p, GOP 16); with the bytes a sample carries;
  * TrainTransform (crisscross_core.data.pipeline) batched augmentation per frame mode, on CPU and
    on CUDA when present (the crop is drawn in each source frame's geometry: `frame_hw`).

`--tiers`: the storage tiers side by side (data/shards.py, data/frames.py): two-view samples/s per
core, file opens per 1,000 samples and disk per hour of video for the original files, `prepare`'s
files, the same packed into tar shards, and the decode-free frame store, on the shared clips
replicated to `--tier-samples` samples (random order, as the global batch sampler reads them).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
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


FRAME_MODES = {   # name -> DataConfig fields
    "centre_crop_128x170": dict(frame_mode="centre_crop", decode_short_side=128, decode_size=(128, 170)),
    "full_256x342": dict(frame_mode="full", decode_size=(256, 342)),
    "full_256x456": dict(frame_mode="full", decode_size=(256, 456)),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default=str(REPO / "data_manifests" / "shared_clips.csv"))
    ap.add_argument("--items", type=int, default=84, help="items per figure, over all rounds")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per figure (median)")
    ap.add_argument("--keep", default=None, help="directory for the 256p variants (default: temp)")
    ap.add_argument("--aug-batch", type=int, default=32)
    ap.add_argument("--modes", default=",".join(FRAME_MODES), help="comma-separated FRAME_MODES names")
    ap.add_argument("--tiers", action="store_true",
                    help="only the storage tiers: original / prepared files / shards / frame store")
    ap.add_argument("--tier-samples", type=int, default=2100, help="--tiers: samples (clips x clips_per_video)")
    args = ap.parse_args(argv)
    if args.tiers:
        return storage_tiers(args)
    torch.set_num_threads(1)
    m = read_manifest(args.manifest)
    base = DataConfig(split="", no_audio_policy="silence", short_clip_policy="pad", clips_per_video=4)
    modes = {k: FRAME_MODES[k] for k in args.modes.split(",")}
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cc_bench_"))
    common = {"files": len(m.rows), "relation": base.relation, "workers": 1}

    rng = np.random.default_rng(0)
    wall, cpu = timed(lambda i: naive_sample(m.root / m.rows[i % len(m.rows)].path, rng), args.items)
    emit("dataloader", "plain_pyav_seek_samples_per_core_s", args.items / cpu, "samples/s",
         data="shared_clips", wall_samples_per_s=round(args.items / wall, 2), **common)

    variants = {"shared_clips_original": args.manifest}
    fresh = not (tmp / "gop16" / "manifest.csv").exists()      # --keep re-uses earlier outputs
    t0 = time.perf_counter()
    variants["256p_gop250"] = make_variant(m.rows, m.root, tmp / "gop250", short_side=256, gop=250)
    prepare_dataset(args.manifest, tmp / "gop16", short_side=256, gop=16, workers=1, progress=False)
    variants["256p_gop16_prepared"] = tmp / "gop16" / "manifest.csv"
    if fresh:
        emit("prepare", "transcode_seconds_per_file", (time.perf_counter() - t0) / (2 * len(m.rows)),
             "s", data="shared_clips", wall=True)
    # modes are interleaved round by round and each figure is the median round: on a shared machine
    # the load drifts, and measuring one mode after the other would bill the drift to the modes
    results, rates, nbytes, walls = {}, {}, {}, {}
    datasets = {(mode, name): PretrainDataset(man, replace(base, **fields), seed=0)
                for mode, fields in modes.items() for name, man in variants.items()}
    for key, ds in datasets.items():
        it = ds[0]                                                       # warm up
        nbytes[key] = sum(it[k].numel() * it[k].element_size() for k in ("video", "audio"))
    per_round = max(1, args.items // args.rounds)
    for r in range(args.rounds):
        for key, ds in datasets.items():
            off = r * per_round
            wall, cpu = timed(lambda i: ds[(off + i) % len(ds)], per_round)
            rates.setdefault(key, []).append(per_round / cpu)
            walls.setdefault(key, []).append(per_round / wall)
    for (mode, name), rs in rates.items():
        results[mode, name] = float(np.median(rs))
        emit("dataloader", "two_view_samples_per_core_s", results[mode, name], "samples/s", data=name,
             frame_mode=mode, wall_samples_per_s=round(float(np.median(walls[mode, name])), 2),
             rounds=[round(x, 1) for x in rs], mb_per_sample=round(nbytes[mode, name] / 2**20, 2), **common)
    for mode in modes:
        prep, orig = results[mode, "256p_gop16_prepared"], results[mode, "shared_clips_original"]
        emit("dataloader", "speedup_prepared_vs_original", prep / orig, "x", frame_mode=mode)
        emit("dataloader", "speedup_gop16_vs_gop250_at_256p", prep / results[mode, "256p_gop250"], "x",
             frame_mode=mode)
    ref = "centre_crop_128x170"
    for mode in modes:
        if mode != ref and ref in modes:
            for name in variants:
                emit("dataloader", "cost_vs_centre_crop_128x170", results[ref, name] / results[mode, name],
                     "x CPU time per sample", data=name, frame_mode=mode)

    try:
        from crisscross_core.data.pipeline import TrainTransform
    except ImportError as e:
        print(f"# TrainTransform not available ({e}); skipping augmentation figures", file=sys.stderr)
        return 0
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    batches = {}
    for mode, fields in modes.items():
        ds = PretrainDataset(variants["256p_gop16_prepared"], replace(base, **fields))
        items = [ds[i] for i in range(min(args.aug_batch, len(ds)))]
        batches[mode] = {k: torch.stack([it[k] for it in items]) for k in ("video", "audio", "share", "frame_hw")}
    for dev in devices:
        tt = TrainTransform().to(dev)
        timing = {}
        for r in range(args.rounds):
            for mode, batch in batches.items():
                v, a, s, hw = (batch[k].to(dev) for k in ("video", "audio", "share", "frame_hw"))
                if r == 0:
                    tt(v, a, s, frame_hw=hw)                             # warm up
                reps = 1 if dev == "cpu" else 20
                if dev == "cuda":
                    torch.cuda.synchronize()
                w0, c0 = time.perf_counter(), time.process_time()
                for _ in range(reps):
                    tt(v, a, s, frame_hw=hw)
                if dev == "cuda":
                    torch.cuda.synchronize()
                n = len(v) * reps
                timing.setdefault(mode, []).append((n / (time.perf_counter() - w0),
                                                    n / (time.process_time() - c0)))
        for mode, ts in timing.items():
            emit("augment", "train_transform_samples_per_s", float(np.median([t[0] for t in ts])), "samples/s",
                 device=dev, frame_mode=mode, batch=len(batches[mode]["video"]), threads=torch.get_num_threads(),
                 samples_per_cpu_s=round(float(np.median([t[1] for t in ts])), 2))
    return 0


# ----------------------------------------------------------------------------- storage tiers

def _counting_opens():
    """Patch the decoder's av.open to count opens of files by path (shard members and frame-store
    clips are not files being opened: shards.OPENS and the store's memory maps count those)."""
    import crisscross_core.data.decode as D
    counts = {"files": 0}
    real = D.av.open

    def av_open(src, *a, **kw):
        if isinstance(src, (str, Path)):
            counts["files"] += 1
        return real(src, *a, **kw)
    D.av.open = av_open
    return counts


def storage_tiers(args) -> int:
    """Two-view samples/s per core and file opens per 1,000 samples for each storage tier, on the
    shared clips replicated to `--tier-samples` samples (data.clips_per_video), plus disk per hour."""
    from crisscross_core.data import frames as FR
    from crisscross_core.data import shards as SH
    from crisscross_core.data.prepare import prepare_frames, prepare_shards
    torch.set_num_threads(1)
    m = read_manifest(args.manifest)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cc_tiers_"))
    if not (tmp / "gop16" / "manifest.csv").exists():
        prepare_dataset(args.manifest, tmp / "gop16", short_side=256, gop=16, workers=1, progress=False)
    prepared = tmp / "gop16" / "manifest.csv"
    if not (tmp / "shards" / "manifest.csv").exists():
        prepare_shards(prepared, tmp / "shards", shard_bytes=4 << 20, workers=1, progress=False,
                       transcode_clips=False)
    if not (tmp / "clips.frames" / "manifest.csv").exists():
        prepare_frames(args.manifest, tmp / "clips", short_side=128, workers=1, progress=False)
    tiers = {"original_files": Path(args.manifest), "prepared_files": prepared,
             "shards": tmp / "shards" / "manifest.csv", "frame_store": tmp / "clips.frames" / "manifest.csv"}
    hours = sum(r.duration for r in m.rows) / 3600
    sizes = {"original_files": sum(r.size_bytes for r in m.rows),
             "prepared_files": sum(p.stat().st_size for p in (tmp / "gop16").rglob("*.mp4")),
             "shards": sum(p.stat().st_size for p in (tmp / "shards").iterdir()),
             "frame_store": sum(p.stat().st_size for p in (tmp / "clips.frames").iterdir())}
    cfg = DataConfig(split="", no_audio_policy="silence", short_clip_policy="pad",
                     clips_per_video=max(1, args.tier_samples // len(m.rows)), frame_mode="centre_crop",
                     decode_short_side=128, decode_size=(128, 170))
    counts = _counting_opens()
    n = min(args.items * 3, args.tier_samples)
    for name, man in tiers.items():
        SH.close_all()
        SH.OPENS.clear()
        FR._STORES.clear()
        ds = PretrainDataset(man, cfg, seed=0)
        order = np.random.default_rng(0).permutation(len(ds))[:n]     # random access, as the sampler
        counts["files"] = 0
        wall, cpu = timed(lambda i: ds[int(order[i])], n)
        opens = counts["files"] + sum(SH.OPENS.values()) + len(FR._STORES)
        emit("storage_tiers", "two_view_samples_per_core_s", n / cpu, "samples/s", data=name,
             wall_samples_per_s=round(n / wall, 2), samples=n, dataset_len=len(ds), frame_mode="centre_crop_128x170")
        emit("storage_tiers", "file_opens_per_1000_samples", 1000 * opens / n, "opens", data=name, samples=n)
        emit("storage_tiers", "disk_gb_per_hour_of_video", sizes[name] / 2**30 / hours, "GB/h", data=name,
             clips=len(m.rows), hours=round(hours, 4), bytes=sizes[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
