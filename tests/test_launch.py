"""crisscross_core.launch without Slurm: local + debug executors, snapshot isolation, error surfacing,
profiles, the sbatch text a profile produces, the CLI, and the ipywidgets job panel."""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from crisscross_core.config import ConfigError  # noqa: E402
from crisscross_core import launch  # noqa: E402
from crisscross_core.launch import JobFailedError, LaunchError, attach, load_profile, submit  # noqa: E402

TESTS = Path(__file__).resolve().parent
FAKE = "launch_helpers:fake_train"  # tests/launch_helpers.py, a stand-in with train's contract


def fake(tmp_path, name, overrides=(), cluster="local", steps=3, sleep_s=0.05, **kw):
    return submit("tiny_cpu", [f"optim.max_steps={steps}", *overrides], cluster=cluster,
                  run_dir=tmp_path / name, target=FAKE, python_path=[str(TESTS)],
                  target_kwargs={"sleep_s": sleep_s}, time_min=5, **kw)


def test_local_two_tasks_reduce_and_run_from_the_snapshot(tmp_path):
    job = fake(tmp_path, "run", tasks_per_node=2)
    out = job.wait(timeout=120)
    assert job.status() == "COMPLETED"
    snap = Path(job.meta["snapshot"])
    assert snap.parent == job.run_dir / "code" and (snap / "crisscross_core" / "train.py").is_file()
    # the job imported the snapshot, not the live package the notebook uses
    for rank in (0, 1):
        info = json.loads((job.run_dir / f"rank{rank}.json").read_text())
        assert Path(info["crisscross_core_file"]).parent == snap / "crisscross_core"
        assert Path(info["launch_file"]).parent == snap / "crisscross_core"
        assert info["world_size"] == 2
    assert launch.__file__ != info["launch_file"]
    rows = job.metrics()
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(r["rank_sum"] == 3.0 for r in rows)  # all_reduce over ranks 0 and 1 of (rank + 1)
    assert out["world_size"] == 2 and out["steps"] == 3
    assert "Job completed successfully" in job.tail(50)
    # a later handle for the same run directory sees the same job
    again = attach(job.run_dir)
    assert again.job_id == job.job_id and again.status() == "COMPLETED"


def test_local_executor_runs_the_real_train(tmp_path):
    """The default target, crisscross_core.train:train, from the snapshot, 2 steps on real clips."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from launch_helpers import clips_manifest, real_overrides
    data = clips_manifest(tmp_path)
    if data is None:
        pytest.skip("../shared/data/clips is absent")
    job = submit("tiny_cpu", real_overrides(*data, "optim.max_steps=2"), cluster="local",
                 run_dir=tmp_path / "real", time_min=5)
    out = job.wait(timeout=240)
    assert job.status() == "COMPLETED" and out["step"] == 2
    assert [r["step"] for r in job.metrics()] == [1, 2]
    assert (job.run_dir / "checkpoint.pt").is_file() and (job.run_dir / "config.yaml").is_file()


def test_debug_runs_in_process_and_restores_environment(tmp_path):
    before = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "CRISSCROSS_JOB_ATTEMPT")}
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    job = fake(tmp_path, "dbg", cluster="debug")
    out = job.wait()
    assert job.status() == "COMPLETED"
    assert out["world_size"] == 1 and [r["step"] for r in job.metrics()] == [1, 2, 3]
    assert {k: os.environ.get(k) for k in before} == before


def test_bad_config_is_refused_before_submission(tmp_path):
    with pytest.raises(ConfigError, match="optim.not_a_key"):
        submit("tiny_cpu", ["optim.not_a_key=1"], cluster="local", run_dir=tmp_path / "r")
    with pytest.raises(ConfigError, match="data.relation"):
        submit("tiny_cpu", ["data.relation=sideways"], cluster="local", run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    with pytest.raises(LaunchError, match="one node"):
        submit("tiny_cpu", cluster="local", nodes=2, run_dir=tmp_path / "r")


def test_job_error_surfaces_through_the_handle(tmp_path):
    job = fake(tmp_path, "bad", ["data.manifest=/nonexistent/m.csv"])
    with pytest.raises(JobFailedError, match=r"data\.manifest.*does not exist"):
        job.wait(timeout=120)
    assert job.status() == "FAILED"
    assert "data.manifest" in job.error()
    assert "ConfigError" in job.tail(40)


def cancel_after_first_step(job) -> None:
    """Wait for the job's first metrics row, cancel it, and check that wait() reports the failure."""
    import time
    t0 = time.time()
    while not job.metrics() and time.time() - t0 < 60:
        time.sleep(0.1)
    job.cancel()
    with pytest.raises(JobFailedError):
        job.wait(timeout=60)


