"""End-to-end pretraining throughput with the real loader: original vs prepared clips. JSON lines.

Runs `train(cfg)` for a few steps on (a) the shared clips as they are, (b) 256p re-encodes with a
long GOP (250 frames), (c) `crisscross prepare` output (256p, GOP 16), (d) the same packed into tar
shards, (e) the decode-free frame store (tiny preset), and reports the trainer's own samples/s and
data-wait fraction (from metrics.jsonl, first logging window excluded as warm-up).

    python benchmarks/train_e2e.py --preset tiny --workers 2 --steps 12        # CPU here
    python benchmarks/train_e2e.py --preset paper --workers 15 --batch 64      # a GPU node
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import shutil
import tempfile
from pathlib import Path

import torch

from crisscross_core.data.manifest import read_manifest
from crisscross_core.data.prepare import prepare_dataset, prepare_frames, prepare_shards
from crisscross_core.runlog import read_metrics
from crisscross_core.train import train
from dataloader import REPO, make_variant  # benchmarks/dataloader.py


def run(manifest, preset, batch, steps, workers, out) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    log_every = max(1, steps // 4)
    cfg = "paper_kinetics400" if preset == "paper" else "tiny_cpu"
    over = [f"data.manifest={manifest}", f"train.run_dir={out}", "data.split=", "data.clips_per_video=8",
            "data.no_audio_policy=silence", f"optim.batch_size={batch}", f"optim.max_steps={steps}",
            "optim.epochs=1000", f"data.num_workers={workers}", f"train.log_every={log_every}",
            "train.progress=false", "train.tensorboard=false", "train.export_at_end=false",
            "train.checkpoint_every=100000"]
    if preset == "tiny":  # the tiny model on the paper's decode size, so decoding is real work
        over += ["data.decode_short_side=128", "data.decode_size=[128,170]"]
    with contextlib.redirect_stdout(sys.stderr):         # the trainer's log lines; stdout keeps the JSON
        train(cfg, over)
    recs = read_metrics(out)[1:]  # first window: worker start-up and warm-up
    sps = sum(r["samples_per_s"] for r in recs) / len(recs)
    wait = sum(r["data_wait"] for r in recs) / len(recs)
    return {"samples_per_s": sps, "data_wait": wait}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=["tiny", "paper"], default="tiny")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", default=None, help="folder for the re-encoded variants (reused)")
    args = ap.parse_args()
    src = REPO / "data_manifests" / "shared_clips.csv"
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="cc_e2e_"))
    m = read_manifest(src)
    variants = {"original": src,
                "256p_gop250": make_variant(m.rows, m.root, tmp / "gop250", short_side=256, gop=250)}
    if not (tmp / "gop16" / "manifest.csv").exists():
        prepare_dataset(src, tmp / "gop16", short_side=256, gop=16, workers=2, progress=False)
    variants["256p_gop16_prepared"] = tmp / "gop16" / "manifest.csv"
    if not (tmp / "shards" / "manifest.csv").exists():     # the prepared clips packed into tar shards
        prepare_shards(variants["256p_gop16_prepared"], tmp / "shards", shard_bytes=4 << 20, workers=1,
                       progress=False, transcode_clips=False)
    variants["256p_gop16_shards"] = tmp / "shards" / "manifest.csv"
    if args.preset == "tiny":                               # the decode-free tier at the tiny run's 128 px
        if not (tmp / "clips.frames" / "manifest.csv").exists():
            prepare_frames(src, tmp / "clips", short_side=128, workers=1, progress=False)
        variants["frame_store_128"] = tmp / "clips.frames" / "manifest.csv"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for name, man in variants.items():
        r = run(man, args.preset, args.batch, args.steps, args.workers, tmp / f"run_{name}")
        for metric, value in r.items():
            print(json.dumps({"bench": "train_e2e", "data": name, "metric": metric, "value": round(value, 3),
                              "preset": args.preset, "batch": args.batch, "workers": args.workers,
                              "steps": args.steps, "device": device}), flush=True)


if __name__ == "__main__":
    main()
