"""Feature-extraction throughput (clips/s) of crisscross_core.evaluate, one JSON line per figure.

    python benchmarks/features.py                  # CPU (and CUDA when available)
    python benchmarks/features.py --device cuda --batch 64

Figures: model-only (random inputs, full-size backbones: AudioResNet-18 conv5x SVM features on 2 s
log-mel 1×80×201; R(2+1)D-18 pooled features on 8×112×112), and end to end through `extract_features`
(decode + front end + model) on the shared ESC-10 recordings (10 dense 2 s windows each) and the shared
video clips (2 windows each), and `crisscross embed` of those clips (paper-size random model, both
modalities, h/z/p), when ../shared/data is present.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def emit(**kw):
    print(json.dumps(kw), flush=True)


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def model_only(name, featurizer, shape, device, batch, iters, dtype=None):
    x = torch.randn(batch, *shape, device=device)
    f = featurizer.to(device).eval()
    ctx = lambda: torch.autocast("cuda", dtype=dtype) if dtype is not None else torch.autocast("cpu", enabled=False)
    with ctx():
        f(x)                                                  # warm-up
    _sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        with ctx():
            f(x)
    _sync(device)
    dt = time.perf_counter() - t
    emit(bench="features", metric=f"{name}_model_only", value=round(batch * iters / dt, 2), unit="clips/s",
         device=device, batch=batch, iters=iters, threads=torch.get_num_threads(),
         dtype=str(dtype or torch.float32).replace("torch.", ""))


def end_to_end(device, batch, n_audio, n_video):
    from crisscross_core.evaluate.features import (AudioFeatures, VideoFeatures, VideoSettings,
                                                   extract_features, load_encoder)
    from crisscross_core.evaluate.media import load_items
    esc = SHARED / "esc10" / "esc10.csv"
    if esc.is_file():
        items = load_items(esc)[0][:n_audio]
        enc, _ = load_encoder("random", "audio")
        t = time.perf_counter()
        f = extract_features(AudioFeatures(enc), items, "audio", windows=10, pad_to=5.0, batch_size=batch,
                             device=device, progress=False)
        _sync(device)
        dt = time.perf_counter() - t
        emit(bench="features", metric="esc10_dense_svm_end_to_end", value=round(len(f.x) / dt, 2),
             unit="clips/s", device=device, recordings=len(items), recordings_per_s=round(len(items) / dt, 2),
             windows_per_recording=10, clip_s=2.0, threads=torch.get_num_threads())
    clips = SHARED / "clips" / "manifest.csv"
    if clips.is_file():
        items = load_items(clips)[0][:n_video]
        enc, _ = load_encoder("random", "video")
        t = time.perf_counter()
        f = extract_features(VideoFeatures(enc), items, "video", windows=2,
                             video=VideoSettings(frames=8, crop_size=112), batch_size=batch, device=device,
                             progress=False)
        _sync(device)
        dt = time.perf_counter() - t
        emit(bench="features", metric="clips_video_pool_end_to_end", value=round(len(f.x) / dt, 2),
             unit="clips/s", device=device, videos=len(items), windows_per_video=2, frames=8, crop=112,
             threads=torch.get_num_threads())
        embed_end_to_end(device, batch, [it.path for it in items])


def embed_end_to_end(device, batch, files):
    """`crisscross embed` on the shared clips: paper-size random model (video + audio; h, z, p), 2 windows."""
    import tempfile
    from crisscross_core.evaluate.embed import embed
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        out = embed(files, "random", Path(d) / "e", windows=2, per_window=True, batch_size=batch, device=device,
                    progress=False)
        _sync(device)
        dt = time.perf_counter() - t
        meta = json.loads((out / "embeddings.json").read_text())
    emit(bench="features", metric="embed_clips_end_to_end", value=round(len(files) / dt, 2), unit="items/s",
         device=device, items=len(files), windows_per_item=2, spaces="h,z,p", modalities="video,audio",
         done={m: c["done"] for m, c in meta["counts"].items()}, threads=torch.get_num_threads())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="all", help="cpu | cuda | all (cpu + cuda when available)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--n-audio", type=int, default=20, help="ESC-10 recordings for the end-to-end figure")
    ap.add_argument("--n-video", type=int, default=8, help="shared clips for the end-to-end figure")
    ap.add_argument("--skip-end-to-end", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from crisscross_core.evaluate.features import AudioFeatures, VideoFeatures
    from crisscross_core.models.audio import AudioResNet
    from crisscross_core.models.video import R2Plus1D
    devices = ["cpu", "cuda"] if a.device == "all" else [a.device]
    for dev in devices:
        if dev == "cuda" and not torch.cuda.is_available():
            emit(bench="features", metric="skipped", value=0, unit="", device="cuda", reason="no CUDA device")
            continue
        batch = a.batch if dev == "cpu" else max(a.batch, 64)
        iters = a.iters if dev == "cpu" else max(a.iters, 20)
        dtypes = [None] if dev == "cpu" else [None, torch.bfloat16]
        for dt in dtypes:
            model_only("audio_resnet18_conv5x_2s", AudioFeatures(AudioResNet()), (1, 80, 201), dev, batch, iters, dt)
            model_only("r2plus1d18_pool_8x112", VideoFeatures(R2Plus1D()), (3, 8, 112, 112), dev,
                       batch if dev == "cuda" else max(2, batch // 4), iters, dt)
        if not a.skip_end_to_end:
            end_to_end(dev, batch, a.n_audio, a.n_video)


if __name__ == "__main__":
    main()
