"""data.frame_mode: "full" decodes the whole frame onto a fixed canvas and the random crop is drawn in
the source frame's geometry (the release crops the native frame); "centre_crop" is the fast mode
(short side + 4:3 centre crop) that tiny_cpu uses."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from crisscross_core.config import DataConfig, VideoAugConfig, load_config
from crisscross_core.data.datasets import PretrainDataset
from crisscross_core.data.decode import decode_windows
from crisscross_core.data.manifest import build_manifest, write_manifest
from crisscross_core.data.builders import folder
from crisscross_core.data.prepare import write_media
from crisscross_core.data.video_aug import VideoAugment, rrc_params

torch.set_num_threads(1)

GREY, RED, BLUE = (128, 128, 128), (230, 20, 20), (20, 20, 230)
SRC_H, SRC_W, BAND = 72, 128, 12             # a 16:9 source with 12 px coloured bands at both sides


def band_frames(n=32):
    f = np.empty((n, SRC_H, SRC_W, 3), np.uint8)
    f[:] = GREY
    f[:, :, :BAND] = RED
    f[:, :, -BAND:] = BLUE
    return f


@pytest.fixture(scope="module")
def band_tree(tmp_path_factory):
    d = tmp_path_factory.mktemp("bands")
    audio = (0.1 * np.sin(np.arange(16000 * 2) / 10))[None].astype(np.float32)
    write_media(d / "wide.mp4", band_frames(), 16, audio, 16000, gop=8)
    rows, _ = build_manifest(folder(d), d, workers=1, progress=False)
    write_manifest(rows, d / "m.csv")
    return d


def _reddish(a):
    a = a.astype(np.int32)
    return (a[..., 0] > 150) & (a[..., 1] < 90) & (a[..., 2] < 90)


def _blueish(a):
    a = a.astype(np.int32)
    return (a[..., 2] > 150) & (a[..., 0] < 90) & (a[..., 1] < 90)


def test_full_mode_decodes_the_whole_frame_and_reports_its_size(band_tree):
    info = {}
    (full,), _ = decode_windows(band_tree / "wide.mp4", [(0.5, 0.5)], [], short_side=36, size=(36, 48),
                                frame_mode="full", info=info)
    assert full.shape == (8, 36, 48, 3) and info["frame_hw"] == (SRC_H, SRC_W)
    assert _reddish(full[:, :, :3]).all() and _blueish(full[:, :, -3:]).all()   # both edges kept
    (crop,), _ = decode_windows(band_tree / "wide.mp4", [(0.5, 0.5)], [], short_side=36, size=(36, 48),
                                frame_mode="centre_crop")
    assert crop.shape == (8, 36, 48, 3)
    assert not _reddish(crop).any() and not _blueish(crop).any()               # a quarter of the width lost
    with pytest.raises(ValueError, match="frame_mode"):
        decode_windows(band_tree / "wide.mp4", [(0.5, 0.5)], [], size=(36, 48), frame_mode="letterbox")


def test_dataset_items_carry_the_frame_the_canvas_shows(band_tree):
    base = DataConfig(split="", decode_short_side=36, decode_size=(36, 48), clips_per_video=1)
    full = PretrainDataset(band_tree / "m.csv", replace(base, frame_mode="full"))[0]
    crop = PretrainDataset(band_tree / "m.csv", replace(base, frame_mode="centre_crop"))[0]
    assert full["video"].shape == crop["video"].shape == (2, 8, 36, 48, 3)
    assert full["frame_hw"].tolist() == [SRC_H, SRC_W]
    assert crop["frame_hw"].tolist() == [36, 48]


def test_boxes_are_drawn_in_the_source_frame_geometry():
    """On any canvas, frame_hw = (90, 160) gives exactly the boxes torchvision's RandomResizedCrop
    would draw on a 90x160 frame (area fraction and aspect ratio relative to the native frame)."""
    n = 3000
    hw = torch.tensor([[90, 160]]).expand(n, 2)
    p = VideoAugment(VideoAugConfig()).sample_params(n, 48, 48, torch.Generator().manual_seed(4), frame_hw=hw)
    ref = rrc_params(n, 90, 160, (0.08, 1.0), (0.75, 4 / 3), torch.Generator().manual_seed(4))
    assert torch.equal(p["boxes"], ref) and torch.equal(p["frame_hw"], hw)
    top, left, h, w = ref.unbind(1)
    assert (top + h <= 90).all() and (left + w <= 160).all()
    assert (left + w).max() == 160 and left.min() == 0                  # the full width is reachable
    # per-sample sizes: a batch mixing 4:3 and 16:9 frames draws each in its own geometry
    mixed = torch.tensor([[90, 160], [96, 128]]).repeat(500, 1)
    pm = VideoAugment(VideoAugConfig()).sample_params(1000, 48, 48, torch.Generator().manual_seed(1),
                                                      frame_hw=mixed)
    assert (pm["boxes"][1::2, 1] + pm["boxes"][1::2, 3] <= 128).all()
    assert (pm["boxes"][0::2, 1] + pm["boxes"][0::2, 3]).max() > 128


def _affine_image(h, w, coef, B=2, T=2):
    """float [B, T, h, w, 3]: channel c = a_c·x + b_c·y + c_c in source pixel units, x/y at the pixel
    centres of a frame `w` wide mapped onto a 160x90 source (bilinear sampling reproduces it exactly)."""
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) * 90 / h - 0.5
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) * 160 / w - 0.5
    img = torch.stack([a * xs[None, :] + b * ys[:, None] + c for a, b, c in coef], -1)
    return img.float().expand(B, T, h, w, 3).contiguous()


def test_crop_on_the_canvas_equals_the_crop_on_the_source():
    """A box drawn on the 90x160 source and applied to a 36x48 canvas of the whole frame samples the
    same picture as the box applied to the source itself (affine images, where resizing is exact)."""
    coef = [(0.004, 0.001, 0.1), (-0.002, 0.006, 0.6), (0.001, -0.003, 0.5)]
    src, canvas = _affine_image(90, 160, coef), _affine_image(36, 48, coef)
    plain = VideoAugConfig(crop_size=24, flip_p=0.5, jitter_p=0.0, gray_p=0.0, blur_p=0.0, cutout_p=0.0,
                           mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    aug = VideoAugment(plain)
    p = aug.sample_params(2, 90, 160, torch.Generator().manual_seed(0))
    p["boxes"] = torch.tensor([[10, 20, 60, 70], [5, 40, 40, 110]])       # inside, away from the edges
    p["flip"] = torch.tensor([False, True])
    on_source = aug.apply(src, p)
    on_canvas = aug.apply(canvas, {**p, "frame_hw": torch.tensor([[90, 160]] * 2)})
    torch.testing.assert_close(on_canvas, on_source, rtol=0, atol=1e-4)
    wrong = aug.apply(canvas, {**p, "frame_hw": torch.tensor([[36, 48]] * 2)})  # box read as canvas px
    assert (wrong - on_source).abs().max() > 0.05


def test_paper_presets_are_faithful_and_do_not_starve_the_crop():
    """paper_*: the whole frame on a 256x456 canvas; the narrowest 0.08-area crop of a 256p source
    (4:3, 16:9, 21:9) spans >= 72 canvas pixels. tiny_cpu keeps the fast centre crop (~36 px at 128)."""
    for name in ("paper_kinetics400", "paper_kinetics_sound", "paper_audioset"):
        d = load_config(name).data
        assert d.frame_mode == "full" and tuple(d.decode_size) == (256, 456)
    assert load_config("tiny_cpu").data.frame_mode == "centre_crop"
    aug = VideoAugment(VideoAugConfig())
    for src in ((256, 341), (256, 455), (256, 597)):
        hw = torch.tensor([src]).expand(4000, 2)
        b = aug.sample_params(4000, 256, 456, torch.Generator().manual_seed(0), frame_hw=hw)["boxes"].double()
        extent = torch.minimum(b[:, 2] * 256 / src[0], b[:, 3] * 456 / src[1])
        assert extent.min() >= 72, (src, extent.min())
    b = aug.sample_params(4000, 128, 170, torch.Generator().manual_seed(0))["boxes"]
    assert b[:, 2:].min() < 40                                            # the fast mode's smallest crops


def test_training_steps_with_full_frames(tmp_path, demo_manifest, monkeypatch):
    """train() hands each batch's frame sizes to the transform (48x48 demo clips on a 48x64 canvas)."""
    from crisscross_core.data.pipeline import TrainTransform
    from crisscross_core.train import train
    seen, forward = [], TrainTransform.forward

    def spy(self, video, audio, share=None, generator=None, frame_hw=None):
        seen.append(None if frame_hw is None else frame_hw.tolist())
        return forward(self, video, audio, share, generator=generator, frame_hw=frame_hw)
    monkeypatch.setattr(TrainTransform, "forward", spy)
    out = train("tiny_cpu", [f"data.manifest={demo_manifest}", f"train.run_dir={tmp_path / 'run'}",
                             "data.frame_mode=full", "data.decode_size=[48,64]", "optim.batch_size=8",
                             "optim.max_steps=2", "data.num_workers=0", "train.log_every=1",
                             "train.progress=false", "train.tensorboard=false", "train.export_at_end=false"])
    assert out["step"] == 2 and np.isfinite(out["last"]["loss"])
    assert seen == [[[48, 48]] * 8] * 2
