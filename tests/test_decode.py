"""Decoding: frame selection, audio length/alignment, policies, broken files, shared media, prepare."""
import csv
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from crisscross_core.data.decode import (DecodeError, NoAudioError, ShortClipError, decode_windows,
                                         probe, resize_dims)
from crisscross_core.data.prepare import transcode, write_media

from shared_paths import SHARED
CLIPS, ESC10 = SHARED / "clips", SHARED / "esc10"
need_clips = pytest.mark.skipif(not (CLIPS / "manifest.csv").exists(), reason="shared clips absent")
need_esc = pytest.mark.skipif(not (ESC10 / "esc10.csv").exists(), reason="shared esc10 absent")


def coded_video(n=30, h=32, w=48):
    """Frame k is flat grey 8*k, so the decoded mean / 8 gives the source frame index."""
    return np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None] * 8, h * w * 3).reshape(n, h, w, 3)


def ramp_audio(seconds=3.0, rate=16000):
    """Stereo: left = 0.4 * t / seconds * 2, right = 0, so the mono mean is 0.4 * t / seconds."""
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([0.8 * t / seconds, 0 * t]).astype(np.float32)


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    d = tmp_path_factory.mktemp("coded")
    return {
        "mp4": write_media(d / "a.mp4", coded_video(), 10, ramp_audio(), 16000, gop=5),
        "avi": write_media(d / "b.avi", coded_video(), 10, ramp_audio(), 16000, gop=5,
                           vcodec="mpeg4", acodec="pcm_s16le"),
        "mute": write_media(d / "mute.mp4", coded_video(), 10, None, gop=5),
        "wav": write_media(d / "c.wav", None, audio=ramp_audio(rate=44100), rate=44100, acodec="pcm_s16le"),
    }


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_frames_are_nearest_earlier_source_frames(coded, kind):
    """docs/method.md §6.1: t_k = start + k/16 -> source frame floor(t_k * src_fps) (10 fps source)."""
    frames, _ = decode_windows(coded[kind], [(0.3, 1.0), (1.05, 0.5)], [], fps=16)
    for (start, dur), f in zip([(0.3, 1.0), (1.05, 0.5)], frames):
        assert f.dtype == np.uint8 and f.shape == (int(dur * 16), 32, 48, 3)
        expect = np.floor((start + np.arange(len(f)) / 16) * 10 + 1e-9)
        got = f.reshape(len(f), -1).mean(1) / 8
        assert np.abs(got - expect).max() < 0.3, (got, expect)


def test_short_clip_policies_video(coded):
    frames, _ = decode_windows(coded["mp4"], [(2.6, 1.0)], [], fps=16, short_clip="pad")
    idx = np.round(frames[0].reshape(16, -1).mean(1) / 8)
    assert idx[0] == 26 and (idx[-6:] == 29).all()          # last frame repeated past the end
    with pytest.raises(ShortClipError, match="a.mp4"):
        decode_windows(coded["mp4"], [(2.6, 1.0)], [], fps=16, short_clip="skip")


def test_audio_exact_length_alignment_and_downmix(coded):
    for kind in ("avi", "mp4", "wav"):                      # pcm 16k, aac 16k, pcm 44.1k resampled
        _, waves = decode_windows(coded[kind], [], [(1.0, 1.0), (0.5, 0.75)], audio_rate=16000)
        assert [w.shape for w in waves] == [(16000,), (12000,)] and waves[0].dtype == np.float32
        t = 1.0 + np.arange(16000) / 16000
        tol = 0.003 if kind != "mp4" else 0.01              # AAC is lossy and has priming
        assert np.abs(waves[0][100:-100] - 0.4 * t[100:-100] / 3).max() < tol, kind
    _, (w,) = decode_windows(coded["avi"], [], [(2.5, 1.0)], short_clip="pad")
    assert w.shape == (16000,) and np.all(w[8500:] == 0) and w[7000] > 0.3
    with pytest.raises(ShortClipError):
        decode_windows(coded["avi"], [], [(2.5, 1.0)], short_clip="skip")


def test_no_audio_policies(coded):
    with pytest.raises(NoAudioError, match="mute.mp4"):
        decode_windows(coded["mute"], [(0, 0.5)], [(0, 2.0)], no_audio="skip")
    f, (w,) = decode_windows(coded["mute"], [(0, 0.5)], [(0, 2.0)], no_audio="silence")
    assert f[0].shape[0] == 8 and w.shape == (32000,) and not w.any()


def test_resize_and_crop_shapes(coded):
    (f,), _ = decode_windows(coded["mp4"], [(0, 0.5)], [], short_side=16, size=(16, 20))
    assert f.shape == (8, 16, 20, 3)
    assert resize_dims(240, 320, 128, (128, 170)) == (128, 171)
    assert resize_dims(240, 560, 128, (128, 170)) == (128, 299)
    assert resize_dims(360, 270, 128, (128, 170)) == (227, 170)   # grown to cover the crop


