"""`crisscross evaluate` on the user's data as it is: one random network, unlabelled / split-less manifests,
label columns, rows left out and named, bad files skipped, per-protocol options, baselines, errors."""
import csv
import shutil

import pytest
import torch

from crisscross_core.cli import main as cli
from crisscross_core.evaluate.results import load_results

from shared_paths import SHARED
CLIPS = SHARED / "clips"
ESC10 = SHARED / "esc10"
needs_clips = pytest.mark.skipif(not (CLIPS / "manifest.csv").is_file(), reason="../shared/data/clips absent")
needs_esc = pytest.mark.skipif(not (ESC10 / "esc10.csv").is_file(), reason="../shared/data/esc10 absent")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def esc_two_folds(tmp_path_factory):
    """ESC-10 folds 1 and 2 (160 recordings, all 10 classes) as a plain CSV."""
    if not (ESC10 / "esc10.csv").is_file():
        pytest.skip("../shared/data/esc10 absent")
    rows = [r for r in csv.DictReader(open(ESC10 / "esc10.csv")) if r["fold"] in ("1", "2")]
    p = tmp_path_factory.mktemp("esc") / "esc10_two_folds.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return p


def _one_line_error(capsys, argv, *needles):
    capsys.readouterr()
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


@needs_esc
def test_random_weights_are_one_network_for_train_and_test(esc_two_folds, tmp_path):
    """`--weights random`: the train and the test features come from the same seeded network, so the
    CLI's kNN accuracy equals the one computed by hand with one network — far above chance (10 %)."""
    from crisscross_core.evaluate.features import AudioFeatures, AudioSettings, extract_features, load_encoder
    from crisscross_core.evaluate.media import load_items
    from crisscross_core.evaluate.probe import knn_probe
    common = ["--data", str(esc_two_folds), "--root", str(ESC10), "--out", str(tmp_path), "--no-progress",
              "--train-split", "train-1", "--test-split", "test-1", "--windows", "1", "--clip-duration", "1",
              "--width", "0.25", "--seed", "3", "--device", "cpu"]
    assert cli(["evaluate", "knn", "--modality", "audio", "--weights", "random", "--k", "5"] + common) == 0
    rec = load_results(tmp_path)[-1]
    enc, _ = load_encoder("random", "audio", width=0.25, seed=3)
    kw = dict(windows=1, audio=AudioSettings(clip_duration=1.0), batch_size=32, seed=3, progress=False)
    tr, names = load_items(esc_two_folds, ESC10, split="train-1")
    te, _ = load_items(esc_two_folds, ESC10, split="test-1", classes=names)
    feat = AudioFeatures(enc, "pool")
    ref = knn_probe(extract_features(feat, tr, "audio", **kw), extract_features(feat, te, "audio", **kw), k=5)
    assert rec["mean"] == pytest.approx(ref["top1"]) and rec["mean"] > 0.3
    assert rec["config"]["encoder"]["seed"] == 3 and rec["config"]["encoder"]["random"] is True
    assert rec["run"]["seed"] == 3


@needs_esc
def test_logmel_baseline_runs_in_every_audio_protocol_and_dataset_is_recorded(esc_two_folds, tmp_path, capsys):
    common = ["--data", str(esc_two_folds), "--root", str(ESC10), "--out", str(tmp_path), "--no-progress",
              "--train-split", "train-1", "--test-split", "test-1", "--windows", "2", "--clip-duration", "1",
              "--baseline", "logmel-stats", "--dataset", "esc10-two-folds"]
    for argv in (["knn", "--modality", "audio"], ["linear-probe", "--modality", "audio"],
                 ["retrieval", "--mode", "audio"]):
        assert cli(["evaluate"] + argv + common) == 0
        rec = load_results(tmp_path)[-1]
        assert rec["config"]["encoder"]["baseline"] == "logmel-stats" and rec["dataset"] == "esc10-two-folds"
        assert rec["result"]["feature_dim"] == 160
    assert load_results(tmp_path)[-1]["mean"] > 0.3
    _one_line_error(capsys, ["evaluate", "knn", "--modality", "video"] + common, "audio baseline")
    _one_line_error(capsys, ["evaluate", "knn", "--modality", "audio"] + common[:-4],
                    "--weights is required", "random")


def test_each_protocol_help_lists_only_its_options(capsys):
    from crisscross_core.evaluate.cli import add_arguments
    import argparse

    def help_of(name):
        p = argparse.ArgumentParser(prog="crisscross evaluate")
        add_arguments(p)
        with pytest.raises(SystemExit):
            p.parse_args([name, "--help"])
        return capsys.readouterr().out
    svm, knn, cross = help_of("esc-svm"), help_of("knn"), help_of("retrieval")
    assert "--crops" in svm and "--solver" in svm and "--modality" not in svm and "--frames" not in svm
    assert "--k " in knn and "--baseline" in knn and "--crops" not in knn and "--solver" not in knn
    assert "--embeddings" in cross and "--leave-one-out" in cross and "--epochs" not in cross
    assert "--baseline" not in help_of("finetune")


