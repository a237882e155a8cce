"""`crisscross embed` / evaluate.embed: a folder, a manifest or files → resumable embeddings on real media."""
import csv
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from crisscross_core.evaluate.embed import embed, load_embeddings

from shared_paths import SHARED
CLIPS = SHARED / "clips"
ESC10 = SHARED / "esc10"
needs_clips = pytest.mark.skipif(not (CLIPS / "manifest.csv").is_file(), reason="../shared/data/clips absent")
needs_esc = pytest.mark.skipif(not (ESC10 / "esc10.csv").is_file(), reason="../shared/data/esc10 absent")
TINY = dict(weights="random", config="tiny_cpu", progress=False)
NO_AUDIO = {"hmdb51__RATRACE_wave_f_nm_np1_fr_goo_37.avi",
            "hmdb51__SchoolRulesHowTheyHelpUs_wave_f_nm_np1_ba_med_0.avi",
            "hmdb51__TrumanShow_wave_f_nm_np1_fr_med_26.avi", "kinetics400__mmaction2_demo.mp4",
            "ucf101__v_SoccerJuggling_g23_c01.avi", "ucf101__v_SoccerJuggling_g24_c01.avi"}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clips_emb(tmp_path_factory):
    if not (CLIPS / "manifest.csv").is_file():
        pytest.skip("../shared/data/clips absent")
    torch.set_num_threads(1)
    return embed(CLIPS, out=tmp_path_factory.mktemp("emb") / "clips", windows=2, per_window=True, **TINY)


@needs_clips
def test_folder_per_window_output_contract(clips_emb):
    import pandas as pd
    out = clips_emb
    df = pd.read_csv(out / "rows.csv")                                  # opens in one line
    assert list(df.columns[:11]) == ["row", "path", "item", "rid", "label", "label_idx", "split", "fold",
                                     "window", "start_s", "duration_s"]
    assert len(df) == 2 * 21 and df["row"].tolist() == list(range(42)) and set(df["window"]) == {0, 1}
    # the video window (0.5 s) is centred in the audio window (2 s): same centre, offset 0.75 s
    np.testing.assert_allclose(df["video_start_s"] - df["audio_start_s"], 0.75, atol=1e-3)
    meta = json.loads((out / "embeddings.json").read_text())
    assert meta["complete"] and meta["weights"]["kind"] == "random" and meta["weights"]["seed"] == 0
    assert meta["settings"]["spaces"] == {"video": ["h", "z", "p"], "audio": ["h", "z", "p"]}
    assert meta["counts"]["video"] == {"done": 21, "failed": 0, "no_stream": 0, "pending": 0}
    assert {f["path"].split("/")[-1] for f in meta["no_stream"]} == NO_AUDIO       # counted and named
    for m in ("video", "audio"):
        for s, d in (("h", 128), ("z", 256), ("p", 256)):
            x = np.load(out / f"{m}_{s}.npy", mmap_mode="r")
            assert isinstance(x, np.memmap) and x.shape == (42, d) and x.dtype == np.float32
    a = np.load(out / "audio_h.npy")
    no_audio = df["path"].map(lambda p: p.split("/")[-1] in NO_AUDIO).to_numpy()
    assert np.isnan(a[no_audio]).all() and np.isfinite(a[~no_audio]).all()
    e = load_embeddings(out)
    f = e.features("audio", "z")
    assert f.x.shape == (30, 256) and set(f.rid.tolist()) == set(df["item"][~no_audio])
    assert f.meta["start_s"].shape == (30,) and f.window.tolist()[:2] == [0, 1]
    both = e.items(("video", "audio"))
    assert len(both) == 15 and len(e.items()) == 21 and both[0].rid == f.rid[0]
    assert len(e.features("video", "h").per_item().x) == 21


