"""Log-mel front end and batched spectrogram augmentation on torch (docs/method.md §6.3).

    mel = LogMel(16000)(wave)                    # wave float [B, N] -> [B, 1, 80, 1 + N // 160]
    spec = AudioAugment(AudioAugConfig(), 16000)(wave, generator=g)   # same shape, augmented

`LogMel` equals the original librosa front end (Slaney mel scale and area normalisation,
reflect-padded centred STFT, Hann, power + 2.2e-16, ln(mel + 1.19e-7), fixed normalisation),
computed with torch.stft and a filterbank built here (no librosa at run time).
`AudioAugment` draws per-sample parameters on the CPU (from `generator` if given) and applies
volume jitter -> log-mel -> [time warp] -> frequency masks -> time masks -> [random resize-crop]
(the masks of one axis share one fill value, the spectrogram's mean as the axis' masking begins).
Time warp and resize-crop are batched as per-sample bicubic taps applied with `gather` (the
arithmetic of `F.interpolate(mode="bicubic")` on each sample's crop, without a Python loop).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from crisscross_core.config import AudioAugConfig

POWER_EPS = 2.2e-16          # added to |X|^2 (float64 eps, as the original)
LOG_EPS = 1.19e-7            # added to the mel energies before ln (float32 eps)
NORM_MEAN = -5.3688107       # fixed normalisation constants (docs/method.md §6.3)
NORM_STD = 4.410007
RRC_CANVAS = (1.0, 1.5)      # BYOL-A virtual canvas scale (F, T)


# ----------------------------------------------------------------------------- mel filterbank

def hz_to_mel(f):
    """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    lin = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, lin)


def mel_to_hz(m):
    """Inverse of `hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: Optional[float] = None) -> np.ndarray:
    """Slaney-scale, area-normalised triangular filters, float32 [n_mels, 1 + n_fft // 2]
    (the same matrix as librosa.filters.mel(htk=False, norm='slaney'))."""
    fmax = rate / 2.0 if fmax is None else fmax
    fft_f = np.linspace(0, rate / 2.0, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


class LogMel(nn.Module):
    """Normalised log-mel spectrogram: float [B, N] (or [N]) -> [B, 1, n_mels, 1 + N // hop].

    Buffers `window` (periodic Hann) and `fb` (filterbank) follow `.to(device)`; if they are on
    another device than the input, a copy is used.
    """

    def __init__(self, rate: int = 16000, n_fft: int = 1024, hop: int = 160, n_mels: int = 80):
        super().__init__()
        self.rate, self.n_fft, self.hop, self.n_mels = rate, n_fft, hop, n_mels
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(rate, n_fft, n_mels)), persistent=False)

    def frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 1:
            wave = wave[None]
        if wave.dim() != 2:
            raise ValueError(f"LogMel: expected waveform [B, N], got shape {tuple(wave.shape)}")
        if wave.shape[-1] <= self.n_fft // 2:
            raise ValueError(f"LogMel: waveform of {wave.shape[-1]} samples is too short for "
                             f"reflect padding with n_fft={self.n_fft} (need > {self.n_fft // 2})")
        wave = wave.float()
        win, fb = self.window.to(wave.device), self.fb.to(wave.device)
        X = torch.stft(wave, self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=win,
                       center=True, pad_mode="reflect", return_complex=True)
        power = X.real.square() + X.imag.square() + POWER_EPS           # [B, 1+n_fft/2, T]
        mel = torch.matmul(fb, power)                                   # [B, n_mels, T]
        return ((torch.log(mel + LOG_EPS) - NORM_MEAN) / NORM_STD).unsqueeze(1)


# ----------------------------------------------------------------------------- bicubic resampling

def _cubic_weights(t: torch.Tensor, A: float = -0.75) -> torch.Tensor:
    """PyTorch's bicubic convolution weights for fractional offsets t [...] -> [..., 4]."""
    def near(x):   # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def far(x):    # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
    return torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], -1)


def cubic_taps(out_pos: torch.Tensor, out_len: torch.Tensor, in_len: torch.Tensor,
               offset: torch.Tensor, align_corners: bool):
    """Per-sample 1-D bicubic taps: (index int64 [B, P, 4], weight float [B, P, 4]).

    Output position `out_pos[b, p]` of a resize of the segment [offset, offset + in_len) (in
    axis coordinates) to `out_len` samples; taps are clamped to the segment, as
    `F.interpolate(mode="bicubic")` does when called on the cropped segment.
    """
    k, n, L = out_pos.float(), out_len.float(), in_len.float()
    if align_corners:
        src = torch.where(n > 1, (L - 1) / (n - 1).clamp(min=1), torch.zeros_like(L)) * k
    else:
        src = (L / n) * (k + 0.5) - 0.5
    x0 = torch.floor(src)
    w = _cubic_weights(src - x0)
    taps = x0[..., None] + torch.arange(-1, 3, dtype=x0.dtype)
    taps = torch.minimum(taps.clamp(min=0), (L - 1)[..., None]).long() + offset.long()[..., None]
    return taps, w


