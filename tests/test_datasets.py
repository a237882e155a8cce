"""PretrainDataset: item contract, determinism, failure policy, fork workers, prepare."""
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from crisscross_core.config import DataConfig
from crisscross_core.data.datasets import DataError, PretrainDataset
from crisscross_core.data.manifest import build_manifest, read_manifest, write_manifest
from crisscross_core.data.builders import folder
from crisscross_core.data.prepare import prepare_dataset, write_media

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "data" / "clips"


def coded(n, fps=16):
    """Frame k is flat grey 4*k (k < 64)."""
    return np.repeat((np.arange(n) * 4).astype(np.uint8)[:, None, None, None], 24 * 32 * 3).reshape(n, 24, 32, 3)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    t = np.arange(16000 * 4) / 16000
    audio = (0.5 * t / 4)[None].astype(np.float32)            # ramp: value = time / 8
    write_media(d / "a" / "one.mp4", coded(64), 16, audio, 16000, gop=8)
    write_media(d / "a" / "two.avi", coded(64), 16, audio, 16000, gop=8, vcodec="mpeg4", acodec="pcm_s16le")
    write_media(d / "b" / "mute.mp4", coded(64), 16, None, gop=8)
    write_media(d / "b" / "short.mp4", coded(8), 16, audio[:, :8000], 16000, gop=8)
    rows, _ = build_manifest(folder(d), d, workers=1, progress=False)
    write_manifest(rows, d / "m.csv")
    return d


def cfg(**kw):
    base = DataConfig(split="", decode_short_side=24, decode_size=(24, 32), clips_per_video=2,
                      no_audio_policy="skip", short_clip_policy="skip", max_retries=3)
    return replace(base, **kw)


def test_item_contract_and_policy_filtering(tree):
    ds = PretrainDataset(tree / "m.csv", cfg())
    assert len(ds.rows) == 2 and ds.health()["filtered"] == {"no_video": 0, "no_audio": 1, "too_short": 1}
    assert len(ds) == 4
    it = ds[1]
    assert it["video"].dtype == torch.uint8 and it["video"].shape == (2, 8, 24, 32, 3)
    assert it["audio"].dtype == torch.float32 and it["audio"].shape == (2, 32000)
    assert it["times"].shape == (4, 2) and it["share"].dtype == torch.bool and it["share"].shape == (2,)
    assert it["index"].item() == 1 and it["label"].item() == 0 and it["n_failed"].item() == 0
    # content matches the reported window times (coded frames and ramp audio)
    (v1s, _), (a1s, _), (v2s, _), (a2s, _) = it["times"].tolist()
    for v, s in ((it["video"][0], v1s), (it["video"][1], v2s)):
        got = v.float().mean((1, 2, 3)).numpy() / 4
        np.testing.assert_allclose(got, np.floor((s + np.arange(8) / 16) * 16 + 1e-6), atol=0.3)
    for a, s in ((it["audio"][0], a1s), (it["audio"][1], a2s)):
        assert abs(a[1000].item() - (s + 1000 / 16000) / 8) < 0.01
    # overlapped: view 2 starts half a view later in each modality
    assert v2s - v1s == pytest.approx(0.25) and a2s - a1s == pytest.approx(1.0)
    assert torch.equal(it["video"][0][4:], it["video"][1][:4])
    ds2 = PretrainDataset(tree / "m.csv", cfg(no_audio_policy="silence", short_clip_policy="pad"))
    assert len(ds2.rows) == 4
    mute = [i for i, r in enumerate(ds2.rows) if "mute" in r.path][0]
    assert not ds2[mute]["audio"].any()


def test_determinism_per_seed_epoch_index(tree):
    a, b = PretrainDataset(tree / "m.csv", cfg()), PretrainDataset(tree / "m.csv", cfg())
    x, y = a[3], b[3]
    assert all(torch.equal(x[k], y[k]) for k in x)
    a.set_epoch(1)
    assert not torch.equal(a[3]["times"], x["times"])
    b.set_epoch(1)
    assert torch.equal(a[3]["video"], b[3]["video"])
    c = PretrainDataset(tree / "m.csv", cfg(), seed=5)
    assert not torch.equal(c[3]["times"], x["times"])


@pytest.mark.parametrize("relation,share", [("v_far_a_same", [False, True]), ("v_same_a_far", [True, False]),
                                            ("same_timestamp", [False, False])])
