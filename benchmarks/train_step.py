"""One full pretraining step, ours vs a literal re-enactment of the release's step. JSON lines.

Ours: the kit's `forward_loss` (batched augmentation on the device excluded here: inputs are
already float), bf16 autocast on GPU, channels_last_3d, foreach/fused LARC-Adam, no host sync
inside the step, optional torch.compile.
Release (docs/method.md §7.1): fp16 autocast + GradScaler, contiguous NCDHW, apex-style LARC looping over
parameters in Python, plain (for-loop) Adam, `loss.item()` every step.

    python benchmarks/train_step.py --preset paper --batch 32 --iters 5      # CPU here
    python benchmarks/train_step.py --preset paper --batch 32 --compile      # on a GPU
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from common import matmul_peak, sync  # benchmarks/common.py

from crisscross_core.config import load_config
from crisscross_core.losses import crisscross_loss
from crisscross_core.models.crisscross import CrissCross
from crisscross_core.optim import LRSchedule, build_optimizer, param_groups


def release_larc_adam(model, cfg):
    """The release's optimiser as it ran: Adam (for-loop) + LARC with a Python loop per tensor."""
    inner = torch.optim.Adam(param_groups(model, cfg), betas=cfg.betas, foreach=False)

    def step(scaler):
        for group in inner.param_groups:
            wd = group["weight_decay"]
            group["weight_decay"] = 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                pn, gn = torch.norm(p.data), torch.norm(p.grad.data)
                if pn != 0 and gn != 0:  # host syncs, as in apex's LARC
                    local = cfg.larc_trust * pn / (gn + pn * wd + 1e-8)
                    local = min(local / group["lr"], 1)
                    p.grad.data += wd * p.data
                    p.grad.data *= local
        scaler.step(inner)
        for group in inner.param_groups:
            group["weight_decay"] = cfg.weight_decay
    return inner, step


def inputs(cfg, batch, device):
    c, t = cfg.aug.video.crop_size, int(round(cfg.data.video_duration * cfg.data.video_fps))
    f, n = cfg.aug.audio.n_mels, int(cfg.data.audio_duration * cfg.data.audio_rate) // cfg.aug.audio.hop + 1
    g = torch.Generator().manual_seed(0)
    v = [torch.randn(batch, 3, t, c, c, generator=g).to(device) for _ in range(2)]
    a = [torch.randn(batch, 1, f, n, generator=g).to(device) for _ in range(2)]
    return v, a




def bench_release(cfg, batch, iters, device):
    torch.manual_seed(0)
    model = CrissCross.from_config(cfg.model).to(device).train()
    opt, larc_step = release_larc_adam(model, cfg.optim)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    (v1, v2), (a1, a2) = inputs(cfg, batch, device)
    times = []
    for i in range(iters + 2):
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            out = model(v1, v2, a1, a2)
            loss, _ = crisscross_loss(out, cfg.loss)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        larc_step(scaler)
        scaler.update()
        loss.item()  # the release's meters read the loss every step
        sync(device)
        times.append(time.perf_counter() - t0)
    return batch / (sum(times[2:]) / iters)


def bench_ours(cfg, batch, iters, device, compile_model):
    torch.manual_seed(0)
    model = CrissCross.from_config(cfg.model).to(device).train()
    channels_last = device.type == "cuda"
    if channels_last:
        model.video_backbone.to(memory_format=torch.channels_last_3d)
    opt = build_optimizer(model, cfg.optim, device)
    schedule = LRSchedule(cfg.optim, 100, 1000)
    step_model = torch.compile(model) if compile_model else model
    (v1, v2), (a1, a2) = inputs(cfg, batch, device)
    if channels_last:
        v1, v2 = (v.contiguous(memory_format=torch.channels_last_3d) for v in (v1, v2))
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    times = []
    for i in range(iters + (4 if compile_model else 2)):
        sync(device)
        t0 = time.perf_counter()
        schedule.apply(opt, i)
        with torch.autocast(**amp):
            out = step_model(v1, v2, a1, a2)
        loss, _ = crisscross_loss(out, cfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        times.append(time.perf_counter() - t0)
    warm = len(times) - iters
    return batch / (sum(times[warm:]) / iters), model


def step_flops(cfg, batch, device):
    """FLOPs of forward+backward of one step (FlopCounterMode), for MFU."""
    from torch.utils.flop_counter import FlopCounterMode
    model = CrissCross.from_config(cfg.model).to(device).train()
    (v1, v2), (a1, a2) = inputs(cfg, batch, device)
    with FlopCounterMode(display=False) as fc:
        out = model(v1, v2, a1, a2)
        loss, _ = crisscross_loss(out, cfg.loss)
        loss.backward()
    return fc.get_total_flops()




def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=["paper", "tiny"], default="paper")
    p.add_argument("--batch", type=int, default=32, help="per-device batch")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = load_config("paper_kinetics400" if args.preset == "paper" else "tiny_cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    common = {"bench": "train_step", "preset": args.preset, "batch": args.batch, "device": name,
              "threads": torch.get_num_threads()}
    release = bench_release(cfg, args.batch, args.iters, device)
    print(json.dumps({**common, "variant": "release", "metric": "samples_per_s", "value": round(release, 3)}))
    ours, _ = bench_ours(cfg, args.batch, args.iters, device, args.compile)
    print(json.dumps({**common, "variant": "ours", "compile": args.compile, "metric": "samples_per_s",
                      "value": round(ours, 3)}))
    print(json.dumps({**common, "metric": "speedup_vs_release", "value": round(ours / release, 3)}))
    flops = step_flops(cfg, 2, torch.device("cpu")) / 2  # per sample; shape-only, any device
    peak = matmul_peak(device)
    print(json.dumps({**common, "metric": "flops_per_sample", "value": flops}))
    print(json.dumps({**common, "metric": "matmul_peak_flops", "value": peak,
                      "dtype": "bf16" if device.type == "cuda" else "fp32"}))
    print(json.dumps({**common, "variant": "ours", "metric": "mfu", "value": round(ours * flops / peak, 4)}))


if __name__ == "__main__":
    main()
