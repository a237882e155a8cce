"""evaluate/features.py + media.py: pooling, windows, extraction, cache, encoder loading."""

import numpy as np
import pytest
import torch

from crisscross_core.evaluate import features as fx
from crisscross_core.evaluate.media import has_split, load_items

from shared_paths import SHARED
ESC10 = SHARED / "esc10" / "esc10.csv"
needs_esc = pytest.mark.skipif(not ESC10.is_file(), reason="../shared/data/esc10 absent")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def test_svm_pool_dims_match_spec():
    # docs/method.md §9: 2 s → conv5x 512×3×7 → 4608-d; 5 s → 512×3×16 → 10752-d; DCASE 1 s 512×3×4 → 1536
    for t, d in ((7, 4608), (16, 10752), (4, 1536)):
        assert fx.svm_pool(torch.randn(2, 512, 3, t)).shape == (2, d)


def test_svm_pool_normalisation_default_vs_legacy():
    x = torch.randn(3, 8, 3, 7)
    new = fx.svm_pool(x)
    assert torch.allclose(new.norm(dim=1), torch.ones(3), atol=1e-5)
    legacy = fx.svm_pool(x, legacy_norm=True).view(3, 8, 3, 3)      # unit norm along the last (time) axis
    assert torch.allclose(legacy.norm(dim=-1), torch.ones(3, 8, 3), atol=1e-5)
    assert not torch.allclose(new, legacy.flatten(1))


def test_dense_windows_cover_the_whole_recording():
    spec = torch.arange(501.0).view(1, 1, 501).expand(1, 80, 501)     # 5 s, time index as value
    w = fx.dense_spec_windows(spec, 10, 201)
    assert w.shape == (10, 1, 80, 201)
    assert w[0, 0, 0, 0] == 0 and w[-1, 0, 0, -1] == 500              # first and last frame reached
    starts = w[:, 0, 0, 0].numpy()
    assert np.all(np.diff(starts) > 0)
    assert fx.dense_spec_windows(spec, 1, 501).shape == (1, 1, 80, 501)
    assert fx.dense_spec_windows(spec[..., :100], 3, 201).shape == (3, 1, 80, 201)   # short → zero pad


def test_legacy_test_crop_reproduces_the_release_bug():
    spec = torch.arange(501.0).view(1, 1, 501).expand(1, 80, 501)
    w = fx.legacy_spec_windows(spec, 10, 201)
    assert w.shape == (10, 1, 80, 200)
    assert w[:, 0, 0, 0].tolist() == [0.0] * 9 + [1.0]                # offsets [0,…,0,1] (docs/evaluation.md, "Differences from the release": --legacy-test-crop)
    assert w.max() <= 200                                             # nothing after the first 2 s


def test_logmel_stats_shape():
    x = torch.randn(4, 1, 80, 201)
    f = fx.LogMelStats()(x)
    assert f.shape == (4, 160)
    assert torch.allclose(f[:, :80], x[:, 0].mean(-1))


def test_has_split_tags_and_folds():
    assert has_split("train1 test2", "test2") and not has_split("train1 test2", "test1")
    assert has_split("", "test-3", fold="3") and not has_split("", "train-3", fold="3")
    assert has_split("anything", "")


def test_infer_arch_from_state_dicts():
    from crisscross_core.models.audio import AudioResNet
    from crisscross_core.models.video import R2Plus1D
    assert fx.infer_arch(AudioResNet(width=0.25).state_dict(), "audio") == (18, 0.25)
    assert fx.infer_arch(R2Plus1D(depth=10, width=0.25).state_dict(), "video") == (10, 0.25)
    assert fx.infer_arch(R2Plus1D(depth=18, width=0.5).state_dict(), "video") == (18, 0.5)


def test_load_encoder_from_released_file_and_run_dir(tmp_path):
    from crisscross_core.checkpoint import export_backbone
    from crisscross_core.models.audio import AudioResNet
    from crisscross_core.models.video import R2Plus1D
    torch.manual_seed(0)
    aud, vid = AudioResNet(width=0.25).eval(), R2Plus1D(depth=10, width=0.25).eval()
    run = tmp_path / "run"
    export_backbone(aud, run / "aud_crisscross_tiny.pth.tar")
    export_backbone(vid, run / "vid_crisscross_tiny.pth.tar")
    a = torch.randn(2, 1, 80, 101)
    v = torch.randn(1, 3, 4, 32, 32)
    enc, info = fx.load_encoder(run / "aud_crisscross_tiny.pth.tar", "audio")
    assert info["width"] == 0.25 and len(info["sha256"]) == 64
    assert torch.allclose(enc(a), aud(a), atol=1e-6)
    venc, vinfo = fx.load_encoder(run, "video")                     # run directory → vid_ export
    assert vinfo["weights"].endswith("vid_crisscross_tiny.pth.tar") and vinfo["depth"] == 10
    assert torch.allclose(venc(v), vid(v), atol=1e-6)
    with pytest.raises(FileNotFoundError):
        fx.load_encoder(tmp_path / "empty_dir_missing", "audio")


