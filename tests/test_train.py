"""train(cfg): bad configs fail before work; resume is bit-identical; kill -9 anywhere is survived;
2-rank gloo DDP follows the same loss trajectory as one process with the same global batch."""
import os
import random
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from crisscross_core.checkpoint import safe_load
from crisscross_core.config import ConfigError
from crisscross_core.runlog import read_metrics
from crisscross_core.train import train

REPO = Path(__file__).resolve().parents[1]

# Deterministic augmentation (full-frame crop, no flips/jitter/masks): used where two runs whose
# ranks draw augmentations differently must see identical inputs.
NO_RANDOM_AUG = [
    "aug.video.crop_scale=[1.0,1.0]", "aug.video.crop_ratio=[1.0,1.0]", "aug.video.flip_p=0",
    "aug.video.jitter_p=0", "aug.video.gray_p=0", "aug.video.blur_p=0", "aug.video.cutout_p=0",
    "aug.audio.volume=0", "aug.audio.freq_masks=0", "aug.audio.time_masks=0",
    "aug.audio.resize_crop=false",
]


def tiny(manifest, run_dir, *extra):
    return [f"data.manifest={manifest}", f"train.run_dir={run_dir}", "optim.batch_size=8",
            "optim.epochs=2", "data.num_workers=0", "train.log_every=1", "train.checkpoint_every=2",
            "train.progress=false", "train.tensorboard=false", "data.clips_per_video=1", *extra]


def params_of(run_dir):
    return safe_load(Path(run_dir) / "checkpoint.pt")["model"]


def test_bad_config_fails_before_any_work(tmp_path, demo_manifest):
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        train("tiny_cpu", tiny(demo_manifest, run, "optim.lr=1e-3"))
    with pytest.raises(ConfigError, match=r"data\.manifest"):
        train("tiny_cpu", [f"train.run_dir={run}", "data.manifest=/nonexistent/m.csv"])
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"train\.amp"):
            train("tiny_cpu", tiny(demo_manifest, run, "train.amp=bf16"))
    assert not run.exists()


def test_a_nan_loss_stops_the_run_and_keeps_the_last_finite_checkpoint(tmp_path, demo_manifest,
                                                                      monkeypatch):
    """The 3rd loss turns NaN (and poisons the weights through backward): the run stops with a clear
    error, and checkpoint.pt still holds the finite state of step 2, which a rerun resumes from."""
    import crisscross_core.train as T
    real, calls = T.crisscross_loss, []

    def loss_turning_nan(out, cfg):
        calls.append(1)
        total, terms = real(out, cfg)
        return (total * float("nan"), terms) if len(calls) == 3 else (total, terms)

    monkeypatch.setattr(T, "crisscross_loss", loss_turning_nan)
    run = tmp_path / "run"
    with pytest.raises(T.NonFiniteLossError, match="step 3: the loss is not finite"):
        train("tiny_cpu", tiny(demo_manifest, run, "optim.max_steps=6", "train.log_every=3"))
    state = safe_load(run / "checkpoint.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert [r["step"] for r in read_metrics(run)] == []                     # the NaN window was not logged
    monkeypatch.setattr(T, "crisscross_loss", real)
    assert train("tiny_cpu", tiny(demo_manifest, run, "optim.max_steps=6"))["step"] == 6


def test_run_writes_its_records(tmp_path, demo_manifest):
    run = tmp_path / "run"
    out = train("tiny_cpu", tiny(demo_manifest, run, "optim.max_steps=3"))
    assert out["step"] == 3
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "checkpoint.pt"} <= names
    assert "vid_crisscross_tiny_cpu.pth.tar" in names and "aud_crisscross_tiny_cpu.pth.tar" in names
    steps = read_metrics(run)
    assert [r["step"] for r in steps] == [1, 2, 3]
    for r in steps:
        assert {"loss", "Lv1v2", "La1a2", "Lv1a1", "Lv2a2", "Lv1a2", "La1v2", "std_v", "std_a",
                "rank_v", "rank_a", "lr_video_base", "samples_per_s", "data_wait"} <= set(r)
        assert 1.0 <= r["rank_v"] <= 8 and 1.0 <= r["rank_a"] <= 8        # batch of 8
        assert -1.0 <= r["loss"] <= 1.0 and 0.0 <= r["data_wait"] <= 1.0
    assert read_metrics(run, kind="epoch")[-1]["skipped_items"] == 0


