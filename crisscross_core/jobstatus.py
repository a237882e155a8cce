"""The JSON status a job writes about itself, so that nobody has to unpickle anything to know how a
job went. submitit keeps a job's result and exception in pickles; a handle that read those would run
whatever code a planted pickle names. The runner (launch.Runner) writes instead, atomically:

    <run_dir>/jobs/<job_id>.json  {"job_id", "state", "attempt", "host", "pid", "time",
                                   "summary" (on COMPLETED), "error" (on FAILED: message + traceback)}

states: RUNNING (each attempt's start), REQUEUED (timeout / preemption, about to come back),
COMPLETED, FAILED, CANCELLED. Handles (jobs.JobHandle) read it with json.loads only.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Optional

from .fileio import atomic_write_text

FINAL = ("COMPLETED", "FAILED", "CANCELLED")


def status_path(run_dir: str | os.PathLike, job_id: str) -> Path:
    return Path(run_dir) / "jobs" / f"{job_id}.json"


def _jsonable(x: Any) -> Any:
    """`x` as plain JSON types (summaries hold Paths, numpy scalars, tuples)."""
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def write_status(run_dir: str | os.PathLike, job_id: str, state: str, **fields: Any) -> Path:
    rec = {"job_id": str(job_id), "state": state, "host": socket.gethostname(), "pid": os.getpid(),
           "time": time.time(), **_jsonable(fields)}
    return atomic_write_text(status_path(run_dir, job_id), json.dumps(rec, indent=1))


def read_status(run_dir: str | os.PathLike, job_id: str) -> Optional[dict]:
    """The job's last status record, or None (not started yet, or written by an older kit)."""
    p = status_path(run_dir, job_id)
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def process_alive(rec: dict) -> Optional[bool]:
    """Whether the process a RUNNING record names still exists (None: it ran on another host)."""
    if rec.get("host") != socket.gethostname() or not isinstance(rec.get("pid"), int):
        return None
    try:
        os.kill(rec["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
