"""torch.hub entry points for the CrissCross encoders of crisscross-kit.

    import torch
    video = torch.hub.load("path/to/crisscross-kit", "crisscross_video", source="local",
                           weights="runs/k400/vid_crisscross_paper_kinetics400.safetensors")
    audio = torch.hub.load("path/to/crisscross-kit", "crisscross_audio", source="local",
                           weights="aud_crisscross_kinetics_400.pth.tar.zip")

`weights`: a `.safetensors` export, a released or exported `.pth.tar` (zip too), a full checkpoint,
a run directory, one of the released names "kinetics_sound" / "kinetics_400" / "audioset" (downloaded
once from the original release into torch.hub's cache; needs network access), or None for a random
initialisation of the given depth and width. The model is returned in eval mode.
"""
dependencies = ["torch", "numpy", "yaml"]


def _encoder(modality: str, weights=None, depth: int = 18, width: float = 1.0):
    from crisscross_core.pretrained import build_backbone, from_pretrained
    if weights is None:
        return build_backbone(modality, depth, width).eval()
    return from_pretrained(weights, modality)


def crisscross_video(weights=None, depth: int = 18, width: float = 1.0):
    """R(2+1)D video encoder (AVID variant): `[B, 3, T, H, W]` -> `[B, 512·width]`."""
    return _encoder("video", weights, depth, width)


def crisscross_audio(weights=None, depth: int = 18, width: float = 1.0):
    """2D ResNet audio encoder on log-mel: `[B, 1, 80, T]` -> `[B, 512·width]`."""
    return _encoder("audio", weights, depth, width)