def test_corrupt_clips_are_counted_skips_not_crashes(tmp_path, demo_manifest):
    """Two training rows point at a truncated mp4: the run completes, replaces them and counts them."""
    import dataclasses
    from crisscross_core.data.manifest import read_manifest, write_manifest
    m = read_manifest(demo_manifest)
    bad = tmp_path / "media" / "bad.mp4"
    bad.parent.mkdir()
    bad.write_bytes((Path(m.root) / m.rows[0].path).read_bytes()[:600])      # header only
    rows = [dataclasses.replace(r, path=str(Path(m.root) / r.path)) for r in m.rows]
    rows += [dataclasses.replace(rows[0], path=str(bad)), dataclasses.replace(rows[1], path=str(bad))]
    man = write_manifest(rows, tmp_path / "with_bad.csv")
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="bad.mp4"):
        out = train("tiny_cpu", tiny(man, run, "optim.epochs=1", "data.clips_per_video=2"))
    epochs = read_metrics(run, kind="epoch")
    assert out["step"] == epochs[-1]["step"] and epochs[-1]["skipped_items"] >= 2    # each visit counted
    assert out["skipped_items"] == epochs[-1]["skipped_total"] == epochs[-1]["skipped_items"]


def test_collapse_monitors_tell_point_line_and_full_rank_apart():
    """std catches collapse to a point; rank also catches collapse onto a line, which std misses."""
    from crisscross_core.train import embedding_rank, embedding_std
    g = torch.Generator().manual_seed(0)
    full = torch.randn(256, 32, generator=g)
    line = torch.randn(256, 1, generator=g) * torch.randn(1, 32, generator=g) + 1e-3 * torch.randn(256, 32, generator=g)
    plane = torch.randn(256, 2, generator=g) @ torch.randn(2, 32, generator=g)
    point = torch.randn(1, 32, generator=g) + 1e-4 * torch.randn(256, 32, generator=g)
    assert embedding_rank(full) > 25 and embedding_rank(line) < 1.2 and 1.5 < embedding_rank(plane) < 2.05
    assert embedding_std(line) > 0.5 and embedding_std(point) < 0.01 and embedding_std(full) > 0.9


def test_log_warns_on_either_kind_of_collapse():
    from crisscross_core.train import _show
    rec = {"step": 7, "loss": -0.5, "samples_per_s": 1.0, "data_wait": 0.0,
           "std_v": 1.0, "std_a": 1.0, "rank_v": 9.0, "rank_a": 8.0, "rank_batch": 64}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _show(rec, None, 1)                                           # healthy: silent
    with pytest.warns(UserWarning, match="rank_a=1.30"):
        _show({**rec, "rank_a": 1.3}, None, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _show({**rec, "rank_a": 1.0, "rank_batch": 2}, None, 1)       # 2 rows: rank ≤ 2 anyway
    with pytest.warns(UserWarning, match="std_v=0.050"):
        _show({**rec, "std_v": 0.05}, None, 1)


def test_resume_is_bit_identical(tmp_path, demo_manifest):
    full, split = tmp_path / "full", tmp_path / "split"
    train("tiny_cpu", tiny(demo_manifest, full, "optim.max_steps=5"))
    train("tiny_cpu", tiny(demo_manifest, split, "optim.max_steps=3"))
    train("tiny_cpu", tiny(demo_manifest, split, "optim.max_steps=5"))  # resumes at step 3
    a, b = params_of(full), params_of(split)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["step"] for r in read_metrics(split)] == [1, 2, 3, 4, 5]
    la = [r["loss"] for r in read_metrics(full)]
    lb = [r["loss"] for r in read_metrics(split)]
    assert la == lb


def _spawn(manifest, run_dir, steps):
    code = ("import sys; from crisscross_core.train import train; "
            "train('tiny_cpu', sys.argv[1:])")
    args = tiny(manifest, run_dir, f"optim.max_steps={steps}", "train.checkpoint_every=1")
    # Same thread count in every run: float reduction order (hence bits) depends on it.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_during_checkpoint_write(proc, run_dir, timeout=120):
    """Poll the run dir and SIGKILL the trainer while a checkpoint temp file exists."""
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if run_dir.exists() and any(n.startswith(".checkpoint.pt.") for n in os.listdir(run_dir)):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.0005)
    return False


