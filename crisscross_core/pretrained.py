"""Encoders that travel: build a video or audio backbone from any weights the kit writes or reads.

    from crisscross_core.models import R2Plus1D, AudioResNet
    video = R2Plus1D.from_pretrained("runs/k400/vid_crisscross_paper_kinetics400.safetensors")
    audio = AudioResNet.from_pretrained("aud_crisscross_kinetics_400.pth.tar.zip")   # the release
    video = from_pretrained("runs/k400", "video")        # a run directory: its export, else checkpoint.pt

Accepted: `.safetensors` exports (architecture from the file's metadata; no pickle involved), the
released `vid_/aud_crisscross_*.pth.tar(.zip)` files and our exports of them, full training
checkpoints, and run directories. The architecture of a state dict without metadata is read off its
shapes (width from conv1's channels, video depth from the blocks per stage). The returned module is
in eval mode on the CPU. `hubconf.py` exposes the same through `torch.hub.load`.
"""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from .checkpoint import CheckpointError, load_backbone, load_released, load_safetensors

RELEASE_URL = "https://github.com/pritamqu/CrissCross/releases/download/model_weights/{prefix}_crisscross_{name}.pth.tar.zip"
RELEASED = ("kinetics_sound", "kinetics_400", "audioset")
PREFIX = {"video": "vid", "audio": "aud"}


def infer_arch(state: dict, modality: str) -> tuple[int, float]:
    """(depth, width) of a backbone state dict: width from conv1's channels, depth from blocks per stage."""
    w = state.get("conv1.0.weight")
    if w is None:
        raise CheckpointError(f"the state dict has no 'conv1.0.weight' (keys start {list(state)[:3]}); "
                              f"not a {modality} backbone in the released layout")
    width = w.shape[0] / 64.0
    first = "block1." if modality == "audio" else "conv2x."      # blocks in the first stage: 1, 2 or 3
    n = len({k.split(".")[1] for k in state if k.startswith(first)})
    return {1: 10, 2: 18, 3: 34}.get(n, 18), width


def build_backbone(modality: str, depth: int = 18, width: float = 1.0) -> nn.Module:
    """A randomly initialised backbone of the given architecture."""
    if modality == "video":
        from .models.video import R2Plus1D
        return R2Plus1D(depth=depth, width=width)
    if modality == "audio":
        from .models.audio import AudioResNet
        return AudioResNet(depth=depth, width=width)
    from .config import ConfigError
    raise ConfigError(f"modality must be 'video' or 'audio', got {modality!r}")


def resolve(path: str | os.PathLike, modality: str) -> Path:
    """A weights file, or a run directory's best file for `modality`: its `.safetensors` export, else its
    `.pth.tar` export, else `checkpoint.pt` (newest first)."""
    p = Path(path).expanduser()
    if p.is_dir():
        prefix = PREFIX[modality]
        for pattern in (f"{prefix}_*.safetensors", f"{prefix}_*.pth.tar*"):
            cands = sorted(p.glob(pattern), key=lambda q: q.stat().st_mtime)
            if cands:
                return cands[-1]
        if (p / "checkpoint.pt").is_file():
            return p / "checkpoint.pt"
        raise CheckpointError(f"{p}: a run directory without {prefix}_* exports or checkpoint.pt")
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file or run directory")
    return p


def released_file(name: str, modality: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The released weights `name` ("kinetics_sound", "kinetics_400", "audioset") for `modality`, downloaded
    once into torch.hub's cache (needs network access; put the file there yourself otherwise)."""
    import torch.hub
    if name not in RELEASED:
        raise CheckpointError(f"unknown released weights {name!r}; one of {RELEASED}, or a path")
    url = RELEASE_URL.format(prefix=PREFIX[modality], name=name)
    dest = Path(cache_dir or Path(torch.hub.get_dir()) / "checkpoints") / Path(url).name
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(dest), progress=True)
        except Exception as e:  # noqa: BLE001 - no network, proxy, 404 ...
            raise CheckpointError(f"could not download {url} ({type(e).__name__}: {e}); download it by hand "
                                  f"and pass its path, or place it at {dest}") from None
    return dest


def from_pretrained(path: str | os.PathLike, modality: str) -> nn.Module:
    """The `modality` backbone ("video" or "audio") stored at `path` (file or run directory), in eval mode."""
    if modality not in PREFIX:
        raise ValueError(f"modality must be 'video' or 'audio', got {modality!r}")
    if str(path) in RELEASED:
        path = released_file(str(path), modality)
    file = resolve(path, modality)
    if file.suffix == ".safetensors":
        state, meta = load_safetensors(file)
        if meta.get("modality") and meta["modality"] != modality:
            raise CheckpointError(f"{file}: holds a {meta['modality']} backbone, not a {modality} one")
        depth, width = (int(meta["depth"]), float(meta["width"])) if "depth" in meta else infer_arch(state, modality)
    else:
        depth, width = infer_arch(load_released(file, modality), modality)
    model = build_backbone(modality, depth, width)
    load_backbone(model, file, modality, strict=True)
    return model.eval()
