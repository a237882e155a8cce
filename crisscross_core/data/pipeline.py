"""Batch transforms between the DataLoader (uint8 frames, float waveforms) and the model.

    tt = TrainTransform(cfg.aug, cfg.data.audio_rate)
    v, a = tt(batch["video"].to(dev), batch["audio"].to(dev), batch["share"], frame_hw=batch["frame_hw"])
    # v float [B, 2, 3, T, c, c], a float [B, 2, 1, F, Tf]; on the inputs' device

The two views of a sample get independent draws, except where `share[:, 0]` (video) /
`share[:, 1]` (audio) is True: then view 2 is a copy of view 1's augmented tensor, as the
release does for `v_far_a_same` / `v_same_a_far` (docs/deviations.md). `frame_hw` [B, 2] (the size of
the frame each sample's canvas shows, `PretrainDataset` items' "frame_hw") makes the random crop
follow the source frame's geometry (VideoAugment); without it the canvas is the frame.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from crisscross_core.config import AugConfig
from crisscross_core.data.audio import AudioAugment, LogMel
from crisscross_core.data.video_aug import EvalVideoTransform, VideoAugment


class TrainTransform(nn.Module):
    """Pretraining transform of a two-view batch (docs/method.md §6.2, docs/method.md §6.3). See the module docstring."""

    def __init__(self, aug_cfg: AugConfig | None = None, audio_rate: int = 16000):
        super().__init__()
        self.cfg = aug_cfg or AugConfig()
        self.video_aug = VideoAugment(self.cfg.video)
        self.audio_aug = AudioAugment(self.cfg.audio, audio_rate)

    def forward(self, video: torch.Tensor, audio: torch.Tensor, share: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None, frame_hw: Optional[torch.Tensor] = None):
        if video.dim() != 6 or video.shape[1] != 2 or video.shape[-1] != 3:
            raise ValueError(f"TrainTransform: expected video uint8 [B, 2, T, H, W, 3], got {tuple(video.shape)}")
        if audio.dim() != 3 or audio.shape[1] != 2 or audio.shape[0] != video.shape[0]:
            raise ValueError(f"TrainTransform: expected audio [B, 2, N] with B={video.shape[0]}, "
                             f"got {tuple(audio.shape)}")
        B = video.shape[0]
        if frame_hw is not None:                      # one frame size per sample, both views
            frame_hw = torch.as_tensor(frame_hw).reshape(B, 1, 2).expand(B, 2, 2).reshape(2 * B, 2)
        v = self.video_aug(video.flatten(0, 1), generator=generator, frame_hw=frame_hw)
        v = v.view(B, 2, *v.shape[1:])
        a = self.audio_aug(audio.flatten(0, 1), generator=generator)
        a = a.view(B, 2, *a.shape[1:])
        if share is not None:
            share = torch.as_tensor(share, dtype=torch.bool).reshape(B, 2)
            v = _share(v, share[:, 0])
            a = _share(a, share[:, 1])
        return v, a


def _share(x: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """x [B, 2, ...]: where `same[b]`, view 2 := view 1."""
    if not bool(same.any()):
        return x
    m = same.to(x.device).view(-1, *([1] * (x.dim() - 2)))
    return torch.stack([x[:, 0], torch.where(m, x[:, 0], x[:, 1])], 1)


class EvalTransform(nn.Module):
    """No-randomness transform for evaluation and feature extraction.

    `video(x uint8 [..., T, H, W, 3]) -> [..., 3, T, c, c]` (resize short side, centre crop,
    normalise); `audio(w float [..., N]) -> [..., 1, F, 1 + N // hop]` (log-mel only);
    `forward(video=None, audio=None)` returns the pair (None where not given).
    """

    def __init__(self, aug_cfg: AugConfig | None = None, audio_rate: int = 16000):
        super().__init__()
        self.cfg = aug_cfg or AugConfig()
        v, a = self.cfg.video, self.cfg.audio
        self.video_tf = EvalVideoTransform(v.crop_size, v.mean, v.std)
        self.logmel = LogMel(audio_rate, a.n_fft, a.hop, a.n_mels)

    def video(self, x: torch.Tensor) -> torch.Tensor:
        return self.video_tf(x)

    def audio(self, w: torch.Tensor) -> torch.Tensor:
        lead = w.shape[:-1]
        out = self.logmel(w.reshape(-1, w.shape[-1]))
        return out.reshape(*lead, *out.shape[1:])

    def forward(self, video: Optional[torch.Tensor] = None, audio: Optional[torch.Tensor] = None):
        return (None if video is None else self.video(video),
                None if audio is None else self.audio(audio))
