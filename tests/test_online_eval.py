"""Seeing learning while it happens and taking the encoders anywhere: online evaluation inside
train(cfg) (without changing the training stream), W&B that keeps one run across kill -9 and
resume, safetensors exports, from_pretrained and torch.hub."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from crisscross_core.checkpoint import load_released, safe_load
from crisscross_core.config import ConfigError
from crisscross_core.online_eval import knn_loo_top1, recall_at_1
from crisscross_core.runlog import read_metrics
from crisscross_core.tracking import history_items
from crisscross_core.train import train

REPO = Path(__file__).resolve().parents[1]


def tiny(manifest, run_dir, *extra):
    return [f"data.manifest={manifest}", f"train.run_dir={run_dir}", "optim.batch_size=8",
            "optim.epochs=2", "data.num_workers=0", "train.log_every=1", "train.checkpoint_every=2",
            "train.progress=false", "train.tensorboard=false", "data.clips_per_video=1", *extra]


# ----------------------------------------------------------------------------- online evaluation

def test_online_eval_leaves_training_bit_identical_and_logs_its_numbers(tmp_path, demo_manifest):
    plain = train("tiny_cpu", tiny(demo_manifest, tmp_path / "plain", "optim.max_steps=4"))
    watched = train("tiny_cpu", tiny(demo_manifest, tmp_path / "watched", "optim.max_steps=4",
                                     f"eval.manifest={demo_manifest}", "eval.split=test", "eval.every=2"))
    a, b = safe_load(tmp_path / "plain" / "checkpoint.pt"), safe_load(tmp_path / "watched" / "checkpoint.pt")
    assert plain["step"] == watched["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k            # bit for bit, BN buffers included
    evals = read_metrics(tmp_path / "watched", kind="eval")
    assert [e["step"] for e in evals] == [2, 4]
    e = evals[-1]
    assert e["n_items"] == 8 and e["chance_r1"] == pytest.approx(1 / 8)
    assert {"knn_video", "knn_audio", "r1_a2v", "r1_v2a"} <= set(e)
    assert e["sync_gap"] == pytest.approx(e["sync_cos"] - e["async_cos"])
    assert not read_metrics(tmp_path / "plain", kind="eval")


def test_knn_and_recall_measure_what_they_say():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=g) * 5
    labels = torch.arange(30) % 3
    x = centres[labels] + 0.1 * torch.randn(30, 16, generator=g)
    assert knn_loo_top1(x, labels, k=5) == 1.0
    assert knn_loo_top1(torch.randn(30, 16, generator=g), labels, k=5) < 0.7
    q = torch.randn(10, 8, generator=g)
    assert recall_at_1(q, q + 0.01) == 1.0
    assert recall_at_1(q, q.roll(1, 0)) == 0.0


# ----------------------------------------------------------------------------- W&B

def test_wandb_offline_keeps_one_run_with_each_step_once_across_kill_and_resume(tmp_path, demo_manifest):
    pytest.importorskip("wandb")
    run = tmp_path / "run"
    args = tiny(demo_manifest, run, "optim.epochs=6", "train.checkpoint_every=4", "wandb.enabled=true",
                "wandb.mode=offline", f"eval.manifest={demo_manifest}", "eval.split=test", "eval.every=6")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), WANDB_SILENT="true")
    cmd = [sys.executable, "-m", "crisscross_core.cli", "pretrain", "-c", "tiny_cpu", *args]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 300:                          # past the checkpoint at 4, before the one at 8
        steps = [r["step"] for r in read_metrics(run)]
        if steps and steps[-1] >= 6:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = read_metrics(run)[-1]["step"]
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    files = sorted(run.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 2                                  # one file per process ...
    ids = {f.parent.name.rsplit("-", 1)[-1] for f in files}  # ... of one W&B run id
    train_steps, eval_steps = [], []
    for f in files:                                         # rows as wandb wrote them (in file order)
        for items in history_items(f):
            if "train/loss" in items:
                train_steps.append(items["trainer/step"])
            if "eval/sync_gap" in items:
                eval_steps.append(items["trainer/step"])
    assert ids == {(run / "wandb_run_id").read_text().strip()}
    assert train_steps == list(range(1, 25)), (killed_at, train_steps)   # 6 epochs x 4 steps, each once
    assert eval_steps == [6, 12, 18, 24]


def test_without_wandb_installed_enabled_is_a_clear_error_and_disabled_runs(tmp_path, demo_manifest,
                                                                           monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)       # `import wandb` raises ImportError
    with pytest.raises(ConfigError, match=r"wandb.enabled.*not installed"):
        train("tiny_cpu", tiny(demo_manifest, tmp_path / "r", "optim.max_steps=1", "wandb.enabled=true"))
    assert not (tmp_path / "r").exists()
    assert train("tiny_cpu", tiny(demo_manifest, tmp_path / "r", "optim.max_steps=1"))["step"] == 1


# ----------------------------------------------------------------------------- encoders that travel

def test_safetensors_export_from_pretrained_and_torch_hub(tmp_path, demo_manifest):
    pytest.importorskip("safetensors")
    from crisscross_core.models import AudioResNet, R2Plus1D
    run = tmp_path / "run"
    s = train("tiny_cpu", tiny(demo_manifest, run, "optim.max_steps=2"))
    vid_st, aud_st = Path(s["exported"]["vid_safetensors"]), Path(s["exported"]["aud_safetensors"])
    arch = json.loads(vid_st.with_suffix(".json").read_text())
    assert arch["modality"] == "video" and arch["depth"] == 10 and arch["width"] == 0.25
    assert b"pickle" not in vid_st.read_bytes()[:200] and vid_st.read_bytes()[8:9] == b"{"   # JSON header
    released = load_released(s["exported"]["vid"], "video")               # the released format still loads
    video = R2Plus1D.from_pretrained(vid_st)
    for k, v in video.state_dict().items():
        assert torch.equal(v, released[k]), k
    audio = AudioResNet.from_pretrained(run)                               # a run directory works too
    assert audio.width == 0.25 and not audio.training
    hub = torch.hub.load(str(REPO), "crisscross_audio", source="local", weights=str(aud_st), trust_repo=True)
    x = torch.randn(2, 1, 40, 101)
    assert torch.equal(hub(x), audio(x))
    rand = torch.hub.load(str(REPO), "crisscross_video", source="local", width=0.25, depth=10)
    assert rand.output_dim == 128
    with pytest.raises(Exception, match="audio backbone, not a video"):
        R2Plus1D.from_pretrained(aud_st)