def test_broken_files(tmp_path, coded):
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    data = Path(coded["mp4"]).read_bytes()
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(data[: len(data) // 3])
    for bad in (zero, text, trunc):
        with pytest.raises(DecodeError, match=bad.name):
            probe(bad)
            decode_windows(bad, [(0.0, 1.0), (2.0, 0.5)], [(0.0, 2.0)], short_clip="skip")
    wrong_ext = tmp_path / "video.wav"                        # content decides, not the name
    shutil.copy(coded["mp4"], wrong_ext)
    assert probe(wrong_ext).has_video
    (f,), (w,) = decode_windows(wrong_ext, [(0.0, 0.5)], [(0.0, 1.0)])
    assert f.shape[0] == 8 and w.shape == (16000,)


@need_clips
def test_probe_shared_clips_match_manifest():
    rows = list(csv.DictReader(open(CLIPS / "manifest.csv")))
    assert len(rows) == 21
    for r in rows:
        i = probe(CLIPS / r["filename"])
        assert i.has_video and i.has_audio == (r["has_audio"] == "True"), r["filename"]
        assert abs(i.duration - float(r["duration_s"])) < 0.1, (r["filename"], i.duration)
        assert (i.width, i.height) == (int(r["width"]), int(r["height"]))
        assert abs(i.fps - float(r["fps"])) < 0.05
        if i.has_audio:
            assert i.audio_rate == int(float(r["audio_sample_rate"]))
            assert i.audio_channels == int(float(r["audio_channels"]))


@need_clips
def test_decode_every_shared_clip():
    rows = list(csv.DictReader(open(CLIPS / "manifest.csv")))
    for r in rows:
        path, dur = CLIPS / r["filename"], float(r["duration_s"])
        has_audio = r["has_audio"] == "True"
        s = max(0.0, dur / 2 - 1.0)
        frames, waves = decode_windows(path, [(s, 0.5), (s + 0.25, 0.5)],
                                       [(s, 2.0), (s + 1.0, 2.0)] if has_audio else [],
                                       fps=16, short_side=64, size=(64, 80))
        assert [f.shape for f in frames] == [(8, 64, 80, 3)] * 2, r["filename"]
        assert frames[0].std() > 1                              # real content, not a blank frame
        # overlapping windows share frames: v2 frames 0..3 are v1 frames 4..7
        assert np.array_equal(frames[0][4:], frames[1][:4]), r["filename"]
        if has_audio:
            assert [w.shape for w in waves] == [(32000,)] * 2
            assert np.abs(waves[0]).max() <= 1.0 and np.abs(waves[0]).mean() > 1e-5, r["filename"]
            np.testing.assert_allclose(waves[0][16000:], waves[1][:16000], atol=2e-3)


@need_esc
def test_esc10_probe_all_and_decode_sample():
    rows = list(csv.DictReader(open(ESC10 / "esc10.csv")))
    assert len(rows) == 400
    files = [ESC10 / "audio" / (Path(r["filename"]).stem + ".flac") for r in rows]
    for f in files:
        i = probe(f)
        assert not i.has_video and i.audio_rate == 16000 and i.audio_channels == 1
        assert abs(i.audio_duration - 5.0) < 1e-3, f
    for f in files[::20]:
        _, (w,) = decode_windows(f, [], [(0.0, 5.0)])
        with av.open(str(f)) as c:                              # lossless 16 kHz: exact samples
            ref = np.concatenate([fr.to_ndarray().reshape(-1) for fr in c.decode(audio=0)])
        assert w.shape == (80000,)
        np.testing.assert_allclose(w, ref[:80000] / 32768.0, atol=1e-6)


def test_transcode_caps_size_and_shortens_gop(tmp_path):
    rng = np.random.default_rng(0)
    big = write_media(tmp_path / "big.mp4", rng.integers(0, 255, (40, 120, 160, 3), dtype=np.uint8),
                      20, ramp_audio(2.0, 22050), 22050, gop=250)
    out = transcode(big, tmp_path / "out" / "big.mp4", short_side=64, gop=8)
    i = probe(out)
    assert (i.height, i.width) == (64, 86) and i.fps == 20 and i.num_frames == 40
    assert i.has_audio and i.audio_rate == 22050 and abs(i.audio_duration - 2.0) < 0.1
    with av.open(str(out)) as c:
        keys = [p.pts for p in c.demux(video=0) if p.is_keyframe and p.size]
    assert len(keys) == 5                                        # a keyframe every 8 of 40 frames
    with pytest.raises(DecodeError, match="nothing.mp4"):
        transcode(tmp_path / "nothing.mp4", tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()
