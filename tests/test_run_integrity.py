"""Run integrity: one live run per run directory, resumes that refuse to mix configs, no unpickling of
a run folder's files, every config value range-checked before work, clear errors for bad weights and
full disks, every dropped row counted, files readable by the group where the umask allows.

Each test fails on the kit before these changes (see the issue "Run integrity")."""
from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from crisscross_core.checkpoint import CheckpointError, DiskFullError, atomic_save, safe_load
from crisscross_core.cli import main as cli_main
from crisscross_core.config import ConfigError, load_config
from crisscross_core.resume_guard import ResumeConfigError
from crisscross_core.runlog import read_metrics
from crisscross_core.train import train

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
PY = sys.executable


def tiny(manifest, run_dir, *extra):
    return [f"data.manifest={manifest}", f"train.run_dir={run_dir}", "optim.batch_size=8",
            "optim.epochs=2", "data.num_workers=0", "train.log_every=1", "train.checkpoint_every=2",
            "train.progress=false", "train.tensorboard=false", "data.clips_per_video=1", *extra]


def cli(*argv) -> tuple[int, str, str]:
    """`crisscross ...` in a subprocess: (exit code, stdout, stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    r = subprocess.run([PY, "-m", "crisscross_core.cli", *argv], capture_output=True, env=env, timeout=600)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


class Evil:
    """Unpickling this creates `marker` (stands for any code a crafted pickle could run)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


# ----------------------------------------------------------------------------- nothing executes from a run folder

def test_attach_reads_no_pickle_from_the_run_folder(tmp_path):
    """A finished local job; then a malicious pickle planted at every pickle path submitit uses: the
    re-attached handle's status/error/metrics/wait run none of it and still report the real outcome."""
    pytest.importorskip("submitit")
    from crisscross_core.launch import attach, submit
    job = submit("tiny_cpu", ["optim.max_steps=2"], cluster="local", run_dir=tmp_path / "run",
                 target="launch_helpers:fake_train", python_path=[str(TESTS)],
                 target_kwargs={"sleep_s": 0.01}, time_min=5)
    summary = job.wait(timeout=180)
    assert summary["steps"] == 2
    marker = tmp_path / "pwned"
    planted = 0
    for pkl in (tmp_path / "run" / "submitit").rglob("*.pkl"):
        with open(pkl, "wb") as f:
            pickle.dump(("success", Evil(marker)), f)
        planted += 1
    assert planted >= 2                                   # submitted + result pickles at least
    again = attach(tmp_path / "run")
    assert again.status() == "COMPLETED"
    assert again.error() is None
    assert [r["step"] for r in again.metrics()] == [1, 2]
    assert again.wait(timeout=10)["steps"] == 2           # train's summary, from the job's JSON status
    assert not marker.exists()


def test_failed_job_error_comes_from_its_json_status_not_a_pickle(tmp_path):
    pytest.importorskip("submitit")
    from crisscross_core.launch import JobFailedError, attach, submit
    job = submit("tiny_cpu", ["optim.max_steps=2", "data.manifest=/nonexistent/m.csv"], cluster="local",
                 run_dir=tmp_path / "bad", target="launch_helpers:fake_train", python_path=[str(TESTS)],
                 time_min=5)
    with pytest.raises(JobFailedError, match=r"data\.manifest"):
        job.wait(timeout=180)
    (tmp_path / "bad" / "error.txt").unlink()             # only the job's JSON status is left
    for pkl in (tmp_path / "bad" / "submitit").rglob("*.pkl"):
        pkl.write_bytes(pickle.dumps(Evil(tmp_path / "pwned")))
    again = attach(tmp_path / "bad")
    assert again.status() == "FAILED" and "ConfigError" in again.error()
    assert not (tmp_path / "pwned").exists()


# ----------------------------------------------------------------------------- one run per directory

