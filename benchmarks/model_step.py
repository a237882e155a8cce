"""Forward+backward throughput and FLOPs of the CrissCross pretraining model.

One "sample" is one training item: the four inputs v1, v2 [3,T,H,W] and a1, a2 [1,F,Tf], through
both encoders, projectors, predictors and the six-term loss, then backward (no optimiser step).
FLOPs are counted with torch.utils.flop_counter.FlopCounterMode (matmul/conv; 2 per MAC).

    python benchmarks/model_step.py                       # CPU: tiny_cpu (batch 16) + paper (batch 2)
    python benchmarks/model_step.py --device cuda         # GPU: bf16 autocast, channels_last_3d,
                                                          # torch.compile off and on, MFU vs measured peak
Prints one JSON line per figure.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from common import matmul_peak, sync  # benchmarks/common.py
from torch.utils.flop_counter import FlopCounterMode

from crisscross_core.config import LossConfig, load_config
from crisscross_core.losses import crisscross_loss
from crisscross_core.models import CrissCross


def preset_shapes(name: str):
    """(ModelConfig, video [3,T,H,W], audio [1,F,Tf]) for a preset: 8 frames (0.5 s at 16 fps),
    2 s of audio at hop 160 (201 frames); crop size and mel bins from the preset."""
    cfg = load_config("tiny_cpu" if name == "tiny_cpu" else "paper_kinetics400")
    frames = round(cfg.data.video_duration * cfg.data.video_fps)
    tf = int(cfg.data.audio_duration * cfg.data.audio_rate) // cfg.aug.audio.hop + 1
    c = cfg.aug.video.crop_size
    return cfg.model, (3, frames, c, c), (1, cfg.aug.audio.n_mels, tf)


def make_inputs(batch, vshape, ashape, device, channels_last):
    g = torch.Generator().manual_seed(0)
    vs = [torch.randn(batch, *vshape, generator=g).to(device) for _ in range(2)]
    as_ = [torch.randn(batch, *ashape, generator=g).to(device) for _ in range(2)]
    if channels_last:
        vs = [v.contiguous(memory_format=torch.channels_last_3d) for v in vs]
        as_ = [a.contiguous(memory_format=torch.channels_last) for a in as_]
    return vs[0], vs[1], as_[0], as_[1]


def step(model, inputs, loss_cfg, amp_dtype, device):
    with torch.autocast(device_type=device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        out = model(*inputs)
        loss, _ = crisscross_loss(out, loss_cfg)
    loss.backward()
    for p in model.parameters():
        p.grad = None
    return loss




def count_flops(model, inputs, loss_cfg, amp_dtype, device) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        step(model, inputs, loss_cfg, amp_dtype, device)
    return counter.get_total_flops()




def bench(preset, batch, iters, warmup, device, amp_dtype, channels_last, compile_model, peak):
    mcfg, vshape, ashape = preset_shapes(preset)
    torch.manual_seed(0)
    model = CrissCross.from_config(mcfg).to(device).train()
    if channels_last:  # 5D weights of the video encoder, 4D of the audio encoder
        model.video_backbone.to(memory_format=torch.channels_last_3d)
        model.audio_backbone.to(memory_format=torch.channels_last)
    inputs = make_inputs(batch, vshape, ashape, device, channels_last)
    loss_cfg = LossConfig()
    flops = count_flops(model, inputs, loss_cfg, amp_dtype, device) / batch
    run = torch.compile(model) if compile_model else model
    t0 = time.perf_counter()
    for _ in range(warmup):
        step(run, inputs, loss_cfg, amp_dtype, device)
    sync(device)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(iters):
        step(run, inputs, loss_cfg, amp_dtype, device)
    sync(device)
    dt = time.perf_counter() - t0
    sps = batch * iters / dt
    common = {"bench": "model_step", "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
              "preset": preset, "batch": batch, "iters": iters, "video": list(vshape), "audio": list(ashape),
              "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
              "channels_last": channels_last, "compile": compile_model,
              "threads": torch.get_num_threads() if device.type == "cpu" else None}
    rows = [{"metric": "fwd_bwd_samples_per_s", "value": round(sps, 3), "unit": "samples/s"},
            {"metric": "fwd_bwd_flops_per_sample", "value": int(flops), "unit": "FLOP"},
            {"metric": "achieved_flops", "value": round(flops * sps / 1e9, 2), "unit": "GFLOP/s"},
            {"metric": "warmup_time", "value": round(warm_s, 2), "unit": "s"}]
    if peak:
        rows.append({"metric": "mfu", "value": round(flops * sps / peak, 4), "unit": "fraction",
                     "peak_bf16_tflops": round(peak / 1e12, 1)})
    for r in rows:
        print(json.dumps({"bench": common["bench"], **r, **{k: v for k, v in common.items() if k != "bench"}}),
              flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--presets", default="tiny_cpu,paper")
    ap.add_argument("--batch-tiny", type=int, default=None, help="default 16 on CPU, 256 on GPU")
    ap.add_argument("--batch-paper", type=int, default=None, help="default 2 on CPU, 128 on GPU")
    ap.add_argument("--iters", type=int, default=None, help="default 3 on CPU, 20 on GPU")
    ap.add_argument("--warmup", type=int, default=None, help="default 1 on CPU, 5 on GPU")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (the dev box is shared)")
    ap.add_argument("--compile", default="auto", choices=["auto", "off", "on", "both"],
                    help="torch.compile; auto = both on GPU, off on CPU")
    ap.add_argument("--amp", default="auto", choices=["auto", "bf16", "none"], help="auto = bf16 on GPU")
    ap.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"], help="auto = on on GPU")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    gpu = device.type == "cuda"
    if not gpu:
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    batches = {"tiny_cpu": args.batch_tiny or (256 if gpu else 16),
               "paper": args.batch_paper or (128 if gpu else 2)}
    iters = args.iters or (20 if gpu else 3)
    warmup = args.warmup or (5 if gpu else 1)
    peak = matmul_peak(device) if gpu else None
    if peak:
        print(json.dumps({"bench": "model_step", "metric": "peak_bf16_matmul", "value": round(peak / 1e12, 1),
                          "unit": "TFLOP/s", "device": torch.cuda.get_device_name()}), flush=True)
    compile_mode = args.compile if args.compile != "auto" else ("both" if gpu else "off")
    compiles = {"off": [False], "on": [True], "both": [False, True]}[compile_mode]
    amp = torch.bfloat16 if args.amp == "bf16" or (args.amp == "auto" and gpu) else None
    channels_last = args.channels_last == "on" or (args.channels_last == "auto" and gpu)
    for preset in args.presets.split(","):
        for comp in compiles:
            bench(preset, batches[preset], iters, warmup, device, amp_dtype=amp,
                  channels_last=channels_last, compile_model=comp, peak=peak)


if __name__ == "__main__":
    main()