def _folder_manifest(tmp_path):
    """A kit manifest of a folder without labels or splits: 3 clips with audio, one without audio, one
    audio-only file, and one clip that is corrupted after the manifest was built."""
    from crisscross_core.data.builders import folder
    from crisscross_core.data.manifest import build_manifest, write_manifest
    d = tmp_path / "mine"
    d.mkdir()
    for name in ("vas__dog__video_02677.mp4", "vas__baby__video_01951.mp4", "vas__cough__video_00331.mp4",
                 "ucf101__v_SoccerJuggling_g23_c01.avi", "vas__drum__video_02480.mp4"):
        shutil.copy(CLIPS / name, d / name)
    shutil.copy(sorted((ESC10 / "audio").glob("*.flac"))[0], d / "sound.flac")
    rows, _ = build_manifest(folder(d), d, workers=1, progress=False, use_threads=True)
    man = write_manifest(rows, tmp_path / "mine.csv", meta={"root": str(d)})
    data = (d / "vas__drum__video_02480.mp4").read_bytes()
    (d / "vas__drum__video_02480.mp4").write_bytes(data[:2000])      # broken after probing
    return man


@needs_clips
@needs_esc
def test_cross_modal_retrieval_on_an_unlabelled_splitless_folder(tmp_path, capsys):
    man = _folder_manifest(tmp_path)
    out = tmp_path / "res"
    argv = ["evaluate", "retrieval", "--mode", "cross", "--weights", "random", "--width", "0.25", "--depth", "10",
            "--data", str(man), "--out", str(out), "--frames", "4", "--crop-size", "32", "--windows", "2",
            "--clip-duration", "1", "--no-progress"]
    capsys.readouterr()
    assert cli(argv) == 0
    err = capsys.readouterr().err
    rec = load_results(out)[-1]
    r = rec["result"]
    assert r["audio_to_video"]["n_queries"] == 3 and r["video_to_audio"]["n_gallery"] == 3
    reasons = {d["path"]: d["reason"] for d in r["dropped"]}
    assert reasons["ucf101__v_SoccerJuggling_g23_c01.avi"].startswith("no audio")
    assert reasons["sound.flac"].startswith("no video")
    assert next(v for k, v in reasons.items() if k.endswith("vas__drum__video_02480.mp4")).startswith("undecodable")
    assert r["n_dropped"] == 3 and "left out 3 row(s)" in err                    # printed once
    assert rec["run"]["split"] == "all rows"
    _one_line_error(capsys, argv + ["--on-error", "fail"], "vas__drum__video_02480.mp4")


@needs_clips
def test_label_column_and_no_label_messages(tmp_path, capsys):
    man = tmp_path / "digits.csv"
    names = ["vas__dog__video_02677.mp4", "vas__baby__video_01951.mp4", "vas__cough__video_00331.mp4",
             "vas__drum__video_02480.mp4"]
    with open(man, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "digit", "split"])
        for i, n in enumerate(names):
            w.writerow([str(CLIPS / n), i % 2, "train" if i < 2 else "test"])
    common = ["evaluate", "knn", "--modality", "audio", "--baseline", "logmel-stats", "--data", str(man),
              "--out", str(tmp_path / "r"), "--windows", "1", "--clip-duration", "1", "--k", "1", "--no-progress"]
    _one_line_error(capsys, common, "no row has a label", "--label-column", "digit")
    _one_line_error(capsys, common + ["--label-column", "class_id"], "'class_id' is not a column")
    assert cli(common + ["--label-column", "digit"]) == 0
    rec = load_results(tmp_path / "r")[-1]
    assert rec["result"]["n_train"] == 2 and rec["result"]["n_test"] == 2


def test_esc_builder_without_meta_names_the_option(tmp_path):
    from crisscross_core.data.builders import LayoutError, esc50
    (tmp_path / "audio").mkdir()
    with pytest.raises(LayoutError, match="--meta"):
        esc50(tmp_path)


@needs_clips
def test_screening_finds_broken_video_files_before_training(tmp_path):
    from crisscross_core.data.decode import DecodeError
    from crisscross_core.evaluate.media import Item, screen_items
    good = tmp_path / "good.mp4"
    shutil.copy(CLIPS / "vas__dog__video_02677.mp4", good)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes((CLIPS / "vas__drum__video_02480.mp4").read_bytes()[:3000])
    items = [Item(str(good), 0, "a", "", "", 0.0, 0), Item(str(bad), 1, "b", "", "", 0.0, 1)]
    ok, failed = screen_items(items, "video")
    assert [it.rid for it in ok] == [0] and [f["rid"] for f in failed] == [1] and failed[0]["reason"]
    with pytest.raises(DecodeError, match="bad.mp4"):
        screen_items(items, "video", on_error="fail")
