"""crisscross_core.launch on a real Slurm cluster: the loopback cluster of tests/slurm_cluster.sh
(two slurmd "nodes", lo-node1 and lo-node2, on this machine).

The session fixture starts the cluster when Slurm is installed and we are root (and stops it again
at the end unless it was already up or CRISSCROSS_SLURM_KEEP=1); otherwise every test here skips.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from crisscross_core.launch import JobFailedError, submit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import launch_helpers  # noqa: E402
from launch_helpers import real_overrides  # noqa: E402

pytestmark = pytest.mark.slurm

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SCRIPT = TESTS / "slurm_cluster.sh"
CLUSTER_DIR = Path(os.environ.get("CC_SLURM_DIR", "/tmp/crisscross-slurm"))
from shared_paths import SHARED as DATA
FAKE = "launch_helpers:fake_train"


@pytest.fixture(scope="session")
def slurm_cluster():
    if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
        pytest.skip("Slurm is not installed (tests/slurm_cluster.sh start installs it as root)")
    env = dict(os.environ, CC_SLURM_DIR=str(CLUSTER_DIR))
    up = subprocess.run([str(SCRIPT), "status"], env=env, capture_output=True).returncode == 0
    if not up:
        if os.geteuid() != 0 or os.environ.get("CRISSCROSS_SLURM_START", "1") == "0":
            pytest.skip("loopback Slurm cluster is not up (run tests/slurm_cluster.sh start as root)")
        r = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            pytest.skip(f"could not start the loopback Slurm cluster: {r.stderr[-800:]}")
    os.environ["SLURM_CONF"] = str(CLUSTER_DIR / "slurm.conf")
    yield CLUSTER_DIR
    if not up and os.environ.get("CRISSCROSS_SLURM_KEEP") != "1":
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def clips_manifest(tmp_path_factory):
    """A manifest of four real clips from ../shared/data/clips (probed, not copied)."""
    out = launch_helpers.clips_manifest(tmp_path_factory.mktemp("manifest"))
    if out is None:
        pytest.skip(f"{DATA / 'clips'} is absent")
    return out


def scontrol(job_id) -> dict:
    out = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], capture_output=True,
                         text=True).stdout
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def wait_for(cond, timeout, what):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def release_requeued(job_id, timeout=60):
    """A requeued job waits ~2 min (BeginTime = cred_expire) before it may start again; let it
    start now. Not in the same second as the kill: slurmd refuses credentials issued in the second
    it revoked the old ones ("Job credential revoked"), so wait 2 s after the requeue first."""
    wait_for(lambda: scontrol(job_id).get("JobState") == "PENDING" and scontrol(job_id).get("Restarts") != "0",
             timeout, f"job {job_id} to be requeued")
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)


def test_two_nodes_one_task_each_reduce_over_gloo_from_the_snapshot(slurm_cluster, tmp_path):
    job = submit("tiny_cpu", ["optim.max_steps=3"], cluster="loopback", nodes=2, tasks_per_node=1,
                 run_dir=tmp_path / "run", target=FAKE, python_path=[str(TESTS)],
                 target_kwargs={"sleep_s": 0.05}, time_min=5)
    out = job.wait(timeout=120)
    assert job.status() == "COMPLETED"
    ranks = [json.loads((job.run_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert sorted(r["node"] for r in ranks) == ["lo-node1", "lo-node2"]
    snap = Path(job.meta["snapshot"])
    assert all(Path(r["crisscross_core_file"]).parent == snap / "crisscross_core" for r in ranks)
    assert [r["step"] for r in job.metrics()] == [1, 2, 3]
    assert all(r["rank_sum"] == 3.0 and r["world_size"] == 2 for r in job.metrics())
    assert out["world_size"] == 2
    assert "global_rank=1(2)" in job.tail(50, task=1)


def test_two_node_pretrain_requeued_midway_resumes_with_continuous_steps(slurm_cluster, tmp_path,
                                                                         clips_manifest):
    """The real train(cfg), world size 2 over gloo; `scontrol requeue` once a checkpoint exists; it
    resumes from checkpoint.pt with no flag and finishes with every step logged once."""
    manifest, root = clips_manifest
    steps = 24  # enough steps after the first checkpoint that the requeue lands mid-run (8 raced once)
    job = submit("tiny_cpu", real_overrides(manifest, root, f"optim.max_steps={steps}", "optim.epochs=100"), cluster="loopback",
                 nodes=2, tasks_per_node=1, run_dir=tmp_path / "pre", time_min=10)
    wait_for(lambda: (job.run_dir / "checkpoint.pt").is_file() or job.done(), 240, "a checkpoint")
    assert not job.done(), job.tail(40)
    subprocess.run(["scontrol", "requeue", job.job_id], check=True)
    release_requeued(job.job_id)
    summary = job.wait(timeout=240)
    assert job.status() == "COMPLETED"
    rows = job.metrics()
    assert [r["step"] for r in rows] == list(range(1, steps + 1))  # no gap, no repeat
    assert all(r["world_size"] == 2 and math.isfinite(r["loss"]) for r in rows)
    assert summary["step"] == steps and scontrol(job.job_id).get("Restarts") == "1"
    log = job.tail(400)
    assert log.count("Starting with JobEnvironment") == 2
    assert "resumed from" in log and "checkpoint.pt at step" in log  # resumed, not restarted


def test_preemption_signal_checkpoints_runner_and_requeues(slurm_cluster, tmp_path):
    """USR2 (what Slurm sends before a time limit or on preemption): submitit calls
    Runner.checkpoint(), requeues, and the checkpointed runner (attempt 2) finishes the run."""
    job = submit("tiny_cpu", ["optim.max_steps=12"], cluster="loopback", nodes=2, tasks_per_node=1,
                 run_dir=tmp_path / "pre", target=FAKE, python_path=[str(TESTS)],
                 target_kwargs={"sleep_s": 0.3}, time_min=5)
    wait_for(lambda: len(job.metrics()) >= 3, 120, "three logged steps")
    subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True)
    release_requeued(job.job_id)
    job.wait(timeout=120)
    steps = [r["step"] for r in job.metrics()]
    assert sorted(set(steps)) == list(range(1, 13))
    assert len({r["pid"] for r in job.metrics()}) == 2  # two attempts
    assert json.loads((job.run_dir / "rank0.json").read_text())["attempt"] == "2"
    assert "checkpoint" in job.tail(400).lower() and "Requeued job" in job.tail(400)


def test_bad_config_error_reaches_the_handle(slurm_cluster, tmp_path):
    job = submit("tiny_cpu", ["data.manifest=/nonexistent/m.csv"], cluster="loopback", nodes=2,
                 tasks_per_node=1, run_dir=tmp_path / "bad", time_min=5)
    with pytest.raises(JobFailedError, match=r"data\.manifest") as err:
        job.wait(timeout=120)
    assert job.meta["snapshot"] in str(err.value)  # the traceback runs through the snapshot
    assert job.status() == "FAILED"
    assert "ConfigError" in job.tail(60)


def test_cancel_from_the_handle(slurm_cluster, tmp_path):
    job = submit("tiny_cpu", ["optim.max_steps=500"], cluster="loopback", nodes=1, run_dir=tmp_path / "c",
                 target=FAKE, python_path=[str(TESTS)], target_kwargs={"sleep_s": 0.2}, time_min=5)
    wait_for(lambda: len(job.metrics()) >= 1, 120, "a logged step")
    job.cancel()
    wait_for(lambda: job.status() == "CANCELLED", 60, "CANCELLED")
    with pytest.raises(JobFailedError, match="CANCELLED"):
        job.wait(timeout=30)


def test_sbatch_template_two_nodes_requeue_on_usr1(slurm_cluster, tmp_path, clips_manifest):
    """slurm/pretrain.sbatch as a user would run it (GPU line dropped: the loopback nodes are CPU);
    USR1 to the batch shell (what --signal=B:USR1@180 sends before the limit) requeues it and the
    run resumes from its checkpoint."""
    manifest, root = clips_manifest
    text = (REPO / "slurm" / "pretrain.sbatch").read_text()
    script = tmp_path / "pretrain_cpu.sbatch"
    script.write_text(re.sub(r"^#SBATCH --gpus-per-node.*\n", "", text, flags=re.M))
    env = dict(os.environ, RUN_DIR=str(tmp_path / "run"), PYTHON=sys.executable)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the .pyc files written show where imports came from
    cmd = ["sbatch", "--parsable", "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1",
           f"--output={tmp_path}/%j.out", f"--chdir={REPO}", str(script), "tiny_cpu",
           *real_overrides(manifest, root, "optim.max_steps=4")]
    job_id = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.strip()
    metrics = tmp_path / "run" / "metrics.jsonl"
    wait_for(lambda: metrics.is_file() and '"step": 2' in metrics.read_text(), 240, "step 2")
    subprocess.run(["scancel", "--batch", "--signal=USR1", job_id], check=True)
    release_requeued(job_id)
    wait_for(lambda: scontrol(job_id).get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"),
             240, f"sbatch job {job_id}")
    log = (tmp_path / f"{job_id}.out").read_text()
    assert scontrol(job_id)["JobState"] == "COMPLETED", log[-3000:]
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r.get("kind", "step") == "step"]
    assert [r["step"] for r in steps] == [1, 2, 3, 4] and all(r["world_size"] == 2 for r in steps)
    assert "USR1: requeueing" in log and "restarts=1" in log
    snap = tmp_path / "run" / "code" / f"sbatch-{job_id}" / "crisscross_core"
    assert (snap / "train.py").is_file()
    # the tasks imported the snapshot (its bytecode cache was written), though cwd was the checkout
    assert list((snap / "__pycache__").glob("config.*.pyc")), log[-2000:]
    assert list((snap / "models" / "__pycache__").glob("*.pyc"))
    assert "tasks=2 master=lo-node1:" in log


def test_sweep_as_one_job_array_resubmits_only_the_failed_task(slurm_cluster, tmp_path, clips_manifest):
    """Four real train(cfg) runs as one Slurm job array (two at a time), one failing on purpose (its
    manifest does not exist yet): the handle shows 3 done and 1 failed with its error line; after the
    cause is removed, the same call resubmits only that run, which then completes; 4 rows in the table."""
    from crisscross_core.sweep import sweep
    manifest, root = clips_manifest
    later = tmp_path / "later.csv"
    runs = [["train.seed=0"], ["train.seed=1"], ["train.seed=2"], [f"data.manifest={later}"]]
    kw = dict(runs=runs, overrides=real_overrides(manifest, root, "optim.max_steps=2"), cluster="loopback",
              max_parallel=2, sweep_dir=tmp_path / "sw", time_min=10)
    s = sweep("tiny_cpu", **kw)
    ids = {r["job"]["id"] for r in s.runs}
    assert len(ids) == 4 and len({i.split("_")[0] for i in ids}) == 1          # one array, four tasks
    st = s.wait(timeout=400)
    assert sorted(st.values()) == ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"], st
    assert "data.manifest" in s.errors()["manifest=later"]
    shutil.copy(manifest, later)
    again = sweep("tiny_cpu", **kw)
    resubmitted = [r["name"] for r in again.runs if r["job"]["id"] not in ids]
    assert resubmitted == ["manifest=later"]
    assert set(again.wait(timeout=400).values()) == {"COMPLETED"}
    table = again.rows()
    assert len(table) == 4 and all(r["step"] == 2 for r in table)
