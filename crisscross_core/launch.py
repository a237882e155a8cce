"""Submit `train(cfg)` to Slurm, to local subprocesses or in-process, and watch it from a notebook.

    job = submit("tiny_cpu", ["optim.max_steps=20"], cluster="loopback", nodes=2, tasks_per_node=1)
    job.status(); job.metrics()[-1]; print(job.tail(20)); job.wait(); job.cancel()

`cluster` is "debug" (in this process, the live code), "local" (submitit LocalExecutor: subprocesses
on this machine, one node) or a Slurm profile (a name in slurm/profiles/, a YAML path or a dict; see
slurm/README.md). One task per GPU: tasks_per_node = gpus_per_node, or given explicitly on CPU.

Every Slurm or local job runs a snapshot of the `crisscross_core` source copied at submission into
`<run_dir>/code/<timestamp>/`: the worker starts with that directory as its working directory and
PYTHONPATH, so later edits in the notebook cannot change a queued or requeued job. The pickled
callable is a `Runner` (a submitit `Checkpointable`): on timeout or preemption submitit requeues it,
and `train` resumes from `<run_dir>/checkpoint.pt` with no flag.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

try:  # submitit is an optional dependency ([cluster]); the CLI parser works without it
    import submitit
    from submitit.helpers import Checkpointable as _CheckpointableBase
except ImportError:  # pragma: no cover
    submitit = None
    _CheckpointableBase = object

DEFAULT_TARGET = "crisscross_core.train:train"
PROFILE_DIRS = [Path(p) for p in os.environ.get("CRISSCROSS_PROFILES", "").split(os.pathsep) if p] + [
    Path(__file__).resolve().parents[1] / "slurm" / "profiles"]
# Profile keys (slurm/README.md) -> SlurmExecutor parameter names.
_PROFILE_TO_SLURM = {"partition": "partition", "account": "account", "qos": "qos",
                     "constraint": "constraint", "cpus_per_task": "cpus_per_task",
                     "signal_delay_s": "signal_delay_s", "exclude": "exclude"}
_PROFILE_KEYS = set(_PROFILE_TO_SLURM) | {"time_min", "mem_gb", "gpus_per_node", "tasks_per_node",
                                         "setup", "sbatch", "env", "max_num_timeout", "description",
                                         "srun_args"}
_FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "DEADLINE",
          "BOOT_FAIL", "PREEMPTED_FINAL"}


class LaunchError(RuntimeError):
    """A profile, an executor or a submission is wrong; the message says which and how to fix it."""


class JobFailedError(RuntimeError):
    """The job ended without a result; the message carries error.txt or the worker's traceback."""


# ----------------------------------------------------------------------------- the job-side runner

