"""A submitted pretraining job as a notebook sees it: `JobHandle` (status, tail, metrics, error,
wait, cancel, panel) over a submitit job, or over an in-process run for cluster="debug".
Jobs are made by `crisscross_core.launch.submit` / `attach`.
"""
from __future__ import annotations

import datetime as _dt
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .jobstatus import process_alive, read_status
from .runlog import read_metrics

if TYPE_CHECKING:  # launch imports this module
    from .launch import Runner

_FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "DEADLINE",
          "BOOT_FAIL", "PREEMPTED_FINAL"}


class JobFailedError(RuntimeError):
    """The job ended without a result; the message carries error.txt or the worker's traceback."""


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


def _sacct_state(job_id: str) -> Optional[str]:
    """The job's state from Slurm accounting (after scontrol has forgotten it), or None."""
    try:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id], capture_output=True,
                             text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = [ln.strip() for ln in out.splitlines() if ln.strip()]
    return states[-1] if states else None


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


class JobHandle:
    """A submitted job as seen from a notebook: status(), tail(n), metrics(), error(), wait(), cancel().

    Nothing here unpickles: the state comes from Slurm (scontrol, else sacct) or the local process,
    and from the JSON status the job's runner writes (jobstatus.py); the result is train's summary
    from that JSON."""

    def __init__(self, job: Any, run_dir: Path, meta: dict):
        self.job, self.run_dir, self.meta = job, Path(run_dir), meta

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    def __repr__(self) -> str:
        return f"JobHandle(job_id={self.job_id}, cluster={self.meta['cluster']}, run_dir={self.run_dir})"

    def record(self) -> Optional[dict]:
        """The job's own JSON status (RUNNING / REQUEUED / COMPLETED / FAILED / CANCELLED, summary,
        error), or None before it starts."""
        rec = read_status(self.run_dir, self.job_id)
        if rec is not None and rec.get("time", 0) < self._submitted_ts() - 1:
            return None            # a stale file from an earlier job with a recycled id
        return rec

    def status(self) -> str:
        """PENDING, RUNNING, REQUEUED, COMPLETED, FAILED, CANCELLED, ... (upper case)."""
        kind = self.meta["kind"]
        if kind == "debug":
            return self.job.state
        rec = self.record()
        own = rec.get("state") if rec else None
        if kind == "local":
            return self._local_state(own, rec)
        st = (_scontrol_state(self.job_id) or _sacct_state(self.job_id) or "UNKNOWN").split()[0].upper()
        if own in ("COMPLETED", "FAILED", "CANCELLED") and st in ("UNKNOWN", "COMPLETED", "COMPLETING",
                                                                  "RUNNING", "FAILED"):
            return own             # the job's own word on how train() ended beats the exit code
        if st == "UNKNOWN" and own:
            return "FAILED" if own in ("RUNNING", "REQUEUED") and rec and process_alive(rec) is False else own
        return st

    def _local_state(self, own: Optional[str], rec: Optional[dict]) -> str:
        proc = getattr(self.job, "_process", None)
        if proc is not None:                                 # submitted from this process
            code = proc.poll()
            if code is None:
                return "RUNNING"
            if own in ("COMPLETED", "FAILED", "CANCELLED"):
                return own
            return "CANCELLED" if code < 0 else "FAILED"    # ended without its final word (kill -9, ...)
        if own is None:
            return "PENDING" if time.time() - self._submitted_ts() < 30 else "UNKNOWN"
        if own in ("RUNNING", "REQUEUED") and process_alive(rec) is False:
            return "FAILED"
        return own

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
        return read_metrics(self.run_dir, kind=kind)

    def error(self) -> Optional[str]:
        """error.txt from the run, else the error the job's JSON status records, else None."""
        p = self.run_dir / "error.txt"
        if p.is_file() and p.stat().st_mtime >= self._submitted_ts() - 1:
            return p.read_text()
        if self.meta["kind"] == "debug":
            return self.job.traceback
        rec = self.record()
        return rec.get("error") if rec else None

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
            st = self.status()
            if st in _FINAL:
                break
            if timeout is not None and time.time() - t0 > timeout:
                raise TimeoutError(f"job {self.job_id} still {st} after {timeout} s; see {self.run_dir}")
            time.sleep(poll)
        rec = self.record() or {}
        if st == "COMPLETED" and rec.get("state") == "COMPLETED":
            return rec.get("summary")
        if st == "COMPLETED":        # Slurm says done, yet the job never recorded its end
            time.sleep(poll)
            rec = self.record() or {}
            if rec.get("state") == "COMPLETED":
                return rec.get("summary")
        raise JobFailedError(self.error() or f"job {self.job_id} ended {st} without a result; log tail:\n"
                             f"{self.tail(30)}")

    def cancel(self) -> None:
        """Stop the job: scancel on Slurm; on the local executor a SIGINT to its process (also when
        this handle was re-opened with attach(), through the PID the job recorded)."""
        if self.meta["kind"] == "local" and int(self.meta.get("tasks_per_node", 1)) == 1:
            rec = self.record()       # one task: stop it; several: the controller stops them all
            if rec and rec.get("state") in ("RUNNING", "REQUEUED") and process_alive(rec):
                # the task itself (it ends cleanly; its controller then exits): a SIGINT to the controller
                # would print the controller's KeyboardInterrupt traceback into the notebook
                os.kill(int(rec["pid"]), signal.SIGINT)
                return
            if getattr(self.job, "_process", None) is None:
                return
        self.job.cancel(check=False)

    def panel(self, **kwargs: Any):
        """An ipywidgets panel for this job (crisscross_core.viz.job_panel.JobPanel)."""
        from crisscross_core.viz.job_panel import JobPanel
        return JobPanel(self, **kwargs)
