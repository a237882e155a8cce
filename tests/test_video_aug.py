"""Behaviour of the batched video augmentation (docs/method.md §6.2) and the eval transform."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from crisscross_core.config import VideoAugConfig
from crisscross_core.data import video_aug as va
from crisscross_core.data.video_aug import EvalVideoTransform, VideoAugment, rrc_params

torch.set_num_threads(1)

# every op off, identity normalisation: only the crop/resize remains
PLAIN = VideoAugConfig(crop_size=24, flip_p=0.0, jitter_p=0.0, gray_p=0.0, blur_p=0.0, cutout_p=0.0,
                       mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def _cfg(**kw):
    return dataclasses.replace(PLAIN, **kw)


def _clip(B=3, T=4, H=32, W=40, seed=0, same_frames=False):
    g = torch.Generator().manual_seed(seed)
    if same_frames:
        one = torch.randint(0, 256, (B, 1, H, W, 3), generator=g, dtype=torch.uint8)
        return one.expand(B, T, H, W, 3).contiguous()
    return torch.randint(0, 256, (B, T, H, W, 3), generator=g, dtype=torch.uint8)


def _frames(x):
    """uint8 [B, T, H, W, 3] -> float [B, T*3, H, W] in [0,1]."""
    B, T, H, W, _ = x.shape
    return x.permute(0, 1, 4, 2, 3).float().div(255).reshape(B, T * 3, H, W)


def _as_bcthw(y, B, T):
    """float [B, T*3, c, c] -> [B, 3, T, c, c]."""
    return y.view(B, T, 3, *y.shape[-2:]).permute(0, 2, 1, 3, 4)


def _full_box_params(aug, x, flip=False):
    B, T, H, W, _ = x.shape
    p = aug.sample_params(B, H, W, torch.Generator().manual_seed(1))
    p["boxes"] = torch.tensor([[0, 0, H, W]] * B)
    p["flip"] = torch.full((B,), flip)
    return p


def test_output_shape_dtype_and_frames_share_all_params():
    """Identical frames in -> identical frames out (crop, flip, jitter, blur, cutout per clip);
    the same image in different batch slots gets different augmentations."""
    cfg = VideoAugConfig(crop_size=24, blur_p=0.5)
    x = _clip(B=1, T=4, same_frames=True).expand(6, 4, 32, 40, 3).contiguous()
    y = VideoAugment(cfg)(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == (6, 3, 4, 24, 24) and y.dtype == torch.float32
    for t in range(1, 4):
        torch.testing.assert_close(y[:, :, t], y[:, :, 0], rtol=0, atol=1e-6)
    diffs = [(y[i] - y[j]).abs().max().item() for i in range(6) for j in range(i + 1, 6)]
    assert min(diffs) > 1e-2


def test_rrc_params_bounds_scale_and_fallback():
    g = torch.Generator().manual_seed(0)
    H, W = 128, 170
    boxes = rrc_params(2000, H, W, (0.08, 1.0), (0.75, 4 / 3), g)
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= H).all() and (left + w <= W).all()
    frac = (h * w).float() / (H * W)
    assert frac.min() < 0.15 and frac.max() > 0.85            # covers the scale range
    assert len(set(map(tuple, boxes.tolist()))) > 1900         # per-sample draws
    # an impossible area range: every sample falls back to the ratio-clipped central crop
    fb = rrc_params(5, 100, 300, (2.0, 3.0), (0.75, 4 / 3), g)
    assert fb.tolist() == [[0, (300 - 133) // 2, 100, 133]] * 5


def test_full_frame_box_equals_plain_resize():
    x = _clip(B=2, H=32, W=40)
    aug = VideoAugment(PLAIN)
    y = aug.apply(x, _full_box_params(aug, x))
    ref = F.interpolate(_frames(x), size=(24, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(y, _as_bcthw(ref, 2, 4), rtol=0, atol=1e-5)


def test_inner_box_equals_crop_then_resize():
    x = _clip(B=1, H=32, W=40)
    aug = VideoAugment(PLAIN)
    p = _full_box_params(aug, x)
    p["boxes"] = torch.tensor([[3, 7, 28, 30]])                 # downscale to 24: no edge clamping
    y = aug.apply(x, p)
    ref = F.interpolate(_frames(x)[..., 3:31, 7:37], size=(24, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(y, _as_bcthw(ref, 1, 4), rtol=0, atol=1e-5)


def test_flip_mirrors_width():
    x = _clip(B=2, H=32, W=40)
    aug = VideoAugment(PLAIN)
    y0 = aug.apply(x, _full_box_params(aug, x, flip=False))
    y1 = aug.apply(x, _full_box_params(aug, x, flip=True))
    torch.testing.assert_close(y1, y0.flip(-1), rtol=0, atol=1e-5)
    assert (y1 - y0).abs().max() > 0.1
    # flip_p = 1 through the public call flips every sample relative to the same crop
    g = torch.Generator().manual_seed(3)
    yf = VideoAugment(_cfg(flip_p=1.0))(x, generator=g)
    yn = VideoAugment(PLAIN)(x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(yf, yn.flip(-1), rtol=0, atol=1e-5)


def test_jitter_identity_factors_and_known_factors():
    x = _frames(_clip(B=2, T=2, H=8, W=8)).view(2, 2, 3, 8, 8)
    order = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])
    ident = torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 2)
    torch.testing.assert_close(va.color_jitter(x, ident, order), x, rtol=0, atol=1e-5)
    # brightness 1.3 then contrast 0.5 (sample 0), contrast 0.5 then brightness 1.3 (sample 1)
    f = torch.tensor([[1.3, 0.5, 1.0, 0.0]] * 2)
    order = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 3]])
    out = va.color_jitter(x, f, order)

    def contrast(img):
        gray = 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]
        m = gray.mean(dim=(-2, -1)).view(-1, 1, 1, 1)
        return (0.5 * img + 0.5 * m).clamp(0, 1)
    ref0 = contrast((x[0] * 1.3).clamp(0, 1))
    ref1 = (contrast(x[1]) * 1.3).clamp(0, 1)
    torch.testing.assert_close(out[0], ref0, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[1], ref1, rtol=0, atol=1e-5)
    assert (ref0 - ref1).abs().max() > 1e-3                       # order matters, and is honoured


def test_jitter_params_ranges_and_orders():
    p = VideoAugment(VideoAugConfig()).sample_params(1000, 32, 40, torch.Generator().manual_seed(0))
    f = p["factors"]
    assert f[:, :3].min() >= 0.6 and f[:, :3].max() <= 1.4 and f[:, 3].abs().max() <= 0.2
    assert f[:, :3].min() < 0.62 and f[:, :3].max() > 1.38
    assert (p["order"].sort(1).values == torch.arange(4)).all()          # permutations
    assert len(set(map(tuple, p["order"].tolist()))) == 24               # all 24 orders occur
    off = VideoAugment(VideoAugConfig(jitter_p=0.0)).sample_params(10, 32, 40)["factors"]
    assert torch.equal(off, torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 10))


def test_chunked_cpu_path_equals_whole_batch():
    """The CPU processes clips in small groups; an accelerator takes the whole batch at once."""
    x = _clip(B=5)
    aug = VideoAugment(VideoAugConfig(crop_size=24, blur_p=0.5))
    p = aug.sample_params(5, 32, 40, torch.Generator().manual_seed(2))
    torch.testing.assert_close(aug.apply(x, p, chunk=2), aug.apply(x, p, chunk=5), rtol=0, atol=1e-6)


def test_hue_and_saturation_semantics():
    red = torch.zeros(1, 1, 3, 2, 2)
    red[:, :, 0] = 1.0
    green = va.adjust_hue(red.clone(), torch.tensor([1 / 3]))
    torch.testing.assert_close(green[0, 0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]), rtol=0, atol=1e-5)
    x = _frames(_clip(B=3, T=2, H=6, W=6)).view(3, 2, 3, 6, 6)
    x[0, 0, 1] = x[0, 0, 0]                                             # ties between channels
    torch.testing.assert_close(va.hsv_to_rgb(va.rgb_to_hsv(x)), x, rtol=0, atol=1e-5)
    # the fused hue shift equals the explicit RGB -> HSV -> shift -> RGB path, per sample
    f = torch.tensor([-0.2, 0.05, 0.5])
    hsv = va.rgb_to_hsv(x)
    hsv[:, :, 0] = torch.remainder(hsv[:, :, 0] + f.view(-1, 1, 1, 1), 1.0)
    torch.testing.assert_close(va.adjust_hue(x, f), va.hsv_to_rgb(hsv), rtol=0, atol=1e-5)
    gray = va.adjust_saturation(x.clone(), torch.tensor([0.0]))
    assert (gray[:, :, 0] - gray[:, :, 1]).abs().max() < 1e-6


def test_grayscale_makes_channels_equal():
    x = _clip(B=2)
    y = VideoAugment(_cfg(gray_p=1.0))(x)
    assert (y[:, 0] - y[:, 1]).abs().max() < 1e-6 and (y[:, 1] - y[:, 2]).abs().max() < 1e-6
    y = VideoAugment(_cfg(gray_p=0.0))(x)
    assert (y[:, 0] - y[:, 1]).abs().max() > 0.1


def _impulse(B=2, size=41):
    x = torch.zeros(B, 1, size, size, 3, dtype=torch.uint8)
    x[:, :, size // 2, size // 2] = 255
    return x


def _spread(y):
    """Second moments (var_y, var_x) of the blurred impulse [B, 3, 1, c, c], channel 0."""
    img = y[:, 0, 0]
    img = img / img.sum(dim=(-2, -1), keepdim=True)
    r = torch.arange(img.shape[-1], dtype=torch.float32) - img.shape[-1] // 2
    return (img.sum(-1) * r ** 2).sum(-1), (img.sum(-2) * r ** 2).sum(-1)


def test_blur_sigma_per_sample_isotropic_and_legacy_anisotropic():
    aug = VideoAugment(_cfg(crop_size=41, blur_p=1.0))
    x = _impulse()
    p = _full_box_params(aug, x)
    p["sigma"] = torch.tensor([[0.6, 0.6], [1.8, 1.8]], dtype=torch.float64)
    vy, vx = _spread(aug.apply(x, p))
    torch.testing.assert_close(vy, vx, rtol=1e-4, atol=1e-5)      # isotropic
    assert vy[1] > 4 * vy[0]                                      # each sample its own sigma
    sig = aug.sample_params(500, 41, 41, torch.Generator().manual_seed(0))["sigma"]
    assert 0.1 <= sig.min() and sig.max() <= 2.0 and sig[:, 0].std() > 0.3
    legacy = VideoAugment(_cfg(crop_size=41, blur_p=1.0, legacy_blur=True))
    vy, vx = _spread(legacy.apply(x, _full_box_params(legacy, x)))
    # sigma_y 2.0 (truncated by the 5-tap kernel of a 41 crop), sigma_x 0.1 (practically none)
    assert (vy > 1.0).all() and (vx < 1e-3).all()


def test_blur_kernel_size():
    assert va.blur_kernel_size(112) == 11 and va.blur_kernel_size(224) == 23


def test_cutout_square_is_zero_same_on_all_frames():
    cfg = VideoAugConfig(crop_size=24, flip_p=0.0, jitter_p=0.0, gray_p=0.0, blur_p=0.0, cutout_p=1.0)
    x = _clip(B=8, T=3)
    aug = VideoAugment(cfg)
    p = aug.sample_params(8, 32, 40, torch.Generator().manual_seed(5))
    y = aug.apply(x, p)
    y0 = aug.apply(x, {**p, "cutout": torch.zeros(8, dtype=torch.bool)})
    zero = (y == 0).all(dim=1)                                     # [B, T, c, c]
    for b in range(8):
        y1, y2, x1, x2 = p["cutbox"][b].tolist()
        assert y2 - y1 <= 20 and x2 - x1 <= 20                     # side 2*floor(L/2), L <= 20
        assert zero[b, :, y1:y2, x1:x2].all()
        outside = torch.ones(24, 24, dtype=torch.bool)
        outside[y1:y2, x1:x2] = False
        torch.testing.assert_close(y[b][..., outside], y0[b][..., outside])
    assert (p["cutbox"][:, 1] - p["cutbox"][:, 0]).float().std() > 0   # sizes vary per sample
    legacy = VideoAugment(dataclasses.replace(cfg, legacy_cutout=True))
    yl = legacy.apply(x, p)
    for b in range(8):
        y1, y2, x1, x2 = p["cutbox"][b].tolist()
        m = y0[b, :, 0].mean()
        torch.testing.assert_close(yl[b][..., y1:y2, x1:x2], y0[b][..., y1:y2, x1:x2] * m)


def test_cutout_side_is_drawn_inclusive_1_to_max():
    """The release draws L from 1..20 inclusive; the square's side is 2*floor(L/2), so sides 0, 2, ...,
    20 occur with probabilities 1/20, 2/20, ..., 2/20, 1/20 (the largest square is 20 px, not 18)."""
    n, size = 40000, 112
    p = VideoAugment(VideoAugConfig(crop_size=size)).sample_params(n, 64, 64, torch.Generator().manual_seed(0))
    y1, y2, x1, x2 = p["cutbox"].unbind(1)
    cy, cx = (y1 + y2) / 2, (x1 + x2) / 2                          # = the drawn centre when unclipped
    inner = (cy >= 10) & (cy <= size - 10) & (cx >= 10) & (cx <= size - 10)   # never clipped, any L
    side = (y2 - y1)[inner]
    assert torch.equal(side, (x2 - x1)[inner])
    freq = torch.bincount(side, minlength=21).double() / len(side)
    expect = torch.zeros(21, dtype=torch.float64)
    expect[0] = expect[20] = 1 / 20
    expect[2:20:2] = 2 / 20
    assert side.max() == 20 and (side % 2 == 0).all()
    torch.testing.assert_close(freq, expect, rtol=0, atol=0.006)     # ~3.5 sigma at n ~ 30000
    small = VideoAugment(VideoAugConfig(crop_size=size, cutout_max=8)).sample_params(
        4000, 64, 64, torch.Generator().manual_seed(1))["cutbox"]
    assert int((small[:, 1] - small[:, 0]).max()) == 8


def test_normalisation_uses_imagenet_stats():
    x = torch.full((1, 1, 8, 8, 3), 255, dtype=torch.uint8)
    cfg = dataclasses.replace(PLAIN, crop_size=8, mean=VideoAugConfig.mean, std=VideoAugConfig.std)
    y = VideoAugment(cfg)(x)
    exp = (1 - torch.tensor(VideoAugConfig.mean)) / torch.tensor(VideoAugConfig.std)
    torch.testing.assert_close(y[0, :, 0, 3, 3], exp)


def test_reproducible_with_seeded_generator():
    x = _clip(B=4)
    aug = VideoAugment(VideoAugConfig(crop_size=24))
    a = aug(x, generator=torch.Generator().manual_seed(11))
    b = aug(x, generator=torch.Generator().manual_seed(11))
    c = aug(x, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a, b) and (a - c).abs().max() > 0.1


def test_eval_transform_centre_crops():
    x = _clip(B=2, T=2, H=128, W=170)                            # short side already 112/0.875
    y = EvalVideoTransform(112)(x)
    assert y.shape == (2, 3, 2, 112, 112)
    mean = torch.tensor(VideoAugConfig.mean).view(1, 3, 1, 1, 1)
    std = torch.tensor(VideoAugConfig.std).view(1, 3, 1, 1, 1)
    ref = (x[:, :, 8:120, 29:141].permute(0, 4, 1, 2, 3).float() / 255 - mean) / std
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-5)
    # a portrait frame is resized so its short side is 128, then centre-cropped; extra lead dims
    z = EvalVideoTransform(112)(_clip(B=2, T=2, H=200, W=150).view(1, 2, 2, 200, 150, 3))
    assert z.shape == (1, 2, 3, 2, 112, 112)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = _clip(B=4, T=4, H=64, W=80)
    aug = VideoAugment(VideoAugConfig(crop_size=48, blur_p=1.0))
    a = aug(x, generator=torch.Generator().manual_seed(0))
    b = aug(x.cuda(), generator=torch.Generator().manual_seed(0))
    assert b.device.type == "cuda"
    torch.testing.assert_close(b.cpu(), a, rtol=0, atol=2e-3)
