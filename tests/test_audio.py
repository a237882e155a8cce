"""Log-mel front end (equal to the original librosa one) and spectrogram augmentation (docs/method.md §6.3)."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crisscross_core.config import AudioAugConfig
from crisscross_core.data import audio as au
from crisscross_core.data.audio import AudioAugment, LogMel

torch.set_num_threads(1)
from shared_paths import SHARED as DATA
ESC10 = DATA / "esc10" / "audio"
PLAIN = AudioAugConfig(volume=0.0, freq_masks=0, time_masks=0, resize_crop=False, time_warp=False)


def _librosa_logmel(x, n_fft=1024, n_mels=80):
    librosa = pytest.importorskip("librosa")
    fb = librosa.filters.mel(sr=16000, n_fft=n_fft, n_mels=n_mels, htk=False, norm="slaney")
    S = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=160, window="hann", center=True,
                            pad_mode="reflect")) ** 2 + 2.2e-16
    return (np.log(fb @ S + 1.19e-7) - (-5.3688107)) / 4.410007


def _esc10_waves(k=3, seconds=2.0):
    """`seconds` around the loudest sample of k ESC-10 clips, mono float32, as 16 kHz samples."""
    sf = pytest.importorskip("soundfile")
    files = sorted(ESC10.glob("*.flac"))
    if not files:
        pytest.skip(f"ESC-10 audio not found under {ESC10}")
    out = []
    for f in files[:: max(1, len(files) // k)][:k]:
        x, _ = sf.read(str(f), dtype="float32", always_2d=True)
        x, n = x.mean(1), int(seconds * 16000)
        start = min(max(0, int(np.abs(x).argmax()) - n // 4), max(0, len(x) - n))
        out.append(np.ascontiguousarray(x[start:start + n]))
        assert np.abs(out[-1]).max() > 1e-3
    return out


@pytest.mark.parametrize("n_fft,n_mels", [(1024, 80), (512, 40)])
def test_logmel_equals_librosa_on_esc10(n_fft, n_mels):
    waves = _esc10_waves()
    mel = LogMel(16000, n_fft=n_fft, hop=160, n_mels=n_mels)
    for x in waves:
        ref = _librosa_logmel(x, n_fft, n_mels)
        out = mel(torch.from_numpy(x)[None])
        assert out.shape == (1, 1, n_mels, 1 + len(x) // 160)
        err = np.abs(out[0, 0].numpy() - ref).max()
        assert err <= 1e-3, f"max abs error {err} vs librosa"


def test_filterbank_equals_librosa_slaney():
    librosa = pytest.importorskip("librosa")
    for sr, n_fft, n_mels in [(16000, 1024, 80), (16000, 512, 40), (22050, 2048, 128)]:
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=False, norm="slaney")
        np.testing.assert_allclose(au.mel_filterbank(sr, n_fft, n_mels), ref, rtol=1e-5, atol=1e-7)


def test_logmel_shapes_and_short_input_error():
    mel = LogMel()
    assert mel(torch.zeros(2, 32000)).shape == (2, 1, 80, 201)
    assert mel(torch.zeros(16000)).shape == (1, 1, 80, 101)
    with pytest.raises(ValueError, match="too short"):
        mel(torch.zeros(1, 400))


def test_volume_jitter_scales_waveform_per_sample():
    g = torch.Generator().manual_seed(0)
    wave = torch.randn(6, 8000) * 0.1
    aug = AudioAugment(dataclasses.replace(PLAIN, volume=0.2))
    p = aug.sample_params(6, 8000, g)
    assert (p["gain"] >= 0.8).all() and (p["gain"] <= 1.2).all() and p["gain"].std() > 0
    torch.testing.assert_close(aug.apply(wave, p), LogMel()(wave * p["gain"][:, None]))


def test_mask_fill_uses_mean_and_exact_band():
    x = torch.randn(2, 10, 30)
    out = au._mask_fill(x, torch.tensor([2, 0]), torch.tensor([3, 0]), dim=1)
    torch.testing.assert_close(out[0, 2:5], x[0].mean().expand(3, 30))
    torch.testing.assert_close(out[0, :2], x[0, :2])
    torch.testing.assert_close(out[0, 5:], x[0, 5:])
    torch.testing.assert_close(out[1], x[1])                      # width 0: untouched
    out = au._mask_fill(x, torch.tensor([7, 1]), torch.tensor([4, 2]), dim=2)
    torch.testing.assert_close(out[1, :, 1:3], x[1].mean().expand(10, 2))
    torch.testing.assert_close(out[1, :, 3:], x[1, :, 3:])


def test_mask_widths_below_limit_and_bands_filled():
    cfg = dataclasses.replace(PLAIN, freq_masks=2, time_masks=2)
    aug = AudioAugment(cfg)
    p = aug.sample_params(400, 32000, torch.Generator().manual_seed(0))
    for (st, wd), lim, size in [(m, 10, 80) for m in p["freq_masks"]] + [(m, 20, 201) for m in p["time_masks"]]:
        assert wd.min() == 0 and wd.max() == lim - 1                # widths from [0, lim)
        assert st.min() >= 0 and (st + wd).max() <= size
    wave = torch.randn(4, 32000) * 0.1
    q = aug.sample_params(4, 32000, torch.Generator().manual_seed(1))
    q["time_masks"] = []
    out = aug.apply(wave, q)[:, 0]
    clean = LogMel()(wave)[:, 0]
    for b in range(4):
        changed = (out[b] != clean[b]).any(1).nonzero().flatten().tolist()
        band = set()
        for st, wd in q["freq_masks"]:
            band |= set(range(int(st[b]), int(st[b] + wd[b])))
        assert set(changed) <= band and len(changed) >= len(band) - 1


def _mask_coverage(length, width):
    """P(bin b is covered by one mask) [length] when w ~ randint[0, width), s ~ randint[0, max(1, L - w))
    (the release: the start is bounded by the *drawn* width), by enumeration."""
    p = np.zeros(length)
    for w in range(width):
        n_start = max(1, length - w)
        for s in range(n_start):
            p[s:s + w] += 1.0 / (width * n_start)
    return p


@pytest.mark.parametrize("axis,length,width", [("freq_masks", 80, 10), ("time_masks", 201, 20)])
def test_mask_positions_follow_the_release_distribution(axis, length, width):
    """Per-bin masking frequencies equal the release's, top bins included (a start bounded by the
    configured width instead masks bins 71-78 of 80 2-4x less often and bin 78 never)."""
    cfg = dataclasses.replace(PLAIN, freq_masks=2, time_masks=2)
    n = 100_000
    p = AudioAugment(cfg).sample_params(n, 32000, torch.Generator().manual_seed(0))
    expect = _mask_coverage(length, width)
    for st, wd in p[axis]:
        idx = torch.arange(length)
        hit = ((idx[None] >= st[:, None]) & (idx[None] < (st + wd)[:, None])).double().mean(0).numpy()
        sd = np.sqrt(expect * (1 - expect) / n)
        assert np.all(np.abs(hit - expect) <= 4.5 * sd + 1e-12), np.abs(hit - expect) / (sd + 1e-12)
        assert hit[-1] == 0 and expect[-2] > 0 and hit[-2] > 0    # the last bin never; the one before, yes
        top = slice(length - 9, length - 1)
        assert np.all(hit[top] >= 0.5 * expect[top])


def test_masks_of_one_axis_share_one_mean():
    """All frequency masks are filled with the spectrogram's mean before them; all time masks with the
    mean after the frequency masks (one mean per masking call, as the release)."""
    aug = AudioAugment(dataclasses.replace(PLAIN, freq_masks=2, time_masks=2))
    wave = torch.randn(2, 32000) * 0.1
    one = torch.ones(2, dtype=torch.long)
    p = {"gain": torch.ones(2),
         "freq_masks": [(5 * one, 3 * one), (40 * one, 9 * one)],
         "time_masks": [(10 * one, 5 * one), (150 * one, 19 * one)]}
    out = aug.apply(wave, p)[:, 0]
    clean = LogMel()(wave)[:, 0]
    m_freq = clean.mean(dim=(1, 2))
    after_freq = clean.clone()
    after_freq[:, 5:8] = m_freq[:, None, None]
    after_freq[:, 40:49] = m_freq[:, None, None]
    m_time = after_freq.mean(dim=(1, 2))
    for b in range(2):
        assert torch.all(out[b, 40:49, :10] == m_freq[b]) and torch.all(out[b, 5:8, :10] == m_freq[b])
        assert torch.all(out[b, :, 10:15] == m_time[b]) and torch.all(out[b, :, 150:169] == m_time[b])
        assert m_freq[b] != m_time[b]
        torch.testing.assert_close(out[b, 50:, 20:150], clean[b, 50:, 20:150], rtol=0, atol=0)


def test_resize_crop_matches_per_sample_interpolate_reference():
    """The batched version equals: zero canvas (F, 1.5T), spec centred, crop, bicubic
    (align_corners=True) back to F×T, done sample by sample with F.interpolate."""
    g = torch.Generator().manual_seed(0)
    Fm, T = 80, 201
    spec = torch.randn(6, Fm, T)
    boxes = au.resize_crop_params(Fm, T, 6, (0.6, 1.5), g)
    out = au.resize_crop(spec, boxes)
    cw = int(1.5 * T)
    for b in range(6):
        canvas = torch.zeros(Fm, cw)
        canvas[:, (cw - T) // 2:(cw - T) // 2 + T] = spec[b]
        t, l, h, w = boxes[b].tolist()
        assert 1 <= h <= Fm and 1 <= w <= cw and t + h <= Fm and l + w <= cw
        ref = F.interpolate(canvas[t:t + h, l:l + w][None, None], size=(Fm, T), mode="bicubic",
                            align_corners=True)[0, 0]
        torch.testing.assert_close(out[b], ref, rtol=0, atol=1e-4)
    sizes = au.resize_crop_params(Fm, T, 2000, (0.6, 1.5), g)
    assert sizes[:, 2].min() == 48 and sizes[:, 2].max() == 80        # ⌊0.6·80⌋ .. clipped at F
    assert sizes[:, 3].min() >= 120 and sizes[:, 3].max() == 301


def test_time_warp_matches_specaugment_reference():
    g = torch.Generator().manual_seed(0)
    spec = torch.randn(5, 40, 101)
    cw = au.time_warp_params(101, 20, 5, g)
    out = au.resample(spec, *au.time_warp_taps(101, cw), dim=2)
    for b in range(5):
        c, w = cw[b].tolist()
        assert 20 <= c < 81 and c - 20 < w <= c + 20
        left = F.interpolate(spec[b, None, None, :, :c], size=(40, w), mode="bicubic", align_corners=False)
        right = F.interpolate(spec[b, None, None, :, c:], size=(40, 101 - w), mode="bicubic",
                              align_corners=False)
        torch.testing.assert_close(out[b], torch.cat([left, right], -1)[0, 0], rtol=0, atol=1e-4)
    skip = au.time_warp_params(40, 20, 2, g)                         # T - W <= W: skipped
    assert (skip == -1).all()
    torch.testing.assert_close(au.resample(spec[:2, :, :40], *au.time_warp_taps(40, skip), dim=2),
                               spec[:2, :, :40])


def test_augment_shapes_independence_and_reproducibility():
    cfg = AudioAugConfig(time_warp=True)
    aug = AudioAugment(cfg)
    wave = (torch.randn(1, 16000) * 0.1).expand(4, 16000)
    a = aug(wave, generator=torch.Generator().manual_seed(3))
    b = aug(wave, generator=torch.Generator().manual_seed(3))
    c = aug(wave, generator=torch.Generator().manual_seed(4))
    assert a.shape == (4, 1, 80, 101)
    assert torch.equal(a, b) and (a - c).abs().max() > 0.1
    assert min((a[i] - a[j]).abs().max() for i in range(4) for j in range(i + 1, 4)) > 0.1
    assert "warp" in aug.sample_params(4, 16000)
    assert "warp" not in AudioAugment(AudioAugConfig()).sample_params(4, 16000)   # off in pretraining


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    wave = torch.randn(4, 32000) * 0.1
    aug = AudioAugment(AudioAugConfig(time_warp=True))
    a = aug(wave, generator=torch.Generator().manual_seed(0))
    b = aug(wave.cuda(), generator=torch.Generator().manual_seed(0))
    assert b.device.type == "cuda"
    torch.testing.assert_close(b.cpu(), a, rtol=0, atol=1e-3)
