"""2D ResNet audio encoder on log-mel spectrograms (docs/method.md §2.2).

torchvision-style BasicBlocks written by hand, so the state-dict keys equal the released
`aud_crisscross_*.pth.tar` files (`conv1.0`, `conv1.1`, `block1`..`block4`, `downsample.0/1`).

    enc = AudioResNet(depth=18)               # 11,170,240 parameters
    feats = enc(x)                            # x [B, 1, F, T] -> [B, 512]
    maps = enc(x, return_embs=True)           # dict conv2x, conv3x, conv4x, conv5x, pool
"""
from __future__ import annotations

import torch
from torch import nn

from .video import widths

# blocks per stage; the original only allows 18 (10 and 34 use the same BasicBlock, for small tests)
AUDIO_LAYOUTS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
EMB_NAMES = ("conv2x", "conv3x", "conv4x", "conv5x")


class BasicBlock(nn.Module):
    """conv3x3-bn-relu-conv3x3-bn, + shortcut (downsample = conv1x1 + BN when shape changes), relu.
    `[B, cin, F, T]` -> `[B, cout, F/s, T/s]`."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout))
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(y + shortcut)


class AudioResNet(nn.Module):
    """ResNet on `[B, 1, F, T]` log-mel (F mel bins as height, T frames as width).

    Args:
        depth: 18 as the paper (10 and 34 allowed for experiments).
        width: channel multiplier on (64, 128, 256, 512); `output_dim` = int(512*width).
    Init: Conv2d kaiming-normal (fan_out, relu), BN weight 1 / bias 0 (no zero-init of the last BN).
    """

    @classmethod
    def from_pretrained(cls, path) -> "AudioResNet":
        """The audio backbone stored at `path`: a `.safetensors` export, a released / exported `.pth.tar`
        (zip too), a full checkpoint or a run directory; architecture from the file. See pretrained.py."""
        from ..pretrained import from_pretrained
        return from_pretrained(path, "audio")

    def __init__(self, depth: int = 18, width: float = 1.0):
        super().__init__()
        if depth not in AUDIO_LAYOUTS:
            raise ValueError(f"AudioResNet depth={depth} is not supported; use one of {sorted(AUDIO_LAYOUTS)}")
        self.depth, self.width = depth, width
        chans = widths(width)
        self.output_dim = chans[-1]
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, chans[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(chans[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        cin = chans[0]
        for k, (n_blocks, cout) in enumerate(zip(AUDIO_LAYOUTS[depth], chans), start=1):
            stride = 1 if k == 1 else 2
            blocks = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout) for _ in range(n_blocks - 1)]
            setattr(self, f"block{k}", nn.Sequential(*blocks))
            cin = cout
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, return_embs: bool = False):
        """`[B, 1, F, T]` -> `[B, output_dim]`, or with return_embs the dict conv2x [B,C0,F/4,T/4] ..
        conv5x [B,C3,F/32,T/32], pool [B,C3,1,1] (block1..block4 map to conv2x..conv5x; no conv1 key)."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"AudioResNet expects log-mel [B, 1, F, T], got shape {tuple(x.shape)}")
        h = self.conv1(x)
        embs = {}
        for k, name in enumerate(EMB_NAMES, start=1):
            h = getattr(self, f"block{k}")(h)
            embs[name] = h
        embs["pool"] = self.pool(h)
        if return_embs:
            return embs
        return embs["pool"].flatten(1)