class Runner(_CheckpointableBase):
    """The pickled callable. In the job: export torch.distributed env vars from submitit's job
    environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), then call `target(config,
    None, **target_kwargs)`. `checkpoint()` (called by submitit on timeout/preemption) resubmits
    itself; the target resumes from its own checkpoint."""

    def __init__(self, target: str, config: str, target_kwargs: Optional[dict] = None):
        self.target, self.config, self.target_kwargs = target, config, dict(target_kwargs or {})
        self.attempt = 0

    def __call__(self) -> Any:
        self.attempt += 1
        env_keys = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                    "CRISSCROSS_JOB_ATTEMPT")
        saved = {k: os.environ.get(k) for k in env_keys}
        try:
            if _in_submitit_job():
                submitit.helpers.TorchDistributedEnvironment().export(
                    set_cuda_visible_devices=False, overwrite=True)
            os.environ["CRISSCROSS_JOB_ATTEMPT"] = str(self.attempt)
            return resolve_target(self.target)(self.config, None, **self.target_kwargs)
        finally:  # matters only in-process ("debug"): leave the notebook's environment as it was
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Requeue this same runner; training state lives in <run_dir>/checkpoint.pt."""
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _in_submitit_job() -> bool:
    """True inside a submitit Slurm/local job (not in-process runs)."""
    if submitit is None:
        return False
    try:
        return submitit.JobEnvironment().activated()
    except RuntimeError:  # "Could not figure out which environment the job is running in"
        return False


def resolve_target(target: str):
    """'package.module:function' -> the function (imported in the job, i.e. from the snapshot)."""
    module, _, name = target.partition(":")
    if not name:
        raise LaunchError(f"target {target!r} must look like 'package.module:function'")
    return getattr(importlib.import_module(module), name)


# ----------------------------------------------------------------------------- profiles, snapshot

def load_profile(cluster: str | Path | dict) -> dict:
    """A profile dict from a name in PROFILE_DIRS, a YAML path or a dict; unknown keys are errors."""
    if isinstance(cluster, dict):
        prof, where = dict(cluster), "<dict>"
    else:
        import yaml
        path = Path(cluster)
        if not path.suffix:
            cands = [d / f"{cluster}.yaml" for d in PROFILE_DIRS]
            path = next((c for c in cands if c.is_file()), cands[-1])
        if not path.is_file():
            names = sorted(p.stem for d in PROFILE_DIRS if d.is_dir() for p in d.glob("*.yaml"))
            raise LaunchError(f"cluster profile {str(cluster)!r} not found (looked for {path}); "
                              f"use 'local', 'debug', one of {names} or a YAML path")
        prof, where = (yaml.safe_load(path.read_text()) or {}), str(path)
    unknown = set(prof) - _PROFILE_KEYS
    if unknown:
        raise LaunchError(f"profile {where}: unknown key(s) {sorted(unknown)}; valid: {sorted(_PROFILE_KEYS)}")
    return prof


def snapshot_code(run_dir: Path) -> Path:
    """Copy the crisscross_core package into <run_dir>/code/<timestamp>/ and return that directory."""
    src = Path(__file__).resolve().parent
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    dest = run_dir / "code" / stamp
    shutil.copytree(src, dest / "crisscross_core",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    return dest


def _python_command(snapshot: Path, python_path: list[str]) -> str:
    """The interpreter command submitit puts before `-u -m submitit.core._submit <folder>`:
    `sh -c 'cd "$1" && shift && exec "$@"' sh <snap> env PYTHONPATH=<snap>:... <python>`.
    The working directory (sys.path[0] under -m) and PYTHONPATH are the snapshot, so the job
    imports crisscross_core from it, never from the checkout or an editable install.
    (POSIX sh, not `env -C`, which older coreutils on clusters lack.)"""
    parts = [str(snapshot)] + [str(Path(p).resolve()) for p in python_path]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    words = ["sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", str(snapshot),
             "env", "PYTHONPATH=" + os.pathsep.join(parts), sys.executable]
    return " ".join(shlex.quote(w) for w in words)


# ----------------------------------------------------------------------------- submit

def submit(cfg: Any = "tiny_cpu", overrides: Optional[list[str]] = None, *, cluster: str | Path | dict = "local",
           nodes: int = 1, gpus_per_node: Optional[int] = None, tasks_per_node: Optional[int] = None,
           time_min: Optional[int] = None, run_dir: Optional[str] = None, job_name: Optional[str] = None,
           target: str = DEFAULT_TARGET, target_kwargs: Optional[dict] = None,
           python_path: Optional[list[str]] = None, **slurm: Any) -> "JobHandle":
    """Validate `cfg` (+ overrides), snapshot the code and submit one `Runner`; return a JobHandle.

    cfg: preset name, YAML path or Config. A bad config raises ConfigError here, before submission.
    cluster: "debug" | "local" | Slurm profile (name, YAML path, dict).
    gpus_per_node: GPUs per node (one task each); tasks_per_node defaults to it (or 1 on CPU).
    slurm: extra SlurmExecutor parameters (e.g. partition="gpu", exclusive=True) over the profile.
    """
    from crisscross_core.config import load_config, save_config

    config = load_config(cfg, overrides)
    if run_dir is not None:
        config.train.run_dir = str(run_dir)
    for key in ("manifest", "root"):  # the job's working directory is the snapshot, not ours
        value = getattr(config.data, key)
        if value and not Path(value).expanduser().is_absolute():
            setattr(config.data, key, str(Path(value).expanduser().resolve()))
    rdir = Path(config.train.run_dir).expanduser().resolve()
    config.train.run_dir = str(rdir)
    rdir.mkdir(parents=True, exist_ok=True)
    kind = cluster if cluster in ("local", "debug") else "slurm"
    prof = {} if kind != "slurm" else load_profile(cluster)
    gpus = int(gpus_per_node if gpus_per_node is not None else prof.get("gpus_per_node", 0))
    ntasks = int(tasks_per_node or gpus or prof.get("tasks_per_node", 1))
    if gpus and ntasks != gpus:
        raise LaunchError(f"tasks_per_node={ntasks} but gpus_per_node={gpus}: use one task per GPU")
    timeout = int(time_min or prof.get("time_min", 60))
    if kind == "local" and nodes != 1:
        raise LaunchError("cluster='local' runs on one node; use nodes=1 or a Slurm profile")

    submitted_at = _dt.datetime.now().isoformat(timespec="seconds")
    snap = snapshot_code(rdir)
    cfg_path = snap / "config.yaml"
    save_config(config, cfg_path)
    folder = rdir / "submitit"
    python = _python_command(snap, python_path or [])
    runner = Runner(target, str(cfg_path), target_kwargs)
    ex = build_executor(kind, prof, folder, python, nodes=nodes, tasks_per_node=ntasks, gpus_per_node=gpus,
                        time_min=timeout, job_name=job_name or f"cc-{config.name}", **slurm)
    job = InProcessJob(runner, folder) if ex is None else ex.submit(runner)
    meta = {"job_id": str(job.job_id), "cluster": str(cluster) if not isinstance(cluster, dict) else "<dict>",
            "kind": kind, "folder": str(folder), "snapshot": str(snap), "target": target,
            "nodes": nodes, "tasks_per_node": ntasks, "gpus_per_node": gpus,
            "submitted_at": submitted_at}
    (rdir / "job.json").write_text(json.dumps(meta, indent=1))
    return JobHandle(job, rdir, meta)


def build_executor(kind: str, prof: dict, folder: Path, python: Optional[str] = None, *, nodes: int = 1,
                   tasks_per_node: int = 1, gpus_per_node: int = 0, time_min: int = 60,
                   job_name: str = "crisscross", **slurm: Any):
    """The submitit executor for `kind` ("debug", "local", "slurm") with the profile's parameters."""
    if submitit is None:
        raise LaunchError("submitit is not installed: pip install 'crisscross-kit[cluster]'")
    max_timeout = int(prof.get("max_num_timeout", 3))
    if kind == "debug":
        return None  # in-process: see InProcessJob
    if kind == "local":
        if nodes != 1:
            raise LaunchError("cluster='local' runs on one node; use nodes=1 or a Slurm profile")
        ex = submitit.LocalExecutor(folder, max_num_timeout=max_timeout, python=python)
        ex.update_parameters(timeout_min=time_min, tasks_per_node=tasks_per_node,
                             gpus_per_node=gpus_per_node, stderr_to_stdout=True)
        return ex
    for k, v in (prof.get("env") or {}).items():
        os.environ.setdefault(str(k), str(v))
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise LaunchError("a Slurm profile needs 'sbatch' and 'srun' on PATH; on a machine without "
                          "Slurm use cluster='local' or 'debug' (or start tests/slurm_cluster.sh)")
    ex = submitit.SlurmExecutor(folder, max_num_timeout=max_timeout, python=python)
    params = {v: prof[k] for k, v in _PROFILE_TO_SLURM.items() if prof.get(k) is not None}
    if prof.get("mem_gb"):
        params["mem"] = f"{prof['mem_gb']}GB"
    if prof.get("setup"):
        params["setup"] = list(prof["setup"])
    if prof.get("sbatch"):
        params["additional_parameters"] = dict(prof["sbatch"])
    if prof.get("srun_args"):
        params["srun_args"] = list(prof["srun_args"])
    if gpus_per_node:
        params["gpus_per_node"] = gpus_per_node
    params.update(nodes=nodes, ntasks_per_node=tasks_per_node, time=time_min, stderr_to_stdout=True,
                  job_name=job_name)
    params.update(slurm)
    ex.update_parameters(**params)
    return ex


