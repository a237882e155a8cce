"""Batched video augmentation on torch (docs/method.md §6.2), per-sample parameters, any device.

    aug = VideoAugment(VideoAugConfig())
    y = aug(x)            # x uint8 [B, T, H, W, 3] -> y float [B, 3, T, c, c], normalised
    y = aug(x, frame_hw=hw)   # x shows whole frames of size hw [B, 2] squeezed onto H×W

Each clip draws its own crop, flip, jitter factors and order, grayscale, blur sigma and cutout;
all frames of one clip share them. Parameters are drawn on the CPU (from `generator` if given,
so results are reproducible) and moved to the input's device; the pixel work runs there.

The crop box is drawn in the geometry of the frame the canvas shows (`frame_hw`; the canvas itself
by default) and mapped onto the canvas by the sampling grid, so a whole frame resized onto a fixed
canvas (`data.frame_mode: full`) is cropped with the release's statistics (area and aspect ratio
relative to the native frame) while batches keep one shape.

Order (docs/method.md §6.2): random resized crop (+ flip, folded into the sampling grid) -> colour jitter
(4 ops in a per-clip random order) -> grayscale -> Gaussian blur -> normalise -> cutout.
Differences from the PIL original: pixels stay float between ops (no uint8 rounding); the crop
is resampled bilinearly without antialiasing (torchvision's tensor path with antialias=False),
and, when a small box is enlarged, its outermost output pixels interpolate with the pixel just
outside the box instead of repeating the box edge; fixes of docs/deviations.md are on unless
`legacy_blur` / `legacy_cutout`.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from crisscross_core.config import VideoAugConfig

GRAY_WEIGHTS = (0.299, 0.587, 0.114)   # ITU-R 601-2 luma, as PIL "L" and torchvision
LEGACY_SIGMA = (0.1, 2.0)              # the release's fixed (sigma_x, sigma_y) (docs/deviations.md)
CPU_CHUNK = 4                          # clips per group on the CPU (cache-sized working set)
ACCEL_CHUNK_ELEMENTS = 2 ** 28         # accelerator: float elements of decoded canvas per group (1 GiB)


# ----------------------------------------------------------------------------- random numbers

def _rand(n: int, lo: float, hi: float, g: Optional[torch.Generator], *shape: int) -> torch.Tensor:
    """Uniform [lo, hi) float64 CPU tensor of shape [n, *shape]."""
    return lo + (hi - lo) * torch.rand((n, *shape), generator=g, dtype=torch.float64)


def _randint(lo: torch.Tensor | int, hi: torch.Tensor | int, n: int,
             g: Optional[torch.Generator]) -> torch.Tensor:
    """Per-sample integers in [lo, hi) (hi > lo), int64 CPU tensor [n]; lo/hi scalars or [n]."""
    lo = torch.as_tensor(lo, dtype=torch.float64)
    hi = torch.as_tensor(hi, dtype=torch.float64)
    u = torch.rand(n, generator=g, dtype=torch.float64)
    return torch.minimum(lo + torch.floor(u * (hi - lo)), hi - 1).long()


def _cpu_generator(g: Optional[torch.Generator]) -> Optional[torch.Generator]:
    if g is not None and g.device.type != "cpu":
        raise ValueError(f"video_aug: generator must be a CPU torch.Generator (parameters are drawn "
                         f"on the CPU), got one on {g.device}")
    return g


# ----------------------------------------------------------------------------- crop parameters

def rrc_params(n: int, height, width, scale=(0.08, 1.0), ratio=(0.75, 4 / 3),
               generator: Optional[torch.Generator] = None, attempts: int = 10) -> torch.Tensor:
    """RandomResizedCrop boxes with torchvision semantics, per sample.

    `height`, `width`: the frame the box is drawn in, ints or per-sample tensors [n] (on any device;
    the boxes come back there). Returns int64 [n, 4] = (top, left, h, w) in that frame's pixels: up
    to `attempts` tries of area ~ U(scale)·H·W and log-uniform aspect in `ratio`; the first box that
    fits wins, else a central crop clipped to the ratio range. Random numbers are drawn on the CPU.
    """
    H = torch.as_tensor(height, dtype=torch.float64)
    W = torch.as_tensor(width, dtype=torch.float64, device=H.device)
    H, W = H.expand(n)[:, None], W.expand(n)[:, None]                  # [n, 1]
    dev = H.device
    area_u = _rand(n, scale[0], scale[1], generator, attempts).to(dev)
    aspect = torch.exp(_rand(n, math.log(ratio[0]), math.log(ratio[1]), generator, attempts)).to(dev)
    uy = torch.rand(n, attempts, generator=generator, dtype=torch.float64).to(dev)
    ux = torch.rand(n, attempts, generator=generator, dtype=torch.float64).to(dev)
    target = (H * W) * area_u
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= W) & (h > 0) & (h <= H)
    first = ok.to(torch.uint8).argmax(1, keepdim=True)                # first attempt that fits
    hb, wb = h.gather(1, first), w.gather(1, first)
    top = torch.minimum(torch.floor(uy.gather(1, first) * (H - hb + 1)), H - hb)
    left = torch.minimum(torch.floor(ux.gather(1, first) * (W - wb + 1)), W - wb)
    # central fallback (torchvision): clip the aspect ratio of the full frame to `ratio`
    in_ratio = W / H
    lo, hi = min(ratio), max(ratio)
    fw = torch.where(in_ratio > hi, torch.round(H * hi), W)
    fh = torch.where(in_ratio < lo, torch.round(W / lo), H)
    fallback = torch.cat([torch.div(H - fh, 2, rounding_mode="floor"),
                          torch.div(W - fw, 2, rounding_mode="floor"), fh, fw], 1)
    boxes = torch.where(ok.any(1, keepdim=True), torch.cat([top, left, hb, wb], 1), fallback)
    return boxes.long()


def crop_grid(boxes: torch.Tensor, flip: torch.Tensor, height, width, size: int,
              device=None) -> torch.Tensor:
    """Sampling grid [n, size, size, 2] that resizes box (top, left, h, w) to size×size.

    `height`, `width` (ints or per-sample tensors [n]) are the frame the box is given in. Grid
    coordinates are normalised to that frame, so the grid samples the same region of any resized
    copy of it (the decoded canvas): bilinear `grid_sample(..., align_corners=False)` on it equals
    cropping the box from the frame and resizing it with `F.interpolate(bilinear,
    align_corners=False)` when the canvas is the frame itself; `flip` [n] bool mirrors x.
    """
    b = boxes.to(torch.float64)
    top, left, h, w = b.unbind(1)
    height = torch.as_tensor(height, dtype=torch.float64).to(b.device)
    width = torch.as_tensor(width, dtype=torch.float64).to(b.device)
    sx = w / width
    sy = h / height
    cx = (2 * left + w) / width - 1
    cy = (2 * top + h) / height - 1
    sx = torch.where(flip.to(b.device).bool(), -sx, sx)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, sy, cy], 1)], 1)
    return F.affine_grid(theta.float().to(device), [len(boxes), 1, size, size], align_corners=False)


# ----------------------------------------------------------------------------- colour ops
# x: float [n, T, 3, H, W] in [0, 1]; factors: float [n] (broadcast over frames and pixels).

def _bc(f: torch.Tensor) -> torch.Tensor:
    return f.view(-1, 1, 1, 1, 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma [..., 1, H, W] of RGB [..., 3, H, W]."""
    r, g, b = x.unbind(-3)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(-3)