@needs_clips
def test_video_h_matches_the_protocols_feature_extractor(tmp_path):
    """One centred window: embed's video h equals evaluate.features.extract_features on the same network."""
    from crisscross_core.config import load_config, save_config, to_dict
    from crisscross_core.checkpoint import atomic_save
    from crisscross_core.evaluate.features import VideoFeatures, extract_features, settings_for
    from crisscross_core.evaluate.media import load_items
    from crisscross_core.models.crisscross import CrissCross
    cfg = load_config("tiny_cpu")
    torch.manual_seed(3)
    model = CrissCross.from_config(cfg.model).eval()
    run = tmp_path / "run"
    run.mkdir()
    save_config(cfg, run / "config.yaml")
    atomic_save({"model": model.state_dict(), "config": to_dict(cfg), "step": 7}, run / "checkpoint.pt")
    man = tmp_path / "four.csv"               # the same durations for both (from the manifest)
    with open(CLIPS / "manifest.csv", newline="") as f:
        src = list(csv.DictReader(f))[:4]
    with open(man, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label", "duration_s"])
        w.writerows([[str(CLIPS / r["filename"]), r["label"], r["duration_s"]] for r in src])
    items, _ = load_items(man)
    out = embed(man, run, tmp_path / "e", windows=1, modalities=["video"], progress=False)
    meta = json.loads((out / "embeddings.json").read_text())
    assert meta["weights"]["kind"] == "checkpoint" and meta["weights"]["step"] == 7
    assert len(meta["weights"]["sha256"]) == 64
    v, _ = settings_for(cfg)
    ref = extract_features(VideoFeatures(model.video_backbone), items, "video", windows=1, video=v, progress=False)
    e = load_embeddings(out)
    np.testing.assert_allclose(e.features("video", "h").x, ref.x, atol=1e-4)
    with torch.no_grad():
        z = model.video_projector(torch.from_numpy(ref.x))
    np.testing.assert_allclose(e.features("video", "z").x, z.numpy(), atol=1e-3)


def _bad_folder(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    shutil.copy(CLIPS / "vas__dog__video_02677.mp4", d / "good_dog.mp4")
    shutil.copy(CLIPS / "ucf101__v_SoccerJuggling_g23_c01.avi", d / "no_audio.avi")
    data = (CLIPS / "vas__drum__video_02480.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[:len(data) // 8])
    (d / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    if (ESC10 / "audio").is_dir():
        shutil.copy(sorted((ESC10 / "audio").glob("*.flac"))[0], d / "sound.flac")
    return d


@needs_clips
@needs_esc
def test_bad_files_are_skipped_counted_and_named_or_fail(tmp_path):
    from crisscross_core.data.decode import DecodeError
    src = _bad_folder(tmp_path)
    out = embed(src, out=tmp_path / "e", windows=1, **TINY)
    meta = json.loads((out / "embeddings.json").read_text())
    failed = {(f["path"].split("/")[-1], f["modality"]) for f in meta["failed"]}
    assert failed == {(n, m) for n in ("truncated.mp4", "garbage.mp4") for m in ("video", "audio")}
    assert all(f["reason"] for f in meta["failed"])
    assert meta["counts"]["video"] == {"done": 2, "failed": 2, "no_stream": 1, "pending": 0}
    assert meta["counts"]["audio"] == {"done": 2, "failed": 2, "no_stream": 1, "pending": 0}
    no_stream = {(f["path"].split("/")[-1], f["modality"]) for f in meta["no_stream"]}
    assert no_stream == {("no_audio.avi", "audio"), ("sound.flac", "video")}    # the other modality is kept
    assert meta["source"]["labels"] == "none"                       # flat folder: no labels invented
    with pytest.raises(DecodeError, match="garbage.mp4|truncated.mp4"):
        embed(src, out=tmp_path / "e2", windows=1, on_error="fail", **TINY)


@needs_clips
def test_labels_from_class_folders_and_from_a_named_csv_column(tmp_path):
    from crisscross_core.data.manifest import ManifestError
    from crisscross_core.evaluate.media import load_items
    d = tmp_path / "classes"
    for cls, name in (("dog", "vas__dog__video_02677.mp4"), ("baby", "vas__baby__video_01951.mp4"),
                      ("baby", "vas__cough__video_00331.mp4")):
        (d / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(CLIPS / name, d / cls / name)
    e = load_embeddings(embed(d, out=tmp_path / "e", windows=1, modalities=["audio"], **TINY))
    assert [(r["label"], r["label_idx"]) for r in e.rows] == [("baby", 0), ("baby", 0), ("dog", 1)]
    man = tmp_path / "digits.csv"
    with open(man, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "digit"])
        for name, digit in (("vas__dog__video_02677.mp4", 3), ("vas__baby__video_01951.mp4", 7)):
            w.writerow([str(CLIPS / name), digit])
    with pytest.raises(ManifestError, match="--label-column"):          # not a misleading split error
        load_items(man, split="train")
    items, names = load_items(man, label_column="digit")
    assert names == ["3", "7"] and [it.label_name for it in items] == ["3", "7"]
    e2 = load_embeddings(embed(man, out=tmp_path / "e2", windows=1, modalities=["audio"], label_column="digit",
                               **TINY))
    assert [r["label"] for r in e2.rows] == ["3", "7"]


@needs_esc
def test_resume_after_kill_skips_done_items_and_matches_an_uninterrupted_run(tmp_path):
    rows = list(csv.DictReader(open(ESC10 / "esc10.csv")))[:40]
    man = tmp_path / "esc_subset.csv"
    with open(man, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    kw = dict(windows=2, per_window=True, modalities=["audio"], batch_size=4, root=str(ESC10))
    out = tmp_path / "killed"
    # a real kill -9 in the middle: the worker process kills itself when it reaches item 25
    script = textwrap.dedent(f"""
        import os, signal, torch
        torch.set_num_threads(1)
        from crisscross_core.evaluate import embed as E
        get = E._Source.__getitem__
        def dying(self, j):
            if self.todo[j] == 25:
                os.kill(os.getpid(), signal.SIGKILL)
            return get(self, j)
        E._Source.__getitem__ = dying
        E.embed({str(man)!r}, "random", {str(out)!r}, config="tiny_cpu", progress=False, **{kw!r})
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == -9, r.stderr[-2000:]
    done = int((np.load(out / "status.npy") == 1).sum())
    assert 0 < done <= 25
    embed(man, out=out, **kw, **TINY)                                   # resume
    meta = json.loads((out / "embeddings.json").read_text())
    assert meta["complete"] and meta["runs"][-1]["items_to_do"] == 40 - done
    ref = embed(man, out=tmp_path / "whole", **kw, **TINY)
    for s in ("h", "z", "p"):
        np.testing.assert_allclose(np.load(out / f"audio_{s}.npy"), np.load(ref / f"audio_{s}.npy"), atol=1e-5)
    assert (out / "rows.csv").read_text() == (ref / "rows.csv").read_text()


@needs_clips
def test_rerun_with_other_settings_is_refused_and_heads_need_a_checkpoint(tmp_path):
    from crisscross_core.checkpoint import export_backbone
    from crisscross_core.config import ConfigError
    from crisscross_core.models.audio import AudioResNet
    files = [CLIPS / "vas__dog__video_02677.mp4"]
    out = embed(files, out=tmp_path / "e", windows=1, **TINY)
    with pytest.raises(ConfigError, match="other inputs, weights or settings"):
        embed(files, out=out, windows=3, **TINY)
    embed(files, out=out, windows=3, overwrite=True, **TINY)
    aud = export_backbone(AudioResNet(width=0.25), tmp_path / "aud_crisscross_x.pth.tar")
    e = load_embeddings(embed(files, aud, tmp_path / "b", windows=1, progress=False))
    assert e.spaces == {"audio": ["h"]} and e.meta["weights"]["kind"] == "backbone"
    with pytest.raises(ConfigError, match="no pretraining heads"):
        embed(files, aud, tmp_path / "c", spaces=["h", "z"], progress=False)
    with pytest.raises(ConfigError, match="no video backbone"):
        embed(files, aud, tmp_path / "d", modalities=["video"], progress=False)


@needs_clips
def test_cli_embed_then_retrieval_on_the_embeddings(clips_emb, tmp_path, capsys):
    from crisscross_core.cli import main
    from crisscross_core.evaluate.results import load_results
    assert main(["evaluate", "retrieval", "--mode", "cross", "--embeddings", str(clips_emb),
                 "--out", str(tmp_path), "--no-progress"]) == 0
    rec = load_results(tmp_path)[-1]
    r = rec["result"]
    assert r["audio_to_video"]["n_queries"] == 15 and r["spaces"] == {"query": "p", "gallery": "z"}
    assert rec["result"]["n_dropped"] == 6 and {d["path"].split("/")[-1] for d in r["dropped"]} == NO_AUDIO
    assert rec["run"]["embeddings"] == str(clips_emb) and rec["dataset"] == "clips"
    capsys.readouterr()
    assert main(["embed", str(CLIPS / "vas__dog__video_02677.mp4"), "--weights", "random", "--config", "tiny_cpu",
                 "--out", str(tmp_path / "one"), "--windows", "1", "--no-progress"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["items"] == 1 and line["complete"] is True
    assert main(["embed", str(tmp_path / "nothing_here"), "--weights", "random", "--out", str(tmp_path / "x")]) == 2
