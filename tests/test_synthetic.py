"""The embedded demo dataset writes real, decodable, deterministic, balanced clips."""
import hashlib
from collections import Counter

import numpy as np
import pytest

from crisscross_core.data import synthetic
from crisscross_core.data.decode import decode_windows, probe
from crisscross_core.data.manifest import read_manifest


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    manifest = synthetic.make_demo_dataset(out, n_train=8, n_test=4, seed=3, num_classes=4, duration=3.0,
                                           workers=2)
    return out, manifest


def test_manifest_lists_decodable_clips_with_labels_and_splits(demo):
    out, manifest = demo
    m = read_manifest(manifest)
    assert len(m.rows) == 12
    assert Counter(r.split for r in m.rows) == {"train": 8, "test": 4}
    names = (out / "classes.txt").read_text().split()
    assert names == synthetic.class_names(4)
    for r in m.rows:
        assert r.has_video and r.has_audio
        assert r.label == names[r.label_idx]
        assert (r.fps, r.width, r.height, r.audio_rate, r.audio_channels) == (16, 48, 48, 16000, 1)
        assert abs(r.duration - 3.0) < 0.1 and r.size_bytes > 0
    info = probe(out / m.rows[0].path)
    assert info.video_codec == "h264" and info.audio_codec == "aac" and info.num_frames == 48
    frames, waves = decode_windows(out / m.rows[0].path, [(1.0, 0.5)], [(0.5, 2.0)], fps=16)
    assert frames[0].shape == (8, 48, 48, 3) and frames[0].std() > 5
    assert waves[0].shape == (32000,) and np.abs(waves[0]).max() > 0.05


def test_classes_are_balanced_per_split(demo):
    _, manifest = demo
    rows = read_manifest(manifest).rows
    for split in ("train", "test"):
        counts = Counter(r.label_idx for r in rows if r.split == split)
        assert set(counts) <= set(range(4)) and max(counts.values()) - min(counts.values()) <= 1


def test_deterministic_for_a_seed_and_reused(demo, tmp_path):
    out, manifest = demo
    again = synthetic.make_demo_dataset(tmp_path, n_train=8, n_test=4, seed=3, num_classes=4, duration=3.0,
                                        workers=1)
    for r in read_manifest(manifest).rows[:3]:
        assert _digest(out / r.path) == _digest(tmp_path / r.path)
    before = (tmp_path / "manifest.csv").stat().st_mtime_ns
    synthetic.make_demo_dataset(tmp_path, n_train=8, n_test=4, seed=3, num_classes=4, duration=3.0)
    assert (tmp_path / "manifest.csv").stat().st_mtime_ns == before       # same parameters: reused
    v0, a0 = synthetic.render_clip(1, 3, "train", 0, 4, 3.0)
    v1, a1 = synthetic.render_clip(1, 4, "train", 0, 4, 3.0)
    assert not np.array_equal(v0, v1) and not np.array_equal(a0, a1)     # another seed, other clips
    assert again == tmp_path / "manifest.csv"


def _peak_hz(x, rate=16000):
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)), 1 << 16))
    return np.fft.rfftfreq(1 << 16, 1 / rate)[np.argmax(mag)]


def test_class_is_a_relation_not_a_first_order_cue():
    """Single-object statistics do not identify the class (per-class means of the mean colour vary
    less than clips within a class), while the relation is exact in the rendered media."""
    k, n = 4, 24
    mean_rgb = {c: [] for c in range(k)}
    for i in range(n):
        c = i % k
        v = synthetic.render_video(c, np.random.default_rng(i), frames=4, num_classes=k).astype(np.float32)
        mean_rgb[c].append(v.mean((0, 1, 2)))
    spread = np.std([np.mean(mean_rgb[c], 0) for c in range(k)], 0).max()
    within = np.mean([np.std(mean_rgb[c], 0) for c in range(k)], 0).max()
    assert spread < within
    for c in range(k):
        # video: the ring's hue minus the core's hue is c/k of the circle (measured on pixels)
        v = synthetic.render_video(c, np.random.default_rng(50 + c), frames=1, num_classes=k).astype(float)[0]
        sat = v.max(-1) - v.min(-1)
        ys, xs = np.nonzero(sat > 60)                                # the bullseye's coloured pixels
        d = np.hypot(ys - ys.mean(), xs - xs.mean())
        hues = []
        for part in (d < 0.4 * d.max(), (d > 0.72 * d.max()) & (d < 0.9 * d.max())):   # core, ring
            r, g, b = v[ys[part], xs[part]].mean(0)
            hues.append(np.degrees(np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)) % 360)
        step = (hues[1] - hues[0]) % 360
        assert min(abs(step - 360 * c / k), 360 - abs(step - 360 * c / k)) < 12, (c, step)
        # audio: each pair's partner is 1 + 2c semitones above its root (measured on samples)
        rng = np.random.default_rng(100 + c)
        notes = synthetic.audio_notes(c, np.random.default_rng(100 + c), duration=1.0)
        a = synthetic.render_audio(c, rng, duration=1.0)
        f = [_peak_hz(a[int((s0 + 0.2 * d) * 16000):int((s0 + 0.8 * d) * 16000)]) for s0, d, *_ in notes[:2]]
        assert abs(12 * np.log2(f[1] / f[0]) - (1 + 2 * c)) < 0.5, (c, f)


def test_rejects_class_counts_the_audio_cannot_carry(tmp_path):
    with pytest.raises(ValueError, match="num_classes=13"):
        synthetic.make_demo_dataset(tmp_path, n_train=2, n_test=2, num_classes=13)
