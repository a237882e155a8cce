"""Manifests (format, validation, parallel probe, health) and the dataset builders (docs/method.md §8)."""
import json
from pathlib import Path

import numpy as np
import pytest

from crisscross_core.data import builders
from crisscross_core.data.cli import main as cli_main
from crisscross_core.data.manifest import (COLUMNS, MAGIC, ManifestError, Row, build_manifest,
                                           read_manifest, select_split, write_manifest)
from crisscross_core.data.prepare import write_media

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CLIPS, ESC10 = SHARED / "clips", SHARED / "esc10"
need_shared = pytest.mark.skipif(not (CLIPS / "manifest.csv").exists() or not (ESC10 / "esc10.csv").exists(),
                                 reason="shared data absent")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Tiny real files: 3 s video+audio, video only, audio only, 0.5 s short clip."""
    d = tmp_path_factory.mktemp("media")
    v = np.random.default_rng(0).integers(0, 255, (30, 32, 32, 3), dtype=np.uint8)
    a = np.zeros((1, 48000), np.float32)
    return {"av": write_media(d / "av.mp4", v, 10, a, 16000), "v": write_media(d / "v.mp4", v, 10),
            "a": write_media(d / "a.wav", None, audio=a, acodec="pcm_s16le"),
            "short": write_media(d / "short.mp4", v[:5], 10, a[:, :8000], 16000)}


def place(root: Path, rel: str, src: Path) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.symlink_to(src)
    return p


def test_roundtrip_and_version_line(tmp_path, media):
    rows = [Row(path="av.mp4", label="x", label_idx=3, split="train1 test2", fold=0, duration=3.0,
                has_video=True, has_audio=True, fps=10.0, width=32, height=32)]
    place(tmp_path, "av.mp4", media["av"])
    p = write_manifest(rows, tmp_path / "m.csv", meta={"dataset": "t"})
    lines = p.read_text().splitlines()
    assert lines[0] == MAGIC and lines[1] == "# dataset: t" and lines[2].split(",") == COLUMNS
    m = read_manifest(p)
    assert m.rows == rows and m.meta == {"dataset": "t"} and m.root == tmp_path
    p.write_text("\n".join(lines[1:]))
    with pytest.raises(ManifestError, match="line 1"):
        read_manifest(p)
    p.write_text("# crisscross-manifest v9\n" + "\n".join(lines[1:]))
    with pytest.raises(ManifestError, match="version"):
        read_manifest(p)


def test_validation_reports_line_numbers(tmp_path, media):
    place(tmp_path, "ok.mp4", media["av"])
    p = tmp_path / "m.csv"
    p.write_text(f"{MAGIC}\n# root: .\npath,label,has_audio,duration\n"
                 "ok.mp4,a,1,3.0\n"           # line 4
                 "ok.mp4,a,maybe,3.0\n"       # line 5: bad bool
                 "gone.mp4,b,1,3.0\n"         # line 6: missing file
                 "ok.mp4,a,1\n"               # line 7: short row
                 "ok.mp4,a,1,three\n")        # line 8: bad float
    with pytest.raises(ManifestError) as e:
        read_manifest(p)
    msg = str(e.value)
    for n in (5, 6, 7, 8):
        assert f"line {n}:" in msg
    assert "line 4:" not in msg and "gone.mp4" in msg and "maybe" in msg
    with pytest.warns(UserWarning, match="line 6"):
        m = read_manifest(p, on_error="warn")
    assert [r.path for r in m.rows] == ["ok.mp4"] and len(m.problems) == 4
    p.write_text(f"{MAGIC}\npath,colour\nok.mp4,red\n")
    with pytest.raises(ManifestError, match="unknown columns \\['colour'\\]"):
        read_manifest(p)


def test_build_manifest_parallel_health(tmp_path, media):
    for k, src in media.items():
        place(tmp_path, f"cls/{k}{src.suffix}", src)
    (tmp_path / "cls" / "broken.mp4").write_bytes(b"\x00" * 100)
    entries = builders.folder(tmp_path)
    assert len(entries) == 5 and {e.label for e in entries} == {"cls"}
    rows, health = build_manifest(entries, tmp_path, workers=2, progress=False)
    assert len(rows) == 4
    assert health["unreadable"] == 1 and "broken.mp4" in health["unreadable_files"][0]["path"]
    assert health["no_audio"] == 1 and health["no_video"] == 1 and health["too_short"] == 1
    by = {Path(r.path).stem: r for r in rows}
    assert by["av"].has_audio and by["av"].has_video and abs(by["av"].duration - 3.0) < 0.05
    assert by["av"].fps == 10 and (by["av"].width, by["av"].height) == (32, 32)
    assert by["a"].audio_rate == 16000 and by["a"].audio_channels == 1 and by["a"].size_bytes > 0


def test_cli_manifest_build_and_check(tmp_path, media, capsys):
    for k in ("av", "v"):
        place(tmp_path / "data", f"c1/{k}.mp4", media[k])
    out = tmp_path / "m.csv"
    assert cli_main(["manifest", "build", "folder", str(tmp_path / "data"), "-o", str(out),
                     "--workers", "2", "--no-progress"]) == 0
    assert len(read_manifest(out).rows) == 2
    health = json.loads((tmp_path / "m.csv.health.json").read_text())
    assert health["readable"] == 2 and health["no_audio"] == 1
    assert cli_main(["manifest", "check", str(out)]) == 0
    (tmp_path / "data" / "c1" / "v.mp4").unlink()
    assert cli_main(["manifest", "check", str(out)]) == 1
    assert "file not found" in capsys.readouterr().err


def test_select_split_tags_and_folds():
    rows = [Row(path=f"{i}", split=s, fold=f) for i, (s, f) in
            enumerate([("train1 test2", 0), ("test1 train2", 0), ("", 1), ("", 2)])]
    assert [r.path for r in select_split(rows[:2], "train1")] == ["0"]
    assert [r.path for r in select_split(rows[:2], "train2")] == ["1"]
    assert [r.path for r in select_split(rows[2:], "test-1")] == ["2"]
    assert [r.path for r in select_split(rows[2:], "train-1")] == ["3"]
    assert len(select_split(rows, "")) == 4


def test_kinetics_folders_json_list_and_sound(tmp_path, media):
    for rel in ("train/playing_bagpipes/a_000001_000011.mp4", "train/abseiling/b_000002_000012.mp4",
                "train/tickling/c_000003_000013.mp4", "val/tickling/d_000004_000014.mp4"):
        place(tmp_path, rel, media["av"])
    e = builders.kinetics400(tmp_path, split="train")
    assert [(x.label, x.label_idx) for x in e] == [("abseiling", 0), ("playing_bagpipes", 1), ("tickling", 2)]
    assert e[0].path == "train/abseiling/b_000002_000012.mp4" and e[0].split == "train"
    lst = tmp_path / "train.txt"                      # the original release's JSON-in-.txt cache
    lst.write_text(json.dumps(["tickling/c_000003_000013.mp4", "abseiling/b_000002_000012.mp4"]))
    e = builders.kinetics400(tmp_path, split="train", list_file=lst)
    assert [(x.path, x.label_idx) for x in e] == [("train/tickling/c_000003_000013.mp4", 2),
                                                  ("train/abseiling/b_000002_000012.mp4", 0)]
    ks = builders.kinetics_sound(tmp_path, split="train")
    assert [(x.label, x.label_idx) for x in ks] == [("playing_bagpipes", 0), ("tickling", 1)]
    classes = builders.kinetics_sound_classes()
    assert len(classes) == 32 and len(set(classes)) == 32 and "tapping_pen" in classes


def test_audioset_segments(tmp_path, media):
    place(tmp_path, "videos/abcdefghijk_30.000.mp4", media["av"])
    place(tmp_path, "videos/-0_AbCdEfGh_10.000.mp4", media["av"])
    seg = tmp_path / "balanced_train_segments.csv"
    seg.write_text("# Segments csv created Sun Mar  5 10:54:31 2017\n"
                   "# num_ytids=3, num_segs=3\n# YTID, start_seconds, end_seconds, positive_labels\n"
                   'abcdefghijk, 30.000, 40.000, "/m/09x0r,/m/04rlf"\n'
                   '-0_AbCdEfGh, 10.000, 20.000, "/m/0jbk"\n'
                   'notdownload, 0.000, 10.000, "/m/0jbk"\n')
    e = builders.audioset(tmp_path, seg)
    assert [(x.path, x.label, x.split) for x in e] == [
        ("videos/abcdefghijk_30.000.mp4", "/m/09x0r,/m/04rlf", "balanced_train_segments"),
        ("videos/-0_AbCdEfGh_10.000.mp4", "/m/0jbk", "balanced_train_segments")]


def test_ucf101_hmdb51_splits(tmp_path, media):
    u = tmp_path / "ucf"
    for rel in ("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "UCF-101/YoYo/v_YoYo_g25_c01.avi"):
        place(u, rel, media["v"])
    (u / "ucfTrainTestlist").mkdir()
    (u / "ucfTrainTestlist" / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 YoYo\r\n")
    for k in (1, 2, 3):
        tr, te = ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "YoYo/v_YoYo_g25_c01.avi")[:: 1 if k != 2 else -1]
        (u / "ucfTrainTestlist" / f"trainlist0{k}.txt").write_text(f"{tr} {1 if 'Apply' in tr else 2}\n")
        (u / "ucfTrainTestlist" / f"testlist0{k}.txt").write_text(f"{te}\n")
    e = {x.label: x for x in builders.ucf101(u)}
    assert e["ApplyEyeMakeup"].label_idx == 0 and e["YoYo"].label_idx == 1
    assert e["ApplyEyeMakeup"].split.split() == ["train1", "test2", "train3"]
    assert e["YoYo"].path == "UCF-101/YoYo/v_YoYo_g25_c01.avi"
    h = tmp_path / "hmdb"
    for rel in ("HMDB-51/wave/w1.avi", "HMDB-51/wave/w2.avi", "HMDB-51/jump/j1.avi"):
        place(h, rel, media["v"])
    (h / "testTrainMulti_7030_splits").mkdir()
    for k in (1, 2, 3):
        (h / "testTrainMulti_7030_splits" / f"wave_test_split{k}.txt").write_text("w1.avi 1 \nw2.avi 2 \n")
        (h / "testTrainMulti_7030_splits" / f"jump_test_split{k}.txt").write_text(f"j1.avi {0 if k == 3 else 2} \n")
    e = {Path(x.path).name: x for x in builders.hmdb51(h)}
    assert e["w1.avi"].split == "train1 train2 train3" and e["w2.avi"].split == "test1 test2 test3"
    assert e["j1.avi"].split == "test1 test2"                       # tag 0 (unused) in split 3
    assert (e["j1.avi"].label_idx, e["w1.avi"].label_idx) == (0, 1)  # sorted class folders


def test_esc50_and_dcase_layouts(tmp_path, media):
    r = tmp_path / "esc50"
    (r / "meta").mkdir(parents=True)
    (r / "meta" / "esc50.csv").write_text("filename,fold,target,category,esc10,src_file,take\n"
                                          "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
                                          "5-9032-A-12.wav,5,12,crackling_fire,True,9032,A\n")
    place(r, "audio/1-100032-A-0.wav", media["a"])
    place(r, "audio/5-9032-A-12.wav", media["a"])
    e = builders.esc50(r)
    assert [(x.path, x.label, x.label_idx, x.fold) for x in e] == [
        ("audio/1-100032-A-0.wav", "dog", 0, 1), ("audio/5-9032-A-12.wav", "crackling_fire", 12, 5)]
    d = tmp_path / "dcase"
    place(d, "set1/scenes_stereo/scenes_stereo/bus01.wav", media["a"])
    place(d, "set1/scenes_stereo/scenes_stereo/park10.wav", media["a"])
    place(d, "set1/scenes_stereo_testset/scenes_stereo_testset/bus05.wav", media["a"])
    e = builders.dcase2013(d)
    assert sorted((x.label, x.label_idx, x.split) for x in e) == [
        ("bus", 0, "test"), ("bus", 0, "train"), ("park", 1, "train")]
    with pytest.raises(builders.LayoutError, match="HMDB-51"):
        builders.hmdb51(tmp_path)


@need_shared
def test_esc10_real_and_sample_manifests():
    e = builders.esc50(ESC10)
    assert len(e) == 400 and all(x.path.endswith(".flac") for x in e)
    assert sorted({x.fold for x in e}) == [1, 2, 3, 4, 5] and len({x.label for x in e}) == 10
    assert all(x.path.split("-")[-1].split(".")[0] == str(x.label_idx) for x in e)
    m = read_manifest(REPO / "data_manifests" / "esc10.csv")
    assert len(m.rows) == 400 and len(select_split(m.rows, "test-3")) == 80
    assert all(abs(r.audio_duration - 5.0) < 1e-3 for r in m.rows)
    m = read_manifest(REPO / "data_manifests" / "shared_clips.csv")
    assert len(m.rows) == 21 and sum(not r.has_audio for r in m.rows) == 6
