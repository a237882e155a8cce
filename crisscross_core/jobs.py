"""A submitted pretraining job as a notebook sees it: `JobHandle` (status, tail, metrics, error,
wait, cancel, panel) over a submitit job, or over an in-process run for cluster="debug".
Jobs are made by `crisscross_core.launch.submit` / `attach`.
"""
from __future__ import annotations

import datetime as _dt
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

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
        return read_metrics(self.run_dir, kind=kind)

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
