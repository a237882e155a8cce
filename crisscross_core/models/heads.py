"""Projector and predictor MLPs (docs/method.md §2.3, docs/method.md §2.4).

    proj = Projector(512, dim=2048, num_layers=3)   # [B, 512] -> [B, 2048]; 9,455,616 params
    pred = Predictor(2048, hidden=512)              # [B, 2048] -> [B, 2048]; 2,100,736 params
"""
from __future__ import annotations

import torch
from torch import nn


class Projector(nn.Module):
    """SimSiam-style projector `[B, in_dim] -> [B, dim]`.

    layer1 = Linear(in_dim, dim) + BN1d + ReLU; layer2 = Linear(dim, dim) + BN1d + ReLU;
    layer3 = Linear(dim, dim) + BN1d (affine, no ReLU; `out_affine=False`: official SimSiam's
    non-affine BN, so no output dimension can be scaled away).

    With num_layers=2 the forward skips layer2, as the original does. Its parameters are still
    created so that state-dict keys and parameter counts stay comparable with the release; they
    are frozen (requires_grad=False) because they never receive a gradient, which keeps DDP free
    of `find_unused_parameters` and changes nothing else (the original's optimiser skips them too).
    """

    def __init__(self, in_dim: int, dim: int = 2048, num_layers: int = 3, out_affine: bool = True):
        super().__init__()
        if num_layers not in (2, 3):
            raise ValueError(f"Projector num_layers={num_layers}; use 2 or 3")
        self.num_layers = num_layers
        self.layer1 = nn.Sequential(nn.Linear(in_dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True))
        self.layer2 = nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True))
        self.layer3 = nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim, affine=out_affine))
        if num_layers == 2:
            self.layer2.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(x)
        if self.num_layers == 3:
            x = self.layer2(x)
        return self.layer3(x)


class Predictor(nn.Module):
    """Bottleneck predictor `[B, dim] -> [B, dim]`: Linear(dim, hidden) + BN1d + ReLU, Linear(hidden, dim)."""

    def __init__(self, dim: int = 2048, hidden: int = 512):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))
        self.layer2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer2(self.layer1(x))