def adjust_brightness(x, f):
    """torchvision semantics: x·f, clamped to [0, 1]."""
    return (x * _bc(f)).clamp_(0, 1)


def adjust_contrast(x, f):
    """Blend with the per-frame mean of the grayscale image, clamped."""
    mean = grayscale(x).mean(dim=(-3, -2, -1), keepdim=True)
    return (_bc(f) * x + (1 - _bc(f)) * mean).clamp_(0, 1)


def adjust_saturation(x, f):
    """Blend with the per-pixel grayscale image, clamped."""
    return (_bc(f) * x + (1 - _bc(f)) * grayscale(x)).clamp_(0, 1)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] RGB in [0,1] -> HSV with h in [0, 1)."""
    r, g, b = x.unbind(-3)
    maxc, _ = x.max(-3)
    minc, _ = x.min(-3)
    delta = maxc - minc
    flat = delta == 0
    safe = torch.where(flat, torch.ones_like(delta), delta)
    s = delta / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(flat, torch.zeros_like(h), h)
    h = torch.remainder(h / 6.0, 1.0)
    return torch.stack([h, s, maxc], -3)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_hsv`."""
    h, s, v = x.unbind(-3)
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = torch.remainder(i, 6)
    p = (v * (1 - s)).clamp(0, 1)
    q = (v * (1 - s * f)).clamp(0, 1)
    t = (v * (1 - s * (1 - f))).clamp(0, 1)
    sector = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    r, g, b = v.clone(), t.clone(), p.clone()
    for k in range(1, 6):
        m = i == k
        r = torch.where(m, sector[k][0], r)
        g = torch.where(m, sector[k][1], g)
        b = torch.where(m, sector[k][2], b)
    return torch.stack([r, g, b], -3)