def resample(x: torch.Tensor, taps: torch.Tensor, w: torch.Tensor, dim: int,
             origin: int = 0) -> torch.Tensor:
    """Apply taps along `dim` (1 or 2) of x [B, F, T]: out[..., p] = Σ_m w[b,p,m]·x[..., taps[b,p,m]].

    Tap indices are in a canvas where x starts at `origin`; taps outside x read zero (the
    BYOL-A zero canvas). Output length along `dim` = taps.shape[1].
    """
    B, L = x.shape[0], x.shape[dim]
    idx = taps.to(x.device) - origin
    w = torch.where((idx >= 0) & (idx < L), w.to(x.device, x.dtype), torch.zeros((), device=x.device))
    idx = idx.clamp(0, L - 1)
    P = idx.shape[1]
    if dim == 2:
        g = x.gather(2, idx.reshape(B, 1, P * 4).expand(B, x.shape[1], P * 4)).view(B, x.shape[1], P, 4)
        return (g * w[:, None]).sum(-1)
    g = x.gather(1, idx.reshape(B, P * 4, 1).expand(B, P * 4, x.shape[2])).view(B, P, 4, x.shape[2])
    return (g * w[..., None]).sum(2)


def time_warp_params(T: int, window: int, n: int, generator=None) -> torch.Tensor:
    """SpecAugment time warp (centre c, warped point w) int64 [n, 2]: c ~ randint[W, T-W),
    w ~ randint[c-W, c+W) + 1; rows of -1 (no warp) when T - W <= W."""
    if T - window <= window:
        return torch.full((n, 2), -1, dtype=torch.long)
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    c = window + torch.floor(u[:, 0] * (T - 2 * window)).long()
    w = c - window + torch.floor(u[:, 1] * (2 * window)).long() + 1
    return torch.stack([c, w], 1)


def time_warp_taps(T: int, cw: torch.Tensor):
    """Taps [n, T, 4] for the warp: [0, c) -> w frames, [c, T) -> T - w frames (bicubic,
    align_corners=False); identity rows where c < 0."""
    n = len(cw)
    c, w = cw[:, :1], cw[:, 1:]
    skip = c < 0
    c, w = torch.where(skip, T, c), torch.where(skip, T, w)
    r = torch.arange(T)[None].expand(n, T)
    left = r < w
    pos = torch.where(left, r, r - w)
    out_len = torch.where(left, w, T - w)
    in_len = torch.where(left, c, T - c)
    offset = torch.where(left, torch.zeros_like(r), c.expand(n, T))
    return cubic_taps(pos, out_len, in_len, offset, align_corners=False)


def resize_crop_params(F_: int, T: int, n: int, scale=(0.6, 1.5), generator=None):
    """BYOL-A crop boxes on the (F·1.0, T·1.5) zero canvas: int64 [n, 4] = (top, left, h, w)
    with h = clip(⌊U(scale)·F⌋, 1, canvas_h), w likewise, position uniform (inclusive)."""
    ch, cw = int(RRC_CANVAS[0] * F_), int(RRC_CANVAS[1] * T)
    u = scale[0] + (scale[1] - scale[0]) * torch.rand(n, 2, generator=generator, dtype=torch.float64)
    h = torch.floor(u[:, 0] * F_).long().clamp(1, ch)
    w = torch.floor(u[:, 1] * T).long().clamp(1, cw)
    v = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    top = torch.minimum(torch.floor(v[:, 0] * (ch - h + 1)).long(), ch - h)
    left = torch.minimum(torch.floor(v[:, 1] * (cw - w + 1)).long(), cw - w)
    return torch.stack([top, left, h, w], 1)


