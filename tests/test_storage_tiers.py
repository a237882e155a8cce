"""Storage tiers (data/shards.py, data/frames.py): tar shards in the webdataset layout read by random
access, and the decode-free frame store; both behind the manifest, so training, resume, DDP and the
counted skips work unchanged."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from crisscross_core.checkpoint import safe_load
from crisscross_core.data import shards as S
from crisscross_core.data.decode import DecodeError, decode_windows, probe
from crisscross_core.data.manifest import read_manifest
from crisscross_core.data.prepare import prepare_frames, prepare_shards
from crisscross_core.runlog import read_metrics
from crisscross_core.train import train

REPO = Path(__file__).resolve().parents[1]

NO_RANDOM_AUG = [
    "aug.video.crop_scale=[1.0,1.0]", "aug.video.crop_ratio=[1.0,1.0]", "aug.video.flip_p=0",
    "aug.video.jitter_p=0", "aug.video.gray_p=0", "aug.video.blur_p=0", "aug.video.cutout_p=0",
    "aug.audio.volume=0", "aug.audio.freq_masks=0", "aug.audio.time_masks=0", "aug.audio.resize_crop=false",
]


def tiny(manifest, run_dir, *extra):
    return [f"data.manifest={manifest}", f"train.run_dir={run_dir}", "optim.batch_size=8",
            "optim.epochs=2", "data.num_workers=0", "train.log_every=1", "train.checkpoint_every=1",
            "train.progress=false", "train.tensorboard=false", "data.clips_per_video=1", *extra]


@pytest.fixture(scope="module")
def demo_shards(tmp_path_factory, demo_manifest):
    """The demo clips packed as they are into shards of ~200 kB (several shards)."""
    out = tmp_path_factory.mktemp("shards") / "demo"
    rows, health = prepare_shards(demo_manifest, out, shard_bytes=200_000, workers=1, progress=False,
                                  transcode_clips=False)
    assert health["unreadable"] == 0 and health["shards"] >= 3
    return out / "manifest.csv"


def test_shards_are_webdataset_tars_whose_index_gives_each_member(demo_shards, demo_manifest):
    m = read_manifest(demo_shards)
    src = read_manifest(demo_manifest)
    assert len(m.rows) == len(src.rows) and m.meta["storage"] == "shards"
    shard = sorted(m.root.glob("shard-*.tar"))[0]
    idx = json.loads(Path(str(shard) + ".idx.json").read_text())
    with tarfile.open(shard) as tf:
        names = tf.getnames()
        assert names[0].endswith(".mp4") and names[1] == names[0][:-4] + ".json"     # <key>.mp4, <key>.json
        for member in tf.getmembers():
            assert idx["members"][member.name] == [member.offset_data, member.size]
        row = json.loads(tf.extractfile(names[1]).read())
    original = next(r for r in src.rows if r.path == row["path"])
    shard_row = next(r for r in m.rows if r.path.endswith(names[0]))
    assert shard_row.label == original.label and shard_row.split == original.split
    a = (src.root / original.path).read_bytes()
    assert S.open_member(m.root / shard_row.path).read() == a                      # byte-identical member
    assert S.verify_shard(shard) is None


def test_two_rank_ddp_over_shards_follows_the_files_trajectory(tmp_path, demo_shards, demo_manifest):
    """The same clips as files (1 process) and as shards (2 ranks over gloo): the same losses."""
    common = [*NO_RANDOM_AUG, "optim.max_steps=3", "optim.video_lr=2e-4", "optim.audio_lr=2e-4",
              "optim.video_pred_lr=2e-3", "optim.audio_pred_lr=2e-3", "train.sync_bn=true"]
    train("tiny_cpu", tiny(demo_manifest, tmp_path / "files", *common))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "import sys; from crisscross_core.train import train; train('tiny_cpu', sys.argv[1:])"
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", code, *tiny(demo_shards, tmp_path / "shards", *common)],
                                      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
    files, shards = read_metrics(tmp_path / "files"), read_metrics(tmp_path / "shards")
    assert [r["step"] for r in shards] == [1, 2, 3] and all(r["world_size"] == 2 for r in shards)
    for r1, r2 in zip(files, shards):
        for key in ("loss", "Lv1v2", "La1a2", "Lv1a1", "Lv2a2", "Lv1a2", "La1v2"):
            assert r2[key] == pytest.approx(r1[key], abs=1e-5), (r1["step"], key)


def test_kill_9_and_resume_over_shards_is_bit_identical(tmp_path, demo_shards):
    import signal
    import time
    code = "import sys; from crisscross_core.train import train; train('tiny_cpu', sys.argv[1:])"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = lambda run: tiny(demo_shards, run, "optim.max_steps=6", "data.num_workers=1")
    ref = subprocess.run([sys.executable, "-c", code, *args(tmp_path / "ref")], cwd=REPO, env=env,
                         capture_output=True, timeout=600)
    assert ref.returncode == 0, ref.stderr.decode()[-2000:]
    run = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-c", code, *args(run)], cwd=REPO, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 300 and not (run / "checkpoint.pt").is_file():
        time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGKILL)
    p.wait()
    again = subprocess.run([sys.executable, "-c", code, *args(run)], cwd=REPO, env=env, capture_output=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    a, b = safe_load(tmp_path / "ref" / "checkpoint.pt"), safe_load(run / "checkpoint.pt")
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_a_truncated_shard_and_a_corrupt_member_are_skipped_and_counted(tmp_path, demo_shards, capsys):
    src = demo_shards.parent
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    shards = sorted(bad.glob("shard-*.tar"))
    idx = json.loads(Path(str(shards[0]) + ".idx.json").read_text())
    name, (off, size) = next((n, v) for n, v in idx["members"].items() if n.endswith(".mp4"))
    with open(shards[0], "r+b") as f:                      # garbage over a member's bytes
        f.seek(off)
        f.write(os.urandom(size))
    last = shards[-1]
    last_idx = json.loads(Path(str(last) + ".idx.json").read_text())
    cut = min(o for n, (o, s) in last_idx["members"].items() if n.endswith(".mp4")) + 100
    with open(last, "r+b") as f:                           # the last shard cut short
        f.truncate(cut)
    m = read_manifest(bad / "manifest.csv")
    in_last = [r.path for r in m.rows if r.path.startswith(last.name)]
    with pytest.raises(DecodeError, match="truncated"):
        decode_windows(bad / in_last[0], [(0.0, 0.5)], [])
    with pytest.raises(DecodeError):
        decode_windows(bad / f"{shards[0].name}::{name}", [(0.0, 0.5)], [])
    s = train("tiny_cpu", tiny(bad / "manifest.csv", tmp_path / "run", "optim.max_steps=4", "data.split=",
                               "data.max_retries=20"))
    assert s["step"] == 4 and s["skipped_items"] >= 1
    assert sum(r["skipped_items"] for r in read_metrics(tmp_path / "run", kind="epoch")) == s["skipped_items"]
    assert S.verify_shard(last) is not None and "truncated" in S.verify_shard(last)
    assert "sha256" in S.verify_shard(shards[0])


def test_each_worker_opens_each_shard_at_most_once_per_epoch(demo_shards):
    """Reading every clip of every shard twice in one process opens each shard once."""
    from crisscross_core.config import load_config
    from crisscross_core.data.datasets import PretrainDataset
    S.close_all()
    S.OPENS.clear()
    cfg = load_config("tiny_cpu", ["data.split=", "data.clips_per_video=2"]).data
    ds = PretrainDataset(demo_shards, cfg, seed=0)
    for i in range(len(ds)):
        ds[i]
    n_shards = len(list(demo_shards.parent.glob("shard-*.tar")))
    assert len(S.OPENS) == n_shards and set(S.OPENS.values()) == {1}, S.OPENS


def test_frame_store_reads_what_decoding_gives_without_decoding(tmp_path, shared_data):
    src = Path(__file__).resolve().parents[1] / "data_manifests" / "shared_clips.csv"
    rows, health = prepare_frames(src, tmp_path / "clips", short_side=128, workers=1, progress=False)
    assert health["unreadable"] == 0 and len(rows) == 21
    m, orig = read_manifest(tmp_path / "clips.frames" / "manifest.csv"), read_manifest(src)
    by_source = {r.path: r for r in orig.rows}
    for r in m.rows[:6]:
        key = r.path.split("::")[1]
        o = by_source[json.loads((tmp_path / "clips.frames" / "index.json").read_text())["clips"][key]["source"]]
        info = probe(m.root / r.path)
        assert info.has_audio == o.has_audio and abs(info.video_duration - o.video_duration) < 0.1
        if o.has_video:
            a, _ = decode_windows(m.root / r.path, [(1.0, 0.5)], [], short_side=128, size=(128, 128))
            b, _ = decode_windows(orig.root / o.path, [(1.0, 0.5)], [], short_side=128, size=(128, 128))
            assert a[0].shape == b[0].shape == (8, 128, 128, 3) and np.array_equal(a[0], b[0])
    assert not any(p.suffix == ".part" for p in (tmp_path / "clips.frames").iterdir())


def test_cli_prepare_shards_and_frames_and_deep_check(tmp_path, shared_data):
    from crisscross_core.cli import main
    src = str(REPO / "data_manifests" / "shared_clips.csv")
    assert main(["prepare", src, str(tmp_path / "sh"), "--shards", "--shard-size", "4MB", "--pack",
                 "--workers", "1", "--no-progress"]) == 0
    assert main(["manifest", "check", str(tmp_path / "sh" / "manifest.csv"), "--deep"]) == 0
    shard = sorted((tmp_path / "sh").glob("shard-*.tar"))[0]
    with open(shard, "r+b") as f:                            # one flipped byte
        f.seek(2000)
        b = f.read(1)
        f.seek(2000)
        f.write(bytes([b[0] ^ 0xFF]))
    assert main(["manifest", "check", str(tmp_path / "sh" / "manifest.csv"), "--deep"]) == 1
    assert main(["prepare", src, str(tmp_path / "fr"), "--frames", "--workers", "1", "--no-progress"]) == 0
    m = read_manifest(tmp_path / "fr.frames" / "manifest.csv")
    assert len(m.rows) == 21 and all("::" in r.path for r in m.rows)


def test_evaluation_reads_prepared_tiers_as_the_original_files(tmp_path, demo_shards, demo_manifest):
    """Evaluation manifests may point into shards or a frame store: the rows are found (none dropped as
    'file not found') and give the original files' audio and frames."""
    from crisscross_core.evaluate.media import load_audio, load_items, load_video_windows
    orig, _ = load_items(demo_manifest, require_label=False)
    prepare_frames(demo_manifest, tmp_path / "demo", short_side=128, workers=1, progress=False)
    for tier in (demo_shards, tmp_path / "demo.frames" / "manifest.csv"):
        dropped = []
        items, _ = load_items(tier, require_label=False, dropped=dropped)
        assert not dropped and len(items) == len(orig) and all("::" in it.path for it in items)
        for it, o in list(zip(items, orig))[:3]:                 # prepared manifests keep the row order
            assert it.rid == o.rid and it.label_name == o.label_name
            a, b = load_audio(it.path, duration=1.0), load_audio(o.path, duration=1.0)
            assert a.shape == b.shape == (16000,) and np.all(np.abs(a - b) <= 2 ** -11 * np.abs(b) + 1e-7)  # float16
            a = load_video_windows(it.path, [0.5], 0.5, short_side=128, size=(128, 128))
            b = load_video_windows(o.path, [0.5], 0.5, short_side=128, size=(128, 128))
            assert a.shape == (1, 8, 128, 128, 3) and np.array_equal(a, b)