def adjust_hue(x, f):
    """Rotate hue by f (fraction of a turn, in [-0.5, 0.5]): torchvision's RGB -> HSV -> shift ->
    RGB, fused: channel n in (R, G, B) = v - (v - min) * clamp(min(k, 4 - k), 0, 1) with
    k = (n' + 6h) mod 6, n' = (5, 3, 1) (the closed form of the HSV sector table)."""
    r, g, b = x.unbind(-3)
    maxc, _ = x.max(-3)
    minc, _ = x.min(-3)
    d = maxc - minc
    safe = torch.where(d == 0, torch.ones_like(d), d)
    h6 = torch.where(maxc == r, (g - b) / safe,
                     torch.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h6 = h6 + 6.0 * f.to(x.dtype).view(-1, 1, 1, 1)
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(3, 1, 1)
    k = torch.remainder(h6.unsqueeze(-3) + n, 6.0)
    t = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return maxc.unsqueeze(-3) - d.unsqueeze(-3) * t


JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Per-sample colour jitter. x [n,T,3,H,W]; factors [n,4] (b, c, s, hue); order [n,4] (CPU).

    Position by position, each sample applies the op `order[:, pos]`; only the samples that
    picked an op are computed for it (indices are CPU tensors, so no device sync).
    """
    factors = factors.to(x.device, x.dtype)
    for pos in range(4):
        for k, op in enumerate(JITTER_OPS):
            idx = (order[:, pos] == k).nonzero().flatten()
            if len(idx) == 0:
                continue
            if len(idx) == len(x):
                x = op(x, factors[:, k])
            else:
                idx = idx.to(x.device)
                x = x.index_copy(0, idx, op(x.index_select(0, idx), factors.index_select(0, idx)[:, k]))
    return x


# ----------------------------------------------------------------------------- blur

def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels [n, size] for sigmas [n]."""
    half = (size - 1) / 2
    t = torch.linspace(-half, half, size, dtype=torch.float64)
    k = torch.exp(-0.5 * (t[None] / sigma.to(torch.float64)[:, None]) ** 2)
    return k / k.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma_x: torch.Tensor, sigma_y: torch.Tensor, size: int) -> torch.Tensor:
    """Separable Gaussian blur, reflect padding; x [n, T, 3, H, W], sigma_x/sigma_y [n] (x = width)."""
    n, T, C, H, W = x.shape
    reps = T * C
    kx = gaussian_kernels(sigma_x, size).to(x.device, x.dtype).repeat_interleave(reps, 0)
    ky = gaussian_kernels(sigma_y, size).to(x.device, x.dtype).repeat_interleave(reps, 0)
    y = x.reshape(1, n * reps, H, W)
    p = size // 2
    y = F.conv2d(F.pad(y, (p, p, 0, 0), mode="reflect"), kx.view(-1, 1, 1, size), groups=n * reps)
    y = F.conv2d(F.pad(y, (0, 0, p, p), mode="reflect"), ky.view(-1, 1, size, 1), groups=n * reps)
    return y.view(n, T, C, H, W)