def attach(run_dir: str | Path) -> "JobHandle":
    """Re-open the handle of the last Slurm/local job submitted for `run_dir` (e.g. after a restart)."""
    rdir = Path(run_dir).resolve()
    meta = json.loads((rdir / "job.json").read_text())
    if meta["kind"] == "debug":
        raise LaunchError(f"{rdir} was run in-process (cluster='debug'); there is no job to attach to")
    cls = submitit.SlurmJob if meta["kind"] == "slurm" else submitit.LocalJob
    tasks = list(range(int(meta["nodes"]) * int(meta["tasks_per_node"])))
    return JobHandle(cls(meta["folder"], meta["job_id"], tasks=tasks), rdir, meta)


# ----------------------------------------------------------------------------- the handle

class InProcessJob:
    """cluster="debug": run the Runner in this process (the live code, no snapshot) at the first
    wait(). Unlike submitit's DebugExecutor it never opens pdb, so a failure in a notebook is a
    JobFailedError, not a prompt."""

    def __init__(self, runner: Runner, folder: Path):
        self.runner, self.folder = runner, Path(folder)
        self.job_id = f"inprocess-{os.getpid()}-{id(self)}"
        self.state, self.traceback, self._result = "PENDING", None, None

    def run(self) -> Any:
        if self.state == "PENDING":
            import traceback
            self.state = "RUNNING"
            try:
                self._result, self.state = self.runner(), "COMPLETED"
            except Exception:  # noqa: BLE001 - kept for wait()/error()
                self.traceback, self.state = traceback.format_exc(), "FAILED"
                self.folder.mkdir(parents=True, exist_ok=True)
                (self.folder / f"{self.job_id}_0_log.out").write_text(self.traceback)
        if self.state == "FAILED":
            raise JobFailedError(self.traceback)
        return self._result

    def cancel(self, check: bool = False) -> None:
        if self.state == "PENDING":
            self.state = "CANCELLED"