def test_cancel_stops_a_local_job(tmp_path):
    job = fake(tmp_path, "long", steps=200, sleep_s=0.1)
    cancel_after_first_step(job)
    assert job.status() in ("CANCELLED", "FAILED")
    assert len(job.metrics()) < 200


def test_cancel_works_when_the_launching_process_ignores_sigint(tmp_path):
    """Jupyter started from a shell without job control (`jupyter lab &` in a script, nohup, a
    backgrounded CI run) passes SIGINT *ignored* to every child; the local task must still stop."""
    import signal
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        job = fake(tmp_path, "ignored", steps=200, sleep_s=0.1)
    finally:
        signal.signal(signal.SIGINT, old)
    cancel_after_first_step(job)
    assert job.status() == "CANCELLED" and len(job.metrics()) < 200


def test_profiles(tmp_path):
    lo = load_profile("loopback")
    assert lo["partition"] == "debug" and lo["gpus_per_node"] == 0
    uni = load_profile("example_university")
    assert uni["gpus_per_node"] == 8 and uni["account"] and uni["setup"]
    with pytest.raises(LaunchError, match="partitoin"):
        load_profile({"partitoin": "gpu"})
    with pytest.raises(LaunchError, match="loopback"):  # lists the profiles it knows
        load_profile("no_such_cluster")
    p = tmp_path / "mine.yaml"
    p.write_text("partition: short\ntime_min: 30\n")
    assert load_profile(str(p)) == {"partition": "short", "time_min": 30}
    with pytest.raises(LaunchError, match="one task per GPU"):
        submit("tiny_cpu", cluster=str(p), gpus_per_node=8, tasks_per_node=2, run_dir=tmp_path / "x")


@pytest.mark.skipif(shutil.which("srun") is None or shutil.which("sbatch") is None,
                    reason="Slurm client tools not installed")
def test_university_profile_sbatch_text(tmp_path):
    """2 nodes x 8 GPUs: one task per GPU, the profile's lines, the snapshot python, USR2 requeue."""
    prof = load_profile("example_university")
    snap = tmp_path / "code" / "x"
    python = launch._python_command(snap, [])
    ex = launch.build_executor("slurm", prof, tmp_path / "submitit", python, nodes=2, tasks_per_node=8,
                               gpus_per_node=8, time_min=prof["time_min"], job_name="cc-paper")
    text = ex._make_submission_file_text(ex._submitit_command_str, "uid")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --partition=gpu", "#SBATCH --account=my_lab", "#SBATCH --constraint=a100_80g",
                 "#SBATCH --cpus-per-task=10", "#SBATCH --time=1440", "#SBATCH --exclusive",
                 "#SBATCH --signal=USR2@120", "module load cuda/12.4"):
        assert line in text, line
    assert f"sh -c 'cd \"$1\" && shift && exec \"$@\"' sh {snap} env PYTHONPATH={snap}" in text
    assert "srun" in text and "-u -m submitit.core._submit" in text


