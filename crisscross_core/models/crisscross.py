"""The CrissCross pretraining model: two encoders, two projectors, two predictors (docs/method.md §2.5).

    model = CrissCross.from_config(ModelConfig())            # 49,662,080 parameters
    out = model(v1, v2, a1, a2)     # v [B,3,T,H,W], a [B,1,F,T] -> dict zv1..za2, pv1..pa2, each [B, proj_dim]
    total, terms = crisscross_loss(out, LossConfig())

Unlike the release there is no `video_encoder` alias (Sequential of backbone, flatten, projector),
so every tensor appears once in the state dict; keys are otherwise those of docs/method.md §3.3
(`video_backbone.*`, `video_projector.layer1.0.weight`, `video_predictor.layer2.weight`, ...).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .audio import AudioResNet
from .heads import Predictor, Projector
from .video import R2Plus1D


class CrissCross(nn.Module):
    """Video/audio SimSiam towers. `pre_norm`: z is L2-normalised before the predictor and is then
    also the (stop-gradient) target (docs/method.md §4).

    v1 and v2 (and a1, a2) go through the encoders as separate calls, so BatchNorm statistics
    are per input as in the release (docs/method.md §7.1).
    """

    def __init__(self, video_depth: int = 18, video_width: float = 1.0, audio_depth: int = 18,
                 audio_width: float = 1.0, proj_dim: int = 2048, proj_layers: int = 3,
                 pred_hidden: int = 512, pre_norm: bool = False, proj_out_affine: bool = True):
        super().__init__()
        self.pre_norm = pre_norm
        self.video_backbone = R2Plus1D(video_depth, video_width)
        self.video_projector = Projector(self.video_backbone.output_dim, proj_dim, proj_layers, proj_out_affine)
        self.video_predictor = Predictor(proj_dim, pred_hidden)
        self.audio_backbone = AudioResNet(audio_depth, audio_width)
        self.audio_projector = Projector(self.audio_backbone.output_dim, proj_dim, proj_layers, proj_out_affine)
        self.audio_predictor = Predictor(proj_dim, pred_hidden)

    @classmethod
    def from_config(cls, cfg) -> "CrissCross":
        """Build from a `crisscross_core.config.ModelConfig`."""
        return cls(video_depth=cfg.video_depth, video_width=cfg.video_width,
                   audio_depth=cfg.audio_depth, audio_width=cfg.audio_width,
                   proj_dim=cfg.proj_dim, proj_layers=cfg.proj_layers,
                   pred_hidden=cfg.pred_hidden, pre_norm=cfg.pre_norm,
                   proj_out_affine=cfg.proj_out_affine)

    def embed_video(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features `[B, 3, T, H, W] -> [B, video_backbone.output_dim]`."""
        return self.video_backbone(x)

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features `[B, 1, F, T] -> [B, audio_backbone.output_dim]`."""
        return self.audio_backbone(x)

    def _z(self, feats: torch.Tensor, projector: nn.Module) -> torch.Tensor:
        z = projector(feats)
        return F.normalize(z, dim=1) if self.pre_norm else z

    def forward(self, v1: torch.Tensor, v2: torch.Tensor, a1: torch.Tensor, a2: torch.Tensor) -> dict:
        """Returns dict `zv1, zv2, za1, za2` (projections, the loss targets) and `pv1, pv2, pa1, pa2`
        (predictions), each `[B, proj_dim]`."""
        out = {}
        for name, x in (("v1", v1), ("v2", v2)):
            out["z" + name] = self._z(self.video_backbone(x), self.video_projector)
        for name, x in (("a1", a1), ("a2", a2)):
            out["z" + name] = self._z(self.audio_backbone(x), self.audio_projector)
        for name in ("v1", "v2"):
            out["p" + name] = self.video_predictor(out["z" + name])
        for name in ("a1", "a2"):
            out["p" + name] = self.audio_predictor(out["z" + name])
        return out