def test_a_second_pretrain_on_a_live_run_directory_is_refused(tmp_path, demo_manifest):
    """Two real `crisscross pretrain` processes, same run_dir, different seeds: the second exits 2 with
    one line naming the holder; the first finishes untouched (its metrics all there, its seed kept)."""
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    first = subprocess.Popen([PY, "-m", "crisscross_core.cli", "pretrain", "-c", "tiny_cpu",
                              *tiny(demo_manifest, run, "optim.epochs=10", "train.seed=1")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        t0 = time.time()
        while not read_metrics(run) and first.poll() is None and time.time() - t0 < 300:
            time.sleep(0.2)
        assert first.poll() is None, first.communicate()
        code, out, err = cli("pretrain", "-c", "tiny_cpu", *tiny(demo_manifest, run, "optim.epochs=10",
                                                                 "train.seed=2"))
        assert code == 2, (out, err)
        line = err.strip().splitlines()
        assert len(line) == 1 and "in use by another run" in line[0] and f"PID {first.pid}" in line[0], err
        assert "Traceback" not in err
    finally:
        out1, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1.decode()
    assert [r["step"] for r in read_metrics(run)] == list(range(1, 41))     # 10 epochs x 4 steps
    assert load_config(run / "config.yaml").train.seed == 1
    assert json.loads((run / "run.lock").read_text())["released"] is True


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, demo_manifest):
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    p = subprocess.Popen([PY, "-m", "crisscross_core.cli", "pretrain", "-c", "tiny_cpu",
                          *tiny(demo_manifest, run, "optim.epochs=10")], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (run / "checkpoint.pt").is_file() and time.time() - t0 < 300:
        time.sleep(0.1)
    p.kill()
    p.wait()
    assert json.loads((run / "run.lock").read_text())["pid"] == p.pid      # left behind, not released
    done = safe_load(run / "checkpoint.pt")["step"]
    summary = train("tiny_cpu", tiny(demo_manifest, run, "optim.epochs=10", f"optim.max_steps={done + 2}"))
    assert summary["step"] == done + 2
    rec = json.loads((run / "run.lock").read_text())
    assert rec["pid"] == os.getpid() and rec["released"]


def test_run_lock_refuses_a_live_holder_and_names_it(tmp_path):
    from crisscross_core.runlock import RunLock, RunLockedError
    with RunLock(tmp_path / "r") as held:
        with pytest.raises(RunLockedError, match=rf"PID {os.getpid()}.*since"):
            RunLock(tmp_path / "r").acquire()
        assert held.record["released"] is False
    RunLock(tmp_path / "r").acquire().release()           # free again once released


def test_run_lock_from_another_host_decided_by_heartbeat(tmp_path, monkeypatch):
    """On filesystems where flock does not reach across hosts, a fresh heartbeat from another host
    refuses; a stale one (older than STALE_S) is taken over."""
    import crisscross_core.runlock as RL
    d = tmp_path / "r"
    d.mkdir()
    rec = {"host": "other-node", "pid": 4242, "slurm_job_id": None, "since": "2026-12-01T00:00:00Z",
           "heartbeat_unix": time.time(), "released": False}
    (d / "run.lock").write_text(json.dumps(rec))
    with pytest.raises(RL.RunLockedError, match="host other-node, PID 4242"):
        RL.RunLock(d).acquire()
    rec["heartbeat_unix"] = time.time() - RL.STALE_S - 5
    (d / "run.lock").write_text(json.dumps(rec))
    lock = RL.RunLock(d).acquire()
    assert lock.took_over["host"] == "other-node"
    lock.release()


# ----------------------------------------------------------------------------- resume checks the config

@pytest.fixture
def finished_run(tmp_path, demo_manifest):
    run = tmp_path / "run"
    train("tiny_cpu", tiny(demo_manifest, run, "optim.max_steps=2"))
    return run


def _files(run):
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "run.lock"}


@pytest.mark.parametrize("change,key", [("model.video_width=0.5", "model.video_width"),
                                        ("optim.batch_size=4", "optim.batch_size"),
                                        ("train.seed=7", "train.seed"),
                                        ("aug.video.flip_p=0.1", "aug.video.flip_p")])
def test_resume_with_a_changed_config_is_refused_before_touching_anything(finished_run, demo_manifest,
                                                                          change, key):
    before = _files(finished_run)
    with pytest.raises(ResumeConfigError, match=key) as err:
        train("tiny_cpu", tiny(demo_manifest, finished_run, "optim.max_steps=4", change))
    assert "train.run_dir" in str(err.value)
    assert _files(finished_run) == before                  # config.yaml, metrics, checkpoints untouched
    assert not (finished_run / "error.txt").exists()


def test_forced_and_harmless_changes_are_accepted_and_recorded(finished_run, demo_manifest):
    s = train("tiny_cpu", tiny(demo_manifest, finished_run, "optim.max_steps=3", "train.log_every=3",
                               "optim.epochs=3"))             # harmless: logging, max_steps, more epochs
    assert s["step"] == 3
    with pytest.raises(ResumeConfigError, match="model"):
        train("tiny_cpu", tiny(demo_manifest, finished_run, "optim.max_steps=4", "model.proj_dim=128",
                               "train.accept_config_changes=true"))   # a new shape: never
    s = train("tiny_cpu", tiny(demo_manifest, finished_run, "optim.max_steps=4", "optim.epochs=3",
                               "aug.video.flip_p=0.1", "train.accept_config_changes=true"))
    assert s["step"] == 4
    hist = [json.loads(l) for l in (finished_run / "config_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [0, 2, 3]
    assert {c["key"] for c in hist[1]["changes"]} >= {"train.log_every", "optim.epochs", "optim.max_steps"}
    assert hist[1]["forced"] == [] and hist[2]["forced"] == ["aug.video.flip_p"]
    assert load_config(finished_run / "config.yaml").aug.video.flip_p == 0.1


# ----------------------------------------------------------------------------- values checked before work

BAD_VALUES = ["train.log_every=0", "train.checkpoint_every=0", "data.num_workers=-1",
              "data.prefetch_factor=0", "train.seed=-1", "data.audio_rate=0", "data.video_fps=0",
              "data.video_duration=0", "data.audio_duration=-1", "data.max_retries=-1",
              "optim.video_lr=-1e-3", "optim.epochs=0", "optim.max_steps=-5", "aug.video.crop_size=1000",
              "optim.batch_size=100000", "model.video_width=0.001", "aug.video.flip_p=2"]


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_a_value_out_of_range_ends_in_one_line_before_any_work(tmp_path, demo_manifest, capsys, bad):
    run = tmp_path / "run"
    code = cli_main(["pretrain", "-c", "tiny_cpu", *tiny(demo_manifest, run, bad)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and bad.split("=")[0] in err, err
    assert not run.exists()                                  # nothing was created


def test_cuda_without_a_gpu_is_refused_before_work(tmp_path, demo_manifest, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert cli_main(["pretrain", "-c", "tiny_cpu", *tiny(demo_manifest, tmp_path / "r", "train.device=cuda")]) == 2
    assert "train.device" in capsys.readouterr().err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("text,words", [
    ("train:\n  seed: !!python/object/apply:os.system ['touch pwned']\n", "refused a YAML tag"),
    ("train: [unclosed\n", "not valid YAML at line"),
    ("- just\n- a list\n", "must be a mapping"),
    (b"train:\n  run_dir: caf\xe9\n", "not UTF-8"),
])
def test_yaml_problems_end_in_one_line(tmp_path, capsys, monkeypatch, text, words):
    p = tmp_path / "c.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    monkeypatch.chdir(tmp_path)
    assert cli_main(["pretrain", "-c", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and str(p) in err
    assert not (tmp_path / "pwned").exists()


def test_non_utf8_bytes_in_an_override_end_in_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([PY, "-m", "crisscross_core.cli", "pretrain", b"data.manifest=caf\xe9.csv"],
                       capture_output=True, env=env, timeout=120)
    err = r.stderr.decode(errors="replace").strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "not UTF-8" in err, err


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match=r"did you mean 'log_every'"):
        load_config("tiny_cpu", ["train.log_evry=5"])


# ----------------------------------------------------------------------------- weights and checkpoints

def test_zip_bomb_is_refused_early_with_bounded_memory(tmp_path):
    bomb = tmp_path / "vid_crisscross_kinetics_400.pth.tar.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("x.pth.tar", "w") as f:
        chunk = bytes(1 << 20)
        for _ in range(256):                                 # 256 MiB of zeros, ~0.25 MB zipped
            f.write(chunk)
    assert bomb.stat().st_size < 2 << 20
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as err:
        safe_load(bomb)
    assert "callable" not in str(err.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 100 * 1024   # KiB: < 100 MB more


def test_weights_over_the_size_cap_are_refused(tmp_path, monkeypatch):
    p = tmp_path / "big.pt"
    torch.save({"w": torch.zeros(300_000)}, p)               # ~1.2 MB
    monkeypatch.setenv("CRISSCROSS_MAX_WEIGHTS_GB", str(1 / 1024))   # 1 MiB
    with pytest.raises(CheckpointError, match="too large"):
        safe_load(p)


@pytest.mark.parametrize("content,words", [(b"\x00garbage" * 100, "not a PyTorch checkpoint"),
                                           (b"PK\x03\x04truncated", "truncated or damaged")])
def test_garbage_messages_say_what_is_wrong(tmp_path, content, words):
    p = tmp_path / "w.pth.tar"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match=words) as err:
        safe_load(p)
    assert "callable" not in str(err.value)


def test_resume_falls_back_to_the_previous_checkpoint_when_the_last_is_truncated(finished_run, demo_manifest,
                                                                                  capsys):
    train("tiny_cpu", tiny(demo_manifest, finished_run, "optim.max_steps=4"))
    assert safe_load(finished_run / "checkpoint.prev.pt")["step"] == 2
    data = (finished_run / "checkpoint.pt").read_bytes()
    (finished_run / "checkpoint.pt").write_bytes(data[: len(data) // 3])
    capsys.readouterr()
    s = train("tiny_cpu", tiny(demo_manifest, finished_run, "optim.max_steps=5"))
    out = capsys.readouterr().out
    assert "checkpoint.pt is unreadable" in out and "resuming from checkpoint.prev.pt" in out
    assert "resumed from" in out and "at step 2" in out and s["step"] == 5
    assert list(finished_run.glob("checkpoint.unreadable-*.pt"))     # kept for inspection, not lost
    assert [r["step"] for r in read_metrics(finished_run)] == [1, 2, 3, 4, 5]


def _tmpfs(path: Path, size: str):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()[:80]})")


def test_disk_full_on_a_real_small_filesystem_names_the_path_and_keeps_the_previous(tmp_path):
    fs = tmp_path / "fs"
    _tmpfs(fs, "3m")
    try:
        atomic_save({"w": torch.zeros(250_000)}, fs / "checkpoint.pt")              # 1 MB: fits
        with pytest.raises(DiskFullError, match=r"disk is full \(\d+\.\d MB free") as err:
            atomic_save({"w": torch.ones(750_000)}, fs / "checkpoint.pt")          # 3 MB: does not
        assert str(fs / "checkpoint.pt") in str(err.value)
        assert torch.equal(safe_load(fs / "checkpoint.pt")["w"], torch.zeros(250_000))
        assert [p.name for p in fs.iterdir()] == ["checkpoint.pt"]                 # no temp left
    finally:
        subprocess.run(["umount", str(fs)])


def test_disk_full_during_training_is_one_line_and_the_run_resumes(tmp_path, demo_manifest, monkeypatch,
                                                                    capsys):
    """ENOSPC injected into the 2nd checkpoint write: one line naming the path (exit 2), the earlier
    checkpoint survives, and a rerun resumes from it."""
    import errno
    import crisscross_core.checkpoint as C
    real, calls = C._ErrorKeepingWriter.write, []

    def write(self, data):
        if len(calls) >= 1 and self.written > 1000:
            self.error = OSError(errno.ENOSPC, "No space left on device")
            raise self.error
        return real(self, data)

    orig_save = C.atomic_save

    def counting_save(obj, path):
        try:
            return orig_save(obj, path)
        finally:
            calls.append(path)

    monkeypatch.setattr(C._ErrorKeepingWriter, "write", write)
    monkeypatch.setattr("crisscross_core.train.atomic_save", counting_save)
    run = tmp_path / "run"
    assert cli_main(["pretrain", "-c", "tiny_cpu", *tiny(demo_manifest, run, "optim.max_steps=4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "disk is full" in err[0] and "checkpoint.pt" in err[0], err
    monkeypatch.setattr(C._ErrorKeepingWriter, "write", real)
    s = train("tiny_cpu", tiny(demo_manifest, run, "optim.max_steps=4"))
    assert s["step"] == 4 and "resumed from" in capsys.readouterr().out


# ----------------------------------------------------------------------------- data accounting

def test_every_row_that_does_not_train_is_counted_and_named(tmp_path, shared_data, capsys):
    """The shared clips: 21 rows of which some have no audio; plus a missing file and a malformed row
    appended. The run prints one line with the counts, records them, and names every dropped row."""
    src = (REPO / "data_manifests" / "shared_clips.csv").read_text()
    lines = src.splitlines()
    lines = [l if not l.startswith("# root:") else f"# root: {shared_data / 'clips'}" for l in lines]
    header = next(i for i, l in enumerate(lines) if l.startswith("path,"))
    n_cols = len(lines[header].split(","))
    lines.append("gone.mp4," + ",".join(["x"] + [""] * (n_cols - 2)))           # missing file
    lines.append("broken.mp4,only-two-fields")                                 # malformed
    m = tmp_path / "clips.csv"
    m.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    s = train("tiny_cpu", [f"data.manifest={m}", f"train.run_dir={run}", "data.split=", "optim.batch_size=4",
                           "optim.max_steps=1", "data.num_workers=0", "data.clips_per_video=1",
                           "train.progress=false", "train.tensorboard=false", "train.export_at_end=false"])
    report = json.loads((run / "data_report.json").read_text())
    no_audio = [l.split(",")[0] for l in lines[header + 1:-2] if l.split(",")[7] == "0"]
    assert report["rows_in_manifest"] == 23
    assert report["dropped_counts"] == {"malformed_row": 1, "missing_file": 1, "no_audio": len(no_audio)}
    assert sorted(report["dropped"]["no_audio"]) == sorted(no_audio)
    assert s["rows_used"] == 21 - len(no_audio) and s["rows_dropped"] == report["dropped_counts"]
    rec = read_metrics(run, kind="data")[0]
    assert rec["rows_used"] == s["rows_used"] and rec["rows_dropped"]["no_audio"] == len(no_audio)
    out = capsys.readouterr().out
    assert f"{s['rows_used']} of 23 manifest rows train" in out and "no_audio" in out


def test_a_missing_manifest_root_is_an_error_not_a_fallback(tmp_path, demo_manifest):
    from crisscross_core.data.manifest import ManifestError, read_manifest
    text = Path(demo_manifest).read_text().splitlines()
    text.insert(1, "# root: /nonexistent/media")
    m = tmp_path / "m.csv"
    m.write_text("\n".join(text) + "\n")
    with pytest.raises(ManifestError, match=r"root: /nonexistent/media.*data\.root"):
        read_manifest(m)


def test_a_latin1_byte_in_a_manifest_ends_in_one_line(tmp_path, demo_manifest, capsys):
    data = Path(demo_manifest).read_bytes().replace(b"train", b"tr\xe9in", 1)
    m = tmp_path / "m.csv"
    m.write_bytes(data)
    assert cli_main(["pretrain", "-c", "tiny_cpu", *tiny(m, tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not UTF-8" in err and "line" in err


def test_manifest_build_counts_non_utf8_names_and_reads_newline_names_back(tmp_path, shared_data):
    from crisscross_core.data.manifest import read_manifest
    d = tmp_path / "media"
    d.mkdir()
    clip = shared_data / "clips" / "vas__dog__video_02677.mp4"
    shutil.copy(clip, d / "plain.mp4")
    shutil.copy(clip, os.path.join(os.fsencode(d), b"caf\xe9.mp4"))
    shutil.copy(clip, d / "two\nlines, \"quoted\".mp4")
    out = tmp_path / "m.csv"
    code, stdout, err = cli("manifest", "build", "folder", str(d), "-o", str(out), "--workers", "1",
                            "--no-progress")
    assert code == 0, err
    health = json.loads(next(l for l in stdout.splitlines() if l.startswith("{")))
    assert health["bad_names"] == 1 and health["readable"] == 2
    assert sorted(r.path for r in read_manifest(out).rows) == ["plain.mp4", "two\nlines, \"quoted\".mp4"]
    assert not list(tmp_path.glob("*.tmp"))


def test_probe_measures_an_audio_stream_shorter_than_the_container(tmp_path):
    import av
    import numpy as np
    from crisscross_core.data.decode import probe
    path = tmp_path / "short_audio.mkv"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream("aac", rate=16000)
        aus.layout = "mono"
        for i in range(106):                                   # 4.24 s of video
            for p in vs.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        n, t = int(3.02 * 16000), 0                            # 3.02 s of audio
        while t < n:
            k = min(1024, n - t)
            fr = av.AudioFrame.from_ndarray(np.zeros((1, k), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, t
            for p in aus.encode(fr):
                out.mux(p)
            t += k
        for p in aus.encode():
            out.mux(p)
    with av.open(str(path)) as c:
        assert all(s.duration is None for s in c.streams)      # Matroska: no per-stream durations
    info = probe(path)
    assert info.video_duration == pytest.approx(4.24, abs=0.05)
    assert info.audio_duration == pytest.approx(3.02, abs=0.1)


# ----------------------------------------------------------------------------- permissions

def test_checkpoints_and_exports_follow_the_umask(tmp_path, demo_manifest):
    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        train("tiny_cpu", tiny(demo_manifest, run, "optim.max_steps=2"))
        for name in ("checkpoint.pt", "config.yaml", "metrics.jsonl", "vid_crisscross_tiny_cpu.pth.tar"):
            assert (run / name).stat().st_mode & 0o777 == 0o644, name
        os.umask(0o077)
        atomic_save({"a": 1}, tmp_path / "private.pt")
        assert (tmp_path / "private.pt").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_a_forked_child_does_not_keep_a_killed_runs_lock(tmp_path):
    """DataLoader workers are forked children; one that outlives its killed trainer must not hold the
    run directory's lock (a flock is shared with the fork unless the child lets go)."""
    from crisscross_core.runlock import RunLock
    holder = ("import os, sys, time, signal; from crisscross_core.runlock import RunLock; "
              "RunLock(sys.argv[1]).acquire(); pid = os.fork()\n"
              "if pid == 0: time.sleep(60); os._exit(0)\n"
              "open(sys.argv[2], 'w').write(str(pid)); os.kill(os.getpid(), signal.SIGKILL)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([PY, "-c", holder, str(tmp_path / "run"), str(tmp_path / "child")], env=env, timeout=60)
    assert r.returncode == -9
    child = int((tmp_path / "child").read_text())
    try:
        os.kill(child, 0)                                    # the forked child is still alive ...
        lock = RunLock(tmp_path / "run").acquire()           # ... and the lock is free anyway
        assert lock.took_over is not None
        lock.release()
    finally:
        os.kill(child, 9)