def _scontrol_state(job_id: str) -> Optional[str]:
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                             text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for tok in out.split():
        if tok.startswith("JobState="):
            return tok.split("=", 1)[1]
    return None


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file; a partially written last line is skipped."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


class JobHandle:
    """A submitted job as seen from a notebook: status(), tail(n), metrics(), wait(), cancel()."""

    def __init__(self, job: Any, run_dir: Path, meta: dict):
        self.job, self.run_dir, self.meta = job, Path(run_dir), meta

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    @property
    def _tasks(self) -> list:
        return list(getattr(self.job, "_sub_jobs", None) or [self.job])

    def _has_result(self) -> bool:
        return self._tasks[0].paths.result_pickle.exists()

    def _exception(self) -> Optional[BaseException]:
        """Task 0's exception (rank 0 speaks for the job: a failing rank breaks its collectives).
        Other tasks' result files can be stale after a requeue, so they are not read."""
        t = self._tasks[0]
        if not t.paths.result_pickle.exists():
            return None
        try:
            return t.exception()
        except Exception as e:  # noqa: BLE001 - unreadable result pickle
            return e

    def __repr__(self) -> str:
        return f"JobHandle(job_id={self.job_id}, cluster={self.meta['cluster']}, run_dir={self.run_dir})"

    def status(self) -> str:
        """PENDING, RUNNING, REQUEUED, COMPLETED, FAILED, CANCELLED, ... (upper case)."""
        kind = self.meta["kind"]
        if kind == "debug":
            return self.job.state
        if kind == "local":
            st = self.job.state
            if st == "RUNNING":
                return "RUNNING"
            if st == "INTERRUPTED":
                return "CANCELLED"
            return self._outcome()
        st = _scontrol_state(self.job_id) or self.job.state  # no sacct on small clusters
        st = st.split()[0].upper()
        if st in ("UNKNOWN", "COMPLETED", "RUNNING", "COMPLETING") and self._has_result():
            return self._outcome()
        return st

    def _outcome(self) -> str:
        if not self._has_result():
            return "FAILED"
        return "FAILED" if self._exception() is not None else "COMPLETED"

    def done(self) -> bool:
        return self.status() in _FINAL

    def log_path(self, task: int = 0) -> Path:
        """The task's combined stdout+stderr file."""
        from submitit.core.utils import JobPaths
        return JobPaths(self.meta["folder"], self.job_id, task).stdout

    def tail(self, n: int = 20, task: int = 0) -> str:
        """Last `n` lines of the task's log (stdout and stderr together)."""
        p = self.log_path(task)
        return "\n".join(p.read_text(errors="replace").splitlines()[-n:]) if p.is_file() else ""

    def metrics(self, kind: Optional[str] = "step") -> list[dict]:
        """Rows of <run_dir>/metrics.jsonl (step, epoch, loss, samples_per_s, ...) of `kind`
        ("step", "epoch"; None = all; rows without a kind count as "step")."""
        rows = read_jsonl(self.run_dir / "metrics.jsonl")
        return [r for r in rows if kind is None or r.get("kind", "step") == kind]

    def error(self) -> Optional[str]:
        """error.txt from the run, else the worker's exception text, else None."""
        p = self.run_dir / "error.txt"
        if p.is_file() and p.stat().st_mtime >= self._submitted_ts() - 1:
            return p.read_text()
        if self.meta["kind"] == "debug":
            return self.job.traceback
        if self._has_result():
            exc = self._exception()
            return None if exc is None else str(exc)
        return None

    def _submitted_ts(self) -> float:
        return _dt.datetime.fromisoformat(self.meta["submitted_at"]).timestamp()

    def wait(self, timeout: Optional[float] = None, poll: float = 0.5) -> Any:
        """Block until the job ends; return train's summary or raise JobFailedError with the error."""
        if self.meta["kind"] == "debug":
            if self.job.state == "CANCELLED":
                raise JobFailedError(f"job {self.job_id} was cancelled before it ran")
            try:
                return self.job.run()
            except JobFailedError as e:
                raise JobFailedError(self.error() or str(e)) from None
        t0 = time.time()
        while True:
            if self._has_result():
                break
            st = self.status()
            if st in _FINAL:
                break
            if timeout is not None and time.time() - t0 > timeout:
                raise TimeoutError(f"job {self.job_id} still {st} after {timeout} s; see {self.run_dir}")
            time.sleep(poll)
        if not self._has_result():
            # ended without a result (cancelled, killed): give the log tail
            time.sleep(poll)
            if not self._has_result():
                raise JobFailedError(f"job {self.job_id} ended {self.status()} without a result; "
                                     f"log tail:\n{self.tail(30)}\n{self.error() or ''}")
        exc = self._exception()
        if exc is not None:
            raise JobFailedError(self.error() or str(exc))
        return self._tasks[0].result()

    def cancel(self) -> None:
        self.job.cancel(check=False)

    def panel(self, **kwargs: Any):
        """An ipywidgets panel for this job (crisscross_core.viz.job_panel.JobPanel)."""
        from crisscross_core.viz.job_panel import JobPanel
        return JobPanel(self, **kwargs)


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    """`crisscross submit [--profile P] [--nodes N] [--gpus-per-node G] <config> [key=value ...]`."""
    parser.add_argument("config", nargs="?", default=None, help="preset name or YAML file")
    parser.add_argument("overrides", nargs="*", help="key.sub=value config overrides")
    parser.add_argument("-c", "--config", dest="config_opt", default=None,
                        help="the config as an option (as in `crisscross pretrain -c ...`)")
    parser.add_argument("--profile", "--cluster", dest="cluster", default="local",
                        help="'local', 'debug', a profile in slurm/profiles/ or a YAML path")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus-per-node", type=int, default=None)
    parser.add_argument("--tasks-per-node", type=int, default=None,
                        help="defaults to --gpus-per-node (one task per GPU), 1 on CPU")
    parser.add_argument("--time", type=int, default=None, dest="time_min", help="minutes")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--account", default=None)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--wait", action="store_true", help="block until the job ends")


def _config_and_overrides(args) -> tuple[str, list[str]]:
    config, overrides = args.config, list(args.overrides)
    if getattr(args, "config_opt", None):
        if config is not None:  # with -c, the first positional is an override
            overrides.insert(0, config)
        config = args.config_opt
    if config is None or "=" in config:
        raise LaunchError("give a config: `crisscross submit [options] <preset|yaml> [key=value ...]`")
    return config, overrides


def run(args) -> int:
    extra = {k: getattr(args, k) for k in ("partition", "account") if getattr(args, k, None)}
    config, overrides = _config_and_overrides(args)
    job = submit(config, overrides, cluster=args.cluster, nodes=args.nodes,
                 gpus_per_node=args.gpus_per_node, tasks_per_node=args.tasks_per_node,
                 time_min=args.time_min, run_dir=args.run_dir, **extra)
    print(f"submitted job {job.job_id} ({args.cluster}); run dir {job.run_dir}")
    if not args.wait:
        return 0
    try:
        summary = job.wait()
    except JobFailedError as e:
        print(f"job {job.job_id} failed:\n{e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, default=str))
    return 0