@needs_esc
def test_extract_dense_and_crops_carry_ids_and_cache(tmp_path):
    items, names = load_items(ESC10)
    items = items[:4]
    f = fx.extract_features(fx.LogMelStats(), items, "audio", windows=10, pad_to=5.0, progress=False,
                            cache_dir=tmp_path)
    assert f.x.shape == (40, 160)
    assert f.rid.tolist() == [it.rid for it in items for _ in range(10)]
    assert f.label.tolist() == [it.label for it in items for _ in range(10)]
    assert len(list(tmp_path.glob("feats_*.npz"))) == 1
    again = fx.extract_features(fx.LogMelStats(), items, "audio", windows=10, pad_to=5.0, progress=False,
                                cache_dir=tmp_path)
    np.testing.assert_array_equal(again.x, f.x)
    fx.extract_features(fx.LogMelStats(), items, "audio", windows=5, pad_to=5.0, progress=False,
                        cache_dir=tmp_path)
    assert len(list(tmp_path.glob("feats_*.npz"))) == 2             # other settings → other key
    aug = fx.audio_train_transform(fx.AudioSettings())
    c1 = fx.extract_features(fx.LogMelStats(), items, "audio", crops=3, augment=aug, pad_to=5.0,
                             progress=False, seed=1)
    c2 = fx.extract_features(fx.LogMelStats(), items, "audio", crops=3, augment=aug, pad_to=5.0,
                             progress=False, seed=1)
    assert c1.x.shape == (12, 160) and c1.window.tolist() == [0, 1, 2] * 4
    np.testing.assert_allclose(c1.x, c2.x, atol=1e-5)                 # seeded: reproducible
    assert not np.allclose(c1.x[0], c1.x[1])                          # crops differ
    per = f.per_item()
    assert per.x.shape == (4, 160) and per.rid.tolist() == [it.rid for it in items]


def test_random_encoder_is_one_seeded_network():
    """'random' is the same network for every call with the same seed, whatever the global RNG state."""
    torch.manual_seed(1)
    a, ia = fx.load_encoder("random", "audio", width=0.25, seed=5)
    torch.rand(100)                                                   # move the global RNG on
    b, _ = fx.load_encoder("random", "audio", width=0.25, seed=5)
    c, _ = fx.load_encoder("random", "audio", width=0.25, seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert ia["random"] is True and ia["seed"] == 5 and ia["weights"] is None


@needs_esc
def test_cache_key_separates_architectures_weights_and_pooling(tmp_path):
    """Two networks never share a cache entry, even under the same tag and settings (ESC-10 recordings)."""
    from crisscross_core.models.audio import AudioResNet
    items = load_items(ESC10)[0][:2]
    kw = dict(windows=2, audio=fx.AudioSettings(clip_duration=1.0), progress=False, cache_dir=tmp_path,
              cache_tag={"weights": "random"})
    torch.manual_seed(0)
    narrow, wide = AudioResNet(width=0.25).eval(), AudioResNet(width=0.5).eval()
    f1 = fx.extract_features(fx.AudioFeatures(narrow, "pool"), items, "audio", **kw)
    f2 = fx.extract_features(fx.AudioFeatures(wide, "pool"), items, "audio", **kw)
    assert f1.x.shape == (4, 128) and f2.x.shape == (4, 256)          # not the width-0.25 entry again
    other = AudioResNet(width=0.25).eval()                             # same architecture, other weights
    f3 = fx.extract_features(fx.AudioFeatures(other, "pool"), items, "audio", **kw)
    assert not np.allclose(f1.x, f3.x)
    f4 = fx.extract_features(fx.AudioFeatures(narrow, "conv5x"), items, "audio", **kw)   # other pooling
    assert f4.x.shape[1] != 128
    assert len(list(tmp_path.glob("feats_*.npz"))) == 4
    again = fx.extract_features(fx.AudioFeatures(narrow, "pool"), items, "audio", **kw)
    np.testing.assert_array_equal(again.x, f1.x)                      # a true hit still hits
    assert len(list(tmp_path.glob("feats_*.npz"))) == 4


def test_undecodable_files_are_skipped_and_counted_or_fail(tmp_path):
    from crisscross_core.data.decode import DecodeError
    from crisscross_core.evaluate.media import Item
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    _write_wav(good)
    bad.write_bytes(b"RIFF" + b"\x00" * 50)
    items = [Item(str(good), 0, "a", "", "", 1.0, 0), Item(str(bad), 1, "b", "", "", 1.0, 1)]
    f = fx.extract_features(fx.LogMelStats(), items, "audio", windows=2, progress=False)
    assert f.rid.tolist() == [0, 0]
    assert [d["rid"] for d in f.meta["failed"]] == [1] and f.meta["failed"][0]["path"] == str(bad)
    assert f.meta["failed"][0]["reason"]
    with pytest.raises(DecodeError, match="bad.wav"):
        fx.extract_features(fx.LogMelStats(), items, "audio", windows=2, progress=False, on_error="fail")


def _write_wav(path, seconds=1.0, rate=16000):
    import wave
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(x.tobytes())
