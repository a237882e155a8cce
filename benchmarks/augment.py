"""Batched augmentation throughput (clips/s): video (B=32, 8 frames) and audio (B=32, 2 s).

    python benchmarks/augment.py [--device cpu|cuda|all] [--iters 5] [--threads 1]

Prints one JSON line per figure. Video cases: 128×170 uint8 -> 112 (`data.frame_mode=centre_crop`),
the whole frame on a 256×456 canvas -> 112 with the crop drawn in each source frame's geometry (the
paper presets' `full` mode; sources alternating 256×341 and 256×455) and 48×48 -> 40 (tiny_cpu); audio: log-mel only (eval) and the pretraining augmentation (volume, masks,
resize-crop), and with time warp (downstream). On CUDA the input is already on the device and
timings are synchronised.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from crisscross_core.config import AudioAugConfig, VideoAugConfig
from crisscross_core.data.audio import AudioAugment, LogMel
from crisscross_core.data.video_aug import EvalVideoTransform, VideoAugment


CPU_MS = {}


def _time(fn, device, iters):
    """Wall seconds per call; the process CPU ms per call goes to CPU_MS["last"] (shared machines:
    wall time includes waiting for a core, CPU time does not)."""
    fn()                                                    # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iters):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    CPU_MS["last"] = round(1e3 * (time.process_time() - c0) / iters, 1)
    return (time.perf_counter() - t0) / iters


def _emit(bench, value, device, **extra):
    print(json.dumps({"bench": bench, "metric": "throughput", "value": round(value, 1),
                      "unit": "clips/s", "device": device, **extra, "cpu_ms_per_batch": CPU_MS["last"],
                      "threads": torch.get_num_threads()}), flush=True)


def run(device: str, iters: int, B: int = 32):
    g = torch.Generator().manual_seed(0)
    cases = [("video_aug_128x170_to_112", (128, 170), VideoAugConfig(crop_size=112), None),
             ("video_aug_full_256x456_to_112", (256, 456), VideoAugConfig(crop_size=112),
              torch.tensor([[256, 341], [256, 455]]).repeat(B // 2, 1)),
             ("video_aug_48_to_40", (48, 48), VideoAugConfig(crop_size=40, blur_p=0.0), None)]
    for name, (H, W), cfg, hw in cases:
        x = torch.randint(0, 256, (B, 8, H, W, 3), dtype=torch.uint8).to(device)
        aug = VideoAugment(cfg)
        s = _time(lambda: aug(x, generator=g, frame_hw=hw), device, iters)
        _emit(name, B / s, device, batch=B, frames=8, ms_per_batch=round(1e3 * s, 1),
              blur_p=cfg.blur_p)
        if name == "video_aug_128x170_to_112":
            blur = VideoAugment(dataclasses.replace(cfg, blur_p=1.0))
            s = _time(lambda: blur(x, generator=g), device, iters)
            _emit(name + "_blur_p1", B / s, device, batch=B, frames=8, ms_per_batch=round(1e3 * s, 1))
            ev = EvalVideoTransform(112)
            s = _time(lambda: ev(x), device, iters)
            _emit("video_eval_128x170_to_112", B / s, device, batch=B, frames=8,
                  ms_per_batch=round(1e3 * s, 1))
    wave = (torch.randn(B, 32000) * 0.1).to(device)
    mel = LogMel().to(device)
    s = _time(lambda: mel(wave), device, iters)
    _emit("audio_logmel_2s", B / s, device, batch=B, ms_per_batch=round(1e3 * s, 1))
    for name, cfg in [("audio_aug_2s_pretrain", AudioAugConfig()),
                      ("audio_aug_2s_timewarp", AudioAugConfig(time_warp=True))]:
        aug = AudioAugment(cfg).to(device)
        s = _time(lambda: aug(wave, generator=g), device, iters)
        _emit(name, B / s, device, batch=B, ms_per_batch=round(1e3 * s, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for d in devices:
        if d == "cuda" and not torch.cuda.is_available():
            print(json.dumps({"bench": "augment", "skipped": "cuda", "reason": "no CUDA device"}))
            continue
        run(d, args.iters)


if __name__ == "__main__":
    main()