def test_shared_views_are_one_tensor(tree, relation, share):
    # 4 s files: far-apart offset max_ss = min(2 - 1, 2 - 0.25) = 1 s with 1 s audio / 0.25 s video
    it = PretrainDataset(tree / "m.csv", cfg(relation=relation, audio_duration=1.0, video_duration=0.25))[0]
    assert it["share"].tolist() == share
    t = it["times"]
    if relation == "same_timestamp":
        assert torch.equal(it["video"][0], it["video"][1]) and torch.equal(it["audio"][0], it["audio"][1])
        assert torch.equal(t[0], t[2]) and torch.equal(t[1], t[3])
    if share[0]:
        assert torch.equal(it["video"][0], it["video"][1]) and not torch.equal(it["audio"][0], it["audio"][1])
    if share[1]:
        assert torch.equal(it["audio"][0], it["audio"][1]) and not torch.equal(it["video"][0], it["video"][1])


def test_corrupt_files_bounded_retries(tree, tmp_path):
    m = read_manifest(tree / "m.csv")
    good = [r for r in m.rows if r.has_audio and r.video_duration > 2]
    bad = replace(good[0], path="a/corrupt.mp4")
    (tree / "a" / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
    ds = PretrainDataset([bad] + good, cfg(clips_per_video=1), root=tree)
    with pytest.warns(UserWarning, match="corrupt.mp4"):
        it = ds[0]
    assert it["n_failed"].item() >= 1 and it["index"].item() != 0     # index of the item decoded
    assert ds.health()["n_failed"] >= 1 and any("corrupt.mp4" in k for k in ds.health()["failed_files"])
    only_bad = PretrainDataset([bad, replace(bad, path="a/missing.mp4")], cfg(max_retries=2), root=tree)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="3 unreadable files") as e:
            only_bad[0]
    assert "corrupt.mp4" in str(e.value) or "missing.mp4" in str(e.value)


def test_fork_dataloader_workers(tree):
    ds = PretrainDataset(tree / "m.csv", cfg())
    ds[0]        # decode in the parent first: state inherited by forked workers must not hang them
    dl = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, multiprocessing_context="fork",
                                     timeout=60)
    batches = list(dl)
    assert len(batches) == 2 and batches[0]["video"].shape == (2, 2, 8, 24, 32, 3)
    assert torch.equal(batches[1]["times"][1], ds[3]["times"])    # same stream as in-process


def test_evaluation_windows_cover_the_file(tree):
    """The evaluation path (dense_starts + load_video_windows) decodes the windows it names."""
    from crisscross_core.evaluate.media import dense_starts, load_video_windows
    starts = dense_starts(4.0, 0.5, 4)
    np.testing.assert_allclose(starts, np.linspace(0, 3.5, 4), atol=1e-9)
    assert dense_starts(4.0, 2.0, 1) == [1.0] and dense_starts(0.3, 0.5, 3) == [0.0, 0.0, 0.0]
    clips = load_video_windows(str(tree / "a" / "one.mp4"), starts, 0.5, 16.0)
    assert clips.shape == (4, 8, 24, 32, 3)
    first = clips[:, 0].astype(np.float32).mean((1, 2, 3)) / 4                  # coded frame index
    np.testing.assert_allclose(first, np.floor(np.linspace(0, 3.5, 4) * 16 + 1e-6), atol=0.3)


@pytest.mark.skipif(not (CLIPS / "manifest.csv").exists(), reason="shared clips absent")
def test_pretrain_on_shared_clips_and_prepare(tmp_path):
    m = read_manifest(REPO / "data_manifests" / "shared_clips.csv")
    rows = [r for r in m.rows if r.width <= 340][:3] + [r for r in m.rows if not r.has_audio][:1]
    ds = PretrainDataset(rows, cfg(clips_per_video=1, short_clip_policy="pad", no_audio_policy="silence",
                                   decode_short_side=64, decode_size=(64, 80)), root=m.root)
    for i in range(len(ds)):
        it = ds[i]
        assert it["video"].shape == (2, 8, 64, 80, 3) and it["video"].float().std() > 1
    write_manifest(rows, tmp_path / "src.csv", meta={"root": str(m.root)})
    new, health = prepare_dataset(tmp_path / "src.csv", tmp_path / "out", short_side=128, gop=16,
                                  workers=1, progress=False)
    assert len(new) == 4 and health["unreadable"] == 0
    assert all(min(r.width, r.height) <= 128 and r.path.endswith(".mp4") for r in new)
    assert [r.has_audio for r in new] == [r.has_audio for r in sorted(rows, key=lambda r: r.path)]
    prepared = read_manifest(tmp_path / "out" / "manifest.csv")
    ds = PretrainDataset(prepared, cfg(clips_per_video=1, short_clip_policy="pad", no_audio_policy="silence"))
    assert ds[0]["video"].shape == (2, 8, 24, 32, 3)