@pytest.mark.slow
def test_kill_9_anywhere_then_resume_completes_identically(tmp_path, demo_manifest):
    ref, run = tmp_path / "ref", tmp_path / "run"
    steps = 6
    proc = _spawn(demo_manifest, ref, steps)  # the uninterrupted reference, in the same conditions
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]

    proc = _spawn(demo_manifest, run, steps)  # kill 1: in the middle of a checkpoint write
    killed = _kill_during_checkpoint_write(proc, run)
    assert killed, "the trainer finished before a checkpoint write could be interrupted"
    proc = _spawn(demo_manifest, run, steps)  # kill 2: at a random moment
    time.sleep(random.uniform(1.0, 4.0))
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc = _spawn(demo_manifest, run, steps)  # and finish
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]

    assert [r["step"] for r in read_metrics(run)] == list(range(1, steps + 1))
    a, b = params_of(ref), params_of(run)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_rank_gloo_ddp_matches_one_process(tmp_path, demo_manifest):
    steps = 4
    # The paper's lrs: Adam's normalised updates amplify float reduction-order noise step by step,
    # and the tiny preset's 10x lrs make that drift visible after a few steps.
    common = [*NO_RANDOM_AUG, f"optim.max_steps={steps}", "train.sync_bn=true", "optim.video_lr=2e-4",
              "optim.audio_lr=2e-4", "optim.video_pred_lr=2e-3", "optim.audio_pred_lr=2e-3"]
    single = tmp_path / "single"
    train("tiny_cpu", tiny(demo_manifest, single, *common))

    ddp = tmp_path / "ddp"
    port = _free_port()
    code = "import sys; from crisscross_core.train import train; train('tiny_cpu', sys.argv[1:])"
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", code, *tiny(demo_manifest, ddp, *common)],
                                      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]

    one, two = read_metrics(single), read_metrics(ddp)
    assert [r["step"] for r in two] == list(range(1, steps + 1))
    assert all(r["world_size"] == 2 for r in two)
    for r1, r2 in zip(one, two):
        tol = 1e-5 if r1["step"] <= 2 else 1e-4  # float noise, amplified a little by Adam
        for key in ("loss", "Lv1v2", "La1a2", "Lv1a1", "Lv2a2", "Lv1a2", "La1v2"):
            assert r2[key] == pytest.approx(r1[key], abs=tol), (r1["step"], key)


def test_rng_states_survive_a_checkpoint(tmp_path):
    import random as pyrandom

    import numpy as np

    from crisscross_core.checkpoint import atomic_save
    from crisscross_core.train import restore_rng, rng_state
    torch.manual_seed(3), np.random.seed(3), pyrandom.seed(3)
    atomic_save({"rng": rng_state()}, tmp_path / "c.pt")
    expected = (torch.rand(3), np.random.rand(3), pyrandom.random())
    torch.manual_seed(99), np.random.seed(99), pyrandom.seed(99)  # move every generator elsewhere
    restore_rng(safe_load(tmp_path / "c.pt")["rng"])            # weights_only load
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert pyrandom.random() == expected[2]


@pytest.mark.slow
def test_compiled_step_follows_the_eager_trajectory(tmp_path, demo_manifest):
    """train.compile=true (inductor, here on CPU) keeps the training math: the same losses as eager
    within float noise over 3 steps. (bf16 autocast is refused on CPU: see _check_amp.)"""
    common = [*NO_RANDOM_AUG, "optim.max_steps=3"]
    train("tiny_cpu", tiny(demo_manifest, tmp_path / "eager", *common))
    train("tiny_cpu", tiny(demo_manifest, tmp_path / "compiled", *common, "train.compile=true"))
    eager, compiled = read_metrics(tmp_path / "eager"), read_metrics(tmp_path / "compiled")
    assert [r["step"] for r in compiled] == [1, 2, 3]
    for r1, r2 in zip(eager, compiled):
        for key in ("loss", "Lv1v2", "La1a2", "Lv1a1", "Lv2a2", "Lv1a2", "La1v2"):
            assert r2[key] == pytest.approx(r1[key], abs=1e-4), (r1["step"], key)