def resize_crop(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """x [B, F, T]: centre each spectrogram on a zero canvas (F·1.0, T·1.5), crop `boxes`
    [B, 4] (top, left, h, w), resize bicubic (align_corners=True) back to F×T."""
    B, F_, T = x.shape
    ch, cw = int(RRC_CANVAS[0] * F_), int(RRC_CANVAS[1] * T)
    top, left, h, w = boxes.unbind(1)

    def axis(out, length, start):
        pos = torch.arange(out)[None].expand(B, out)
        return cubic_taps(pos, torch.full_like(pos, out), length[:, None].expand(B, out),
                          start[:, None].expand(B, out), align_corners=True)
    x = resample(x, *axis(F_, h, top), dim=1, origin=(ch - F_) // 2)
    return resample(x, *axis(T, w, left), dim=2, origin=(cw - T) // 2)


# ----------------------------------------------------------------------------- masks

def _mask_fill(x: torch.Tensor, start: torch.Tensor, width: torch.Tensor, dim: int,
               fill: Optional[torch.Tensor] = None) -> torch.Tensor:
    """x [B, F, T]; fill [start, start+width) along `dim` (1 freq, 2 time) with `fill` [B, 1, 1]
    (default: the per-sample mean of x)."""
    idx = torch.arange(x.shape[dim], device=x.device)
    s, w = start.to(x.device)[:, None], width.to(x.device)[:, None]
    m = (idx[None] >= s) & (idx[None] < s + w)                           # [B, L]
    m = m[:, :, None] if dim == 1 else m[:, None, :]
    return torch.where(m, x.mean(dim=(1, 2), keepdim=True) if fill is None else fill, x)


def mask_axis(x: torch.Tensor, masks: list, dim: int) -> torch.Tensor:
    """The release's masking of one axis, x [B, F, T]: every mask in `masks` ([(start [B], width
    [B]), ...]) is filled with one value, the per-sample mean of x as it enters (one mean per call)."""
    if not masks:
        return x
    fill = x.mean(dim=(1, 2), keepdim=True)
    for st, wd in masks:
        x = _mask_fill(x, st, wd, dim, fill)
    return x


class AudioAugment(nn.Module):
    """Training audio: waveform float [B, N] -> augmented normalised log-mel [B, 1, F, 1 + N // hop].

    `sample_params(B, N, generator)` / `apply(wave, params)` split drawing from applying.
    """

    def __init__(self, cfg: AudioAugConfig | None = None, rate: int = 16000):
        super().__init__()
        self.cfg = cfg or AudioAugConfig()
        self.rate = rate
        self.logmel = LogMel(rate, self.cfg.n_fft, self.cfg.hop, self.cfg.n_mels)

    def sample_params(self, n: int, n_samples: int, generator: Optional[torch.Generator] = None) -> dict:
        """Per-sample draws (CPU tensors): gain [n]; warp (c, w) [n, 2] if time_warp; freq/time
        masks as lists of (start, width) [n] with width w ~ randint[0, W) (W = the configured width)
        and start ~ randint[0, max(1, L - w)) bounded by the *drawn* width, as the release; crop
        boxes [n, 4]. The masks of one axis are filled with one mean (`mask_axis`)."""
        c, g = self.cfg, generator
        if g is not None and g.device.type != "cpu":
            raise ValueError(f"AudioAugment: generator must be a CPU torch.Generator, got {g.device}")
        F_, T = c.n_mels, self.logmel.frames(n_samples)
        p = {"gain": (1 - c.volume + 2 * c.volume * torch.rand(n, generator=g, dtype=torch.float64)).float()}
        if c.time_warp:
            p["warp"] = time_warp_params(T, c.time_warp_window, n, g)

        def masks(k, width, length):
            out = []
            for _ in range(k):
                wd = torch.floor(torch.rand(n, generator=g, dtype=torch.float64) * width).long()
                st = torch.floor(torch.rand(n, generator=g, dtype=torch.float64)
                                 * (length - wd).clamp(min=1)).long()
                out.append((st, wd))
            return out
        p["freq_masks"] = masks(c.freq_masks, c.freq_mask_width, F_)
        p["time_masks"] = masks(c.time_masks, c.time_mask_width, T)
        if c.resize_crop:
            p["crop"] = resize_crop_params(F_, T, n, c.resize_crop_scale, g)
        return p

    def apply(self, wave: torch.Tensor, p: dict) -> torch.Tensor:
        dev = wave.device
        x = self.logmel(wave.float() * p["gain"].to(dev)[:, None])[:, 0]   # [B, F, T]
        if "warp" in p and bool((p["warp"][:, 0] >= 0).any()):
            x = resample(x, *time_warp_taps(x.shape[2], p["warp"]), dim=2)
        x = mask_axis(x, p["freq_masks"], 1)
        x = mask_axis(x, p["time_masks"], 2)
        if "crop" in p:
            x = resize_crop(x, p["crop"])
        return x.unsqueeze(1)

    def forward(self, wave: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if wave.dim() != 2:
            raise ValueError(f"AudioAugment: expected waveform [B, N], got shape {tuple(wave.shape)}")
        return self.apply(wave, self.sample_params(wave.shape[0], wave.shape[1], generator))
