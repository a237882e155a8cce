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
import signal
import sys
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


from .jobs import InProcessJob, JobFailedError, JobHandle  # noqa: E402,F401  (re-exported)
from .jobstatus import write_status  # noqa: E402


class LaunchError(RuntimeError):
    """A profile, an executor or a submission is wrong; the message says which and how to fix it."""


# ----------------------------------------------------------------------------- the job-side runner

class Runner(_CheckpointableBase):
    """The pickled callable. In the job: export torch.distributed env vars from submitit's job
    environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), then call `target(config,
    None, **target_kwargs)`. `checkpoint()` (called by submitit on timeout/preemption) resubmits
    itself; the target resumes from its own checkpoint. Task 0 records the job's state as JSON in
    `<run_dir>/jobs/<job_id>.json` (jobstatus.py), which is all a JobHandle reads."""

    def __init__(self, target: str, config: str, target_kwargs: Optional[dict] = None,
                 run_dir: Optional[str] = None):
        self.target, self.config, self.target_kwargs = target, config, dict(target_kwargs or {})
        self.run_dir = run_dir
        self.attempt = 0

    def _status(self, state: str, **fields: Any) -> None:
        """Task 0 of a submitit job writes the job's JSON status (never fatal: a full disk must not
        turn a finished run into a failure)."""
        if self.run_dir is None or not _in_submitit_job():
            return
        env = submitit.JobEnvironment()
        if env.global_rank != 0:
            return
        try:
            write_status(self.run_dir, env.job_id, state, attempt=self.attempt, **fields)
        except OSError as e:
            print(f"[crisscross] could not write the job status ({e})", file=sys.stderr, flush=True)

    def __call__(self) -> Any:
        self.attempt += 1
        env_keys = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                    "CRISSCROSS_JOB_ATTEMPT")
        saved = {k: os.environ.get(k) for k in env_keys}
        self._status("RUNNING")
        _listen_to_sigint()
        try:
            if _in_submitit_job():
                submitit.helpers.TorchDistributedEnvironment().export(
                    set_cuda_visible_devices=False, overwrite=True)
            os.environ["CRISSCROSS_JOB_ATTEMPT"] = str(self.attempt)
            result = resolve_target(self.target)(self.config, None, **self.target_kwargs)
            self._status("COMPLETED", summary=result)
            return result
        except KeyboardInterrupt:            # the local executor's cancel (SIGINT): end cleanly, no traceback
            self._status("CANCELLED")
            if not _in_submitit_job():
                raise                        # in-process: the notebook's own interrupt
            print("[crisscross] cancelled (SIGINT); the run directory keeps its last checkpoint: submit again "
                  "with the same run directory to resume", file=sys.stderr, flush=True)
            raise SystemExit(130) from None
        except Exception as exc:
            import traceback
            self._status("FAILED", error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
            raise
        finally:  # matters only in-process ("debug"): leave the notebook's environment as it was
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Requeue this same runner; training state lives in <run_dir>/checkpoint.pt."""
        self._status("REQUEUED")
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _listen_to_sigint() -> None:
    """A local submitit task is cancelled by SIGINT. A process started from a shell without job control
    (`jupyter lab &` in a script, nohup, a backgrounded CI run) inherits SIGINT *ignored*, and Python then
    never raises KeyboardInterrupt: Cancel would do nothing and the run would go on to the end. Local
    tasks therefore restore Python's SIGINT handler (Slurm tasks and in-process runs are left alone)."""
    if not _in_submitit_job():
        return
    try:
        if submitit.JobEnvironment().cluster == "local":
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except (RuntimeError, ValueError):      # not the main thread, or no job environment after all
        pass


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
    runner = Runner(target, str(cfg_path), target_kwargs, run_dir=str(rdir))
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
    """Re-open the handle of the last Slurm/local job submitted for `run_dir` (e.g. after a restart).

    Reads `<run_dir>/job.json` (JSON) only; the handle learns the job's state from Slurm and from the
    JSON status the job writes (jobstatus.py) — it never unpickles submitit's files."""
    rdir = Path(run_dir).resolve()
    try:
        meta = json.loads((rdir / "job.json").read_text())
        kind, job_id = meta["kind"], str(meta["job_id"])
        tasks = list(range(int(meta["nodes"]) * int(meta["tasks_per_node"])))
    except FileNotFoundError:
        raise LaunchError(f"{rdir}: no job.json (no job was submitted for this run directory)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LaunchError(f"{rdir / 'job.json'}: unreadable ({type(e).__name__}: {e})") from None
    if kind == "debug":
        raise LaunchError(f"{rdir} was run in-process (cluster='debug'); there is no job to attach to")
    if kind not in ("slurm", "local"):
        raise LaunchError(f"{rdir / 'job.json'}: unknown job kind {kind!r}")
    cls = submitit.SlurmJob if kind == "slurm" else submitit.LocalJob
    return JobHandle(cls(meta["folder"], job_id, tasks=tasks), rdir, meta)


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


from .sweep import Sweep, attach_sweep, sweep  # noqa: E402,F401  (launch.sweep: a grid as one job array)