def test_cli_submit(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    args = parser.parse_args(["--profile", "debug", "--nodes", "1", "--run-dir", str(tmp_path / "cli"),
                              "--wait", "tiny_cpu", "data.manifest=/nonexistent/m.csv"])
    assert args.cluster == "debug" and args.overrides == ["data.manifest=/nonexistent/m.csv"]
    assert launch.run(args) == 1  # the real train refuses the missing manifest; the CLI says why
    assert "data.manifest" in capsys.readouterr().err
    args = parser.parse_args(["--profile", "loopback", "--nodes", "2", "--gpus-per-node", "8",
                              "paper_kinetics400", "optim.epochs=3"])
    assert (args.nodes, args.gpus_per_node, args.config) == (2, 8, "paper_kinetics400")
    args = parser.parse_args(["-c", "paper_kinetics400", "optim.epochs=3", "optim.batch_size=512"])
    assert launch._config_and_overrides(args) == ("paper_kinetics400",
                                                  ["optim.epochs=3", "optim.batch_size=512"])
    with pytest.raises(LaunchError, match="give a config"):
        launch._config_and_overrides(parser.parse_args(["optim.epochs=3"]))


# ----------------------------------------------------------------------------- the job panel

class FakeHandle:
    job_id, run_dir = "42", "/tmp/run"

    def __init__(self):
        self.state, self.rows, self.cancelled = "RUNNING", [], 0

    def status(self):
        return self.state

    def metrics(self):
        return list(self.rows)

    def tail(self, n=20):
        return "\n".join(f"line {i}" for i in range(n))

    def cancel(self):
        self.cancelled += 1
        self.state = "CANCELLED"


def test_job_panel_refresh_plot_and_cancel():
    pytest.importorskip("ipywidgets")
    from crisscross_core.viz.job_panel import JobPanel

    h = FakeHandle()
    panel = JobPanel(h)
    assert panel.refresh() == {"state": "RUNNING", "step": None, "samples_per_s": None, "loss": None,
                               "n_points": 0}
    h.rows = [{"step": s, "loss": 1.0 / s, "samples_per_s": 10.0 * s} for s in (1, 2, 3)]
    h.rows.append({"kind": "epoch", "step": 3, "epoch": 1})  # not a step row: ignored
    view = panel.refresh()
    assert view["step"] == 3 and view["n_points"] == 3
    assert panel.step.value == "step: 3" and panel.speed.value == "samples/s: 30.0"
    assert "0.3333" in panel.loss.value and panel.state.value == "state: RUNNING"
    png1 = bytes(panel.plot.value)
    assert png1[:8] == b"\x89PNG\r\n\x1a\n"
    h.rows.insert(-1, {"step": 4, "loss": 0.1, "samples_per_s": 50.0})
    panel.refresh()
    assert bytes(panel.plot.value) != png1  # the curve was redrawn with the new point
    assert panel.log.value.startswith("line 0")
    assert not panel.cancel_button.disabled
    panel.cancel_button.click()
    assert h.cancelled == 1 and panel.cancel_button.disabled
    panel.refresh()
    assert panel.state.value == "state: CANCELLED" and panel.cancel_button.disabled


def test_job_panel_background_refresh_stops_when_done():
    pytest.importorskip("ipywidgets")
    from crisscross_core.viz.job_panel import JobPanel

    h = FakeHandle()
    h.state = "COMPLETED"
    panel = JobPanel(h).start(interval=0.05)
    panel._thread.join(timeout=10)
    assert not panel._thread.is_alive() and panel.state.value == "state: COMPLETED"
    panel.stop()


def test_job_panel_shows_the_latest_online_evaluation(tmp_path):
    """A real JobHandle over a run directory whose metrics.jsonl holds online evaluations."""
    pytest.importorskip("ipywidgets")
    from crisscross_core.jobs import JobHandle
    from crisscross_core.viz.job_panel import JobPanel
    rows = [{"kind": "step", "step": 10, "loss": -0.2, "samples_per_s": 5.0},
            {"kind": "eval", "step": 10, "n_items": 200, "knn_video": 0.25, "knn_audio": 0.5, "r1_a2v": 0.02,
             "r1_v2a": 0.03, "chance_r1": 0.005, "sync_cos": 0.4, "async_cos": 0.3, "sync_gap": 0.1, "seconds": 1.5}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    class Job:
        job_id, state = "inprocess-1", "RUNNING"

    h = JobHandle(Job(), tmp_path, {"kind": "debug", "cluster": "debug", "submitted_at": "2026-12-01T00:00:00"})
    panel = JobPanel(h)
    view = panel.refresh()
    assert view["step"] == 10
    assert "online eval at step 10 (200 held-out clips)" in panel.online.value
    assert "kNN top-1 video 25.0 %" in panel.online.value and "R@1 a→v 2.0 %" in panel.online.value
