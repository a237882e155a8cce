"""R(2+1)D video encoder, the AVID-CMA variant CrissCross used (docs/method.md §2.1).

Not torchvision's r2plus1d_18: the stem is a full 3D convolution and each (2+1)D block keeps the
intermediate width equal to its output width (no parameter-matching M_i). The block's last BN comes
after the residual sum; the projection shortcut `res_conv` has no BN.

    enc = R2Plus1D(depth=18)                  # 15,379,136 parameters, keys == released files
    feats = enc(x)                            # x [B, 3, T, H, W] -> [B, 512]
    maps = enc(x, return_embs=True)           # dict conv1, conv2x, conv3x, conv4x, conv5x, pool
"""
from __future__ import annotations

import torch
from torch import nn

# blocks per stage (conv2x..conv5x) for each depth
VIDEO_LAYOUTS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
STAGES = ("conv2x", "conv3x", "conv4x", "conv5x")


def widths(width: float) -> tuple[int, int, int, int]:
    """Stage widths for a channel multiplier: int(64*w), int(128*w), int(256*w), int(512*w)."""
    out = tuple(int(c * width) for c in (64, 128, 256, 512))
    if min(out) < 1:
        raise ValueError(f"width={width} gives a stage with no channels {out}; use width >= 1/64")
    return out


class BasicR2P1DBlock(nn.Module):
    """(2+1)D residual block: [B, cin, T, H, W] -> [B, cout, T/st, H/s, W/s] for stride (st, s, s).

    spt_conv1-bn-relu, tmp_conv1-bn-relu, spt_conv2-bn-relu, tmp_conv2 (no BN),
    + shortcut (res_conv 1x1x1 without BN when shape changes), then out_bn and ReLU.
    """

    def __init__(self, cin: int, cout: int, stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        st, sh, sw = stride
        self.spt_conv1 = nn.Conv3d(cin, cout, (1, 3, 3), stride=(1, sh, sw), padding=(0, 1, 1), bias=False)
        self.spt_bn1 = nn.BatchNorm3d(cout)
        self.tmp_conv1 = nn.Conv3d(cout, cout, (3, 1, 1), stride=(st, 1, 1), padding=(1, 0, 0), bias=False)
        self.tmp_bn1 = nn.BatchNorm3d(cout)
        self.spt_conv2 = nn.Conv3d(cout, cout, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.spt_bn2 = nn.BatchNorm3d(cout)
        self.tmp_conv2 = nn.Conv3d(cout, cout, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.out_bn = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        if cin != cout or any(s != 1 for s in stride):
            self.res_conv = nn.Conv3d(cin, cout, 1, stride=stride, bias=False)
        else:
            self.res_conv = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.spt_bn1(self.spt_conv1(x)))
        y = self.relu(self.tmp_bn1(self.tmp_conv1(y)))
        y = self.relu(self.spt_bn2(self.spt_conv2(y)))
        y = self.tmp_conv2(y)
        shortcut = x if self.res_conv is None else self.res_conv(x)
        return self.relu(self.out_bn(y + shortcut))


class R2Plus1D(nn.Module):
    """AVID-style R(2+1)D encoder.

    Args:
        depth: 10 (1 block per stage), 18 (2/2/2/2) or 34 (3/4/6/3).
        width: channel multiplier on (64, 128, 256, 512); `output_dim` = int(512*width).
    Input `[B, 3, T, H, W]`, any T >= 1 and H, W >= 1 (stride: t/8, h/32, w/32, rounded up).
    Initialisation: PyTorch defaults, as the original.
    """

    @classmethod
    def from_pretrained(cls, path) -> "R2Plus1D":
        """The video backbone stored at `path`: a `.safetensors` export, a released / exported `.pth.tar`
        (zip too), a full checkpoint or a run directory; architecture from the file. See pretrained.py."""
        from ..pretrained import from_pretrained
        return from_pretrained(path, "video")

    def __init__(self, depth: int = 18, width: float = 1.0):
        super().__init__()
        if depth not in VIDEO_LAYOUTS:
            raise ValueError(f"R2Plus1D depth={depth} is not supported; use one of {sorted(VIDEO_LAYOUTS)}")
        self.depth, self.width = depth, width
        chans = widths(width)
        self.output_dim = chans[-1]
        self.conv1 = nn.Sequential(
            nn.Conv3d(3, chans[0], (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(chans[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        cin = chans[0]
        for i, (name, n_blocks, cout) in enumerate(zip(STAGES, VIDEO_LAYOUTS[depth], chans)):
            stride = (1, 1, 1) if i == 0 else (2, 2, 2)
            blocks = [BasicR2P1DBlock(cin, cout, stride)]
            blocks += [BasicR2P1DBlock(cout, cout) for _ in range(n_blocks - 1)]
            setattr(self, name, nn.Sequential(*blocks))
            cin = cout
        self.pool = nn.AdaptiveAvgPool3d(1)

    def forward(self, x: torch.Tensor, return_embs: bool = False):
        """`[B, 3, T, H, W]` -> `[B, output_dim]`, or with return_embs the dict of stage maps
        (conv1 [B,C0,T,H/4,W/4], conv2x, conv3x, conv4x, conv5x [B,C3,T/8,H/32,W/32], pool [B,C3,1,1,1])."""
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"R2Plus1D expects video [B, 3, T, H, W], got shape {tuple(x.shape)}")
        embs = {"conv1": self.conv1(x)}
        h = embs["conv1"]
        for name in STAGES:
            h = getattr(self, name)(h)
            embs[name] = h
        embs["pool"] = self.pool(h)
        if return_embs:
            return embs
        return embs["pool"].flatten(1)