def blur_kernel_size(crop: int) -> int:
    """⌊crop/20⌋·2 + 1 (11 for 112, 23 for 224), docs/method.md §6.2."""
    return (crop // 20) * 2 + 1


# ----------------------------------------------------------------------------- transforms

def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    """x [n, T, 3, H, W] -> (x - mean) / std per channel."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 1, 3, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 1, 3, 1, 1)
    return (x - m) / s


def _to_float_frames(x: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> float [B, T, 3, H, W] in [0, 1]."""
    if x.dim() != 5 or x.shape[-1] != 3:
        raise ValueError(f"video_aug: expected uint8 video [B, T, H, W, 3], got shape {tuple(x.shape)}")
    x = x.permute(0, 1, 4, 2, 3)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


class VideoAugment:
    """Pretraining video augmentation (docs/method.md §6.2) for a batch of clips.

    `__call__(x uint8 [B, T, H, W, 3], generator=None) -> float [B, 3, T, c, c]`, c = crop_size.
    `sample_params(B, H, W, generator)` returns the per-clip parameters (dict of CPU tensors);
    `apply(x, params)` applies them, so a caller can inspect or reuse the draws.
    """

    def __init__(self, cfg: VideoAugConfig | None = None):
        self.cfg = cfg or VideoAugConfig()
        c = self.cfg
        if c.crop_size < 1:
            raise ValueError(f"video_aug: crop_size must be positive, got {c.crop_size}")
        self.blur_size = blur_kernel_size(c.crop_size)

    def sample_params(self, n: int, height: int, width: int,
                      generator: Optional[torch.Generator] = None,
                      frame_hw: Optional[torch.Tensor] = None) -> dict:
        """Per-clip parameters: boxes [n,4] in the source frame's pixels, frame_hw [n,2] (that
        frame's height, width), flip/jit/gray/blur/cut masks [n], factors [n,4], order [n,4],
        sigma [n,2] (x, y), cutout (y1, y2, x1, x2) [n,4].

        `frame_hw` (int [n, 2], any device): the size of the frame each decoded canvas shows in
        full (`data.frame_mode: full`); the crop's area and aspect ratio are drawn relative to it,
        as the release draws them on the native frame. None: the canvas itself (height, width).
        """
        c, g = self.cfg, _cpu_generator(generator)
        if frame_hw is None:
            frame_hw = torch.tensor([[height, width]], dtype=torch.long).expand(n, 2)
        frame_hw = torch.as_tensor(frame_hw).reshape(n, 2)
        boxes = rrc_params(n, frame_hw[:, 0], frame_hw[:, 1], c.crop_scale, c.crop_ratio, g)
        flip = torch.rand(n, generator=g) < c.flip_p
        # colour jitter: factors U[max(0,1-v), 1+v] for b, c, s; hue U[-v, v]; order per clip
        jit = torch.rand(n, generator=g) < c.jitter_p
        bcs = [_rand(n, max(0.0, 1 - v), 1 + v, g) for v in c.jitter[:3]]
        hue = _rand(n, -c.jitter[3], c.jitter[3], g)
        factors = torch.stack(bcs + [hue], 1).float()
        factors = torch.where(jit[:, None], factors, torch.tensor([1.0, 1.0, 1.0, 0.0]))
        order = torch.argsort(torch.rand(n, 4, generator=g), dim=1)
        gray = torch.rand(n, generator=g) < c.gray_p
        blur = torch.rand(n, generator=g) < c.blur_p
        s = _rand(n, c.blur_sigma[0], c.blur_sigma[1], g)
        sigma = torch.stack([s, s], 1)
        if c.legacy_blur:
            sigma = torch.tensor(LEGACY_SIGMA, dtype=torch.float64).expand(n, 2).clone()
        cut = torch.rand(n, generator=g) < c.cutout_p
        size = c.crop_size
        length = _randint(1, max(1, c.cutout_max) + 1, n, g)      # the release: 1..max inclusive
        cy, cx = _randint(0, size, n, g), _randint(0, size, n, g)
        half = length // 2
        cutbox = torch.stack([(cy - half).clamp(0, size), (cy + half).clamp(0, size),
                              (cx - half).clamp(0, size), (cx + half).clamp(0, size)], 1)
        return dict(boxes=boxes, frame_hw=frame_hw, flip=flip, jitter=jit, factors=factors, order=order,
                    gray=gray, blur=blur, sigma=sigma, cutout=cut, cutbox=cutbox)

    def apply(self, x: torch.Tensor, p: dict, chunk: Optional[int] = None) -> torch.Tensor:
        """Apply parameters from `sample_params` to uint8 [B, T, H, W, 3] -> float [B, 3, T, c, c].

        Work runs in groups of `chunk` clips (default: 4 on the CPU, where the chains of
        element-wise ops are memory-bound and small groups stay in cache; on an accelerator as many
        as keep the float copy of the decoded canvases under ACCEL_CHUNK_ELEMENTS).
        """
        B, T, H, W, _ = x.shape
        if chunk is None:
            chunk = CPU_CHUNK if x.device.type == "cpu" else max(1, ACCEL_CHUNK_ELEMENTS // (T * 3 * H * W))
        if chunk >= B:
            return self._apply(x, p).contiguous()
        size = self.cfg.crop_size
        out = torch.empty(B, 3, T, size, size, device=x.device)
        for i in range(0, B, chunk):
            out[i:i + chunk] = self._apply(x[i:i + chunk], {k: v[i:i + chunk] for k, v in p.items()})
        return out

    def _apply(self, x: torch.Tensor, p: dict) -> torch.Tensor:
        c = self.cfg
        B, T, H, W, _ = x.shape
        size, dev = c.crop_size, x.device
        frames = _to_float_frames(x).reshape(B, T * 3, H, W)
        fhw = p.get("frame_hw")
        fh, fw = (H, W) if fhw is None else (fhw[:, 0], fhw[:, 1])
        grid = crop_grid(p["boxes"], p["flip"], fh, fw, size, device=dev)
        y = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
        y = y.view(B, T, 3, size, size)
        if bool(p["jitter"].any()):
            y = color_jitter(y, p["factors"], p["order"])
        if bool(p["gray"].any()):
            y = torch.where(p["gray"].to(dev).view(-1, 1, 1, 1, 1), grayscale(y).expand_as(y), y)
        idx = p["blur"].nonzero().flatten()
        if len(idx):
            sig = p["sigma"][idx]
            idx = idx.to(dev)
            y = y.index_copy(0, idx, gaussian_blur(y.index_select(0, idx), sig[:, 0], sig[:, 1],
                                                   self.blur_size))
        y = _normalise(y, c.mean, c.std)
        if bool(p["cutout"].any()):
            y = self._cutout(y, p["cutout"].to(dev), p["cutbox"].to(dev))
        return y.permute(0, 2, 1, 3, 4)

    def _cutout(self, y, on, box):
        """Zero (= the mean after normalisation) one square per clip on all frames; legacy:
        multiply the square by the mean of the first normalised frame (docs/deviations.md)."""
        size = y.shape[-1]
        r = torch.arange(size, device=y.device)
        rows = (r[None] >= box[:, :1]) & (r[None] < box[:, 1:2])
        cols = (r[None] >= box[:, 2:3]) & (r[None] < box[:, 3:4])
        m = (rows[:, :, None] & cols[:, None, :] & on[:, None, None]).view(-1, 1, 1, size, size)
        if self.cfg.legacy_cutout:
            first = y[:, 0].mean(dim=(1, 2, 3)).view(-1, 1, 1, 1, 1)
            return torch.where(m, y * first, y)
        return y.masked_fill(m, 0.0)

    def __call__(self, x: torch.Tensor, generator: Optional[torch.Generator] = None,
                 frame_hw: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, T, H, W, _ = x.shape
        return self.apply(x, self.sample_params(B, H, W, generator, frame_hw))


class EvalVideoTransform:
    """Eval/validation: resize short side to int(crop/0.875) (bilinear, antialiased like PIL),
    centre crop crop×crop, normalise. uint8 [..., T, H, W, 3] -> float [..., 3, T, c, c]."""

    def __init__(self, crop_size: int = 112, mean=VideoAugConfig.mean, std=VideoAugConfig.std):
        self.crop_size, self.mean, self.std = int(crop_size), mean, std
        self.resize = int(self.crop_size / 0.875)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 4 or x.shape[-1] != 3:
            raise ValueError(f"EvalVideoTransform: expected uint8 [..., T, H, W, 3], got {tuple(x.shape)}")
        lead, (T, H, W) = x.shape[:-4], x.shape[-4:-1]
        y = _to_float_frames(x.reshape(-1, T, H, W, 3))            # [n, T, 3, H, W]
        n = y.shape[0]
        if H <= W:
            nh, nw = self.resize, int(self.resize * W / H)
        else:
            nh, nw = int(self.resize * H / W), self.resize
        if (nh, nw) != (H, W):
            y = F.interpolate(y.reshape(n, T * 3, H, W), size=(nh, nw), mode="bilinear",
                              align_corners=False, antialias=True).view(n, T, 3, nh, nw)
        c = self.crop_size
        if c > nh or c > nw:
            raise ValueError(f"EvalVideoTransform: crop {c} larger than resized frame {(nh, nw)}")
        top, left = int(round((nh - c) / 2)), int(round((nw - c) / 2))
        y = _normalise(y[..., top:top + c, left:left + c], self.mean, self.std)
        return y.permute(0, 2, 1, 3, 4).reshape(*lead, 3, T, c, c)
