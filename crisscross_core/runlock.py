"""One live run per run directory: `RunLock`, held by `train(cfg)` from set-up to exit.

`<run_dir>/run.lock` carries a JSON record of its holder (host, PID, Slurm job id, since when, a
heartbeat refreshed every HEARTBEAT_S seconds by a daemon thread). Acquiring it:

1. `flock(LOCK_EX | LOCK_NB)` on the file. The kernel (and NFSv4 / Lustre with flock) releases this
   lock when its holder dies, kill -9 included, so a refusal means a live holder: RunLockedError,
   naming it. Exception: the record names *this* Slurm job (a requeued or preempted attempt whose
   predecessor's lock a network filesystem has not released yet): wait up to REQUEUE_WAIT_S.
2. Granted: the previous record is read. Released, or left by a process on this host (its flock
   would still block us if it were alive): taken over. Left by another host, whose flock this
   filesystem may not show us: its heartbeat decides — older than STALE_S (default 300 s), or its
   Slurm job is this job (requeue) or no longer in `squeue`: stale, taken over; else refused.
   Filesystems without flock (ENOLCK, EOPNOTSUPP) fall back to the heartbeat rule alone.
3. The record is rewritten in place (never renamed: a new inode would not carry the lock).

Release writes `"released": true` into the record and unlocks; the file stays (unlinking it would
let two processes lock two different inodes). Forked children (DataLoader workers) close their copy of
the descriptor at once, so a worker that outlives a killed trainer does not keep its lock.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

LOCK_NAME = "run.lock"
HEARTBEAT_S = float(os.environ.get("CRISSCROSS_LOCK_HEARTBEAT_S", 30))
STALE_S = float(os.environ.get("CRISSCROSS_LOCK_STALE_S", 300))
REQUEUE_WAIT_S = float(os.environ.get("CRISSCROSS_LOCK_REQUEUE_WAIT_S", 180))


class RunLockedError(RuntimeError):
    """Another live run holds this run directory; the message names it and the ways out."""


_HELD: set = set()       # lock descriptors held by this process


def _drop_inherited() -> None:
    """In a forked child (DataLoader workers, process pools): close the copies of the lock descriptors.
    A flock belongs to the open file, shared by parent and child; a worker outliving a killed trainer
    would otherwise keep the dead run's lock alive. The parent's own descriptor keeps its lock."""
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_inherited)


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def slurm_job_id() -> Optional[str]:
    """This process's Slurm job (array jobs as `<array>_<task>`), or None outside Slurm."""
    arr, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if arr and task:
        return f"{arr}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def describe(rec: dict) -> str:
    """'host h, PID 12 (Slurm job 34), since 2026-…Z, heartbeat 5 s ago' for a lock record."""
    who = f"host {rec.get('host', '?')}, PID {rec.get('pid', '?')}"
    if rec.get("slurm_job_id"):
        who += f" (Slurm job {rec['slurm_job_id']})"
    since = f", since {rec['since']}" if rec.get("since") else ""
    beat = ""
    if isinstance(rec.get("heartbeat_unix"), (int, float)):
        beat = f", heartbeat {max(0, time.time() - rec['heartbeat_unix']):.0f} s ago"
    return who + since + beat


def _slurm_job_alive(job_id: str) -> Optional[bool]:
    """True/False when squeue can tell whether `job_id` is pending or running, else None."""
    if shutil.which("squeue") is None:
        return None
    try:
        r = subprocess.run(["squeue", "-h", "-j", job_id.split("_")[0], "-o", "%T"], capture_output=True,
                           text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return False if "Invalid job id" in r.stderr else None
    return any(s in ("RUNNING", "PENDING", "CONFIGURING", "COMPLETING", "SUSPENDED") for s in r.stdout.split())


class RunLock:
    """The lock of one run directory. `acquire()` or raise RunLockedError; `release()`; context manager."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.fd: Optional[int] = None
        self.record: dict = {}
        self.took_over: Optional[dict] = None     # the stale record replaced, if any
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None
        self._io = threading.Lock()

    # -- record I/O on the locked descriptor
    def _read(self) -> dict:
        os.lseek(self.fd, 0, os.SEEK_SET)
        data = b""
        while chunk := os.read(self.fd, 65536):
            data += chunk
        try:
            rec = json.loads(data.decode("utf-8")) if data.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            rec = {"unreadable": True}
        return rec if isinstance(rec, dict) else {"unreadable": True}

    def _write(self, rec: dict) -> None:
        data = (json.dumps(rec, indent=1) + "\n").encode()
        with self._io:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)
            os.fsync(self.fd)

    def _stale(self, rec: dict, mine: Optional[str]) -> bool:
        """Whether a record left by another host (or on a filesystem without flock) is dead."""
        if not rec or rec.get("released") or rec.get("unreadable"):
            return True
        if mine and rec.get("slurm_job_id") == mine:
            return True                      # our own job's earlier attempt (requeue / preemption)
        beat = rec.get("heartbeat_unix")
        if not isinstance(beat, (int, float)) or time.time() - beat > STALE_S:
            return True
        if rec.get("slurm_job_id"):
            alive = _slurm_job_alive(str(rec["slurm_job_id"]))
            if alive is False:
                return True
        return False

    def _refuse(self, rec: dict) -> RunLockedError:
        return RunLockedError(
            f"run directory {self.run_dir} is in use by another run ({describe(rec)}); use another "
            f"train.run_dir, or stop that run first (a lock whose holder died is taken over by itself; "
            f"from another host after {STALE_S:.0f} s without heartbeat)")

    def acquire(self) -> "RunLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        _HELD.add(self.fd)
        host, mine = socket.gethostname(), slurm_job_id()
        flock_works, deadline = True, time.time() + REQUEUE_WAIT_S
        try:
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    rec = self._read()
                    if mine and rec.get("slurm_job_id") == mine and rec.get("pid") != os.getpid() \
                            and time.time() < deadline:
                        time.sleep(2.0)      # our previous attempt; its network-FS lock is expiring
                        continue
                    raise self._refuse(rec) from None
                except OSError as e:
                    if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                        flock_works = False
                        break
                    raise
            prev = self._read()
            alive_elsewhere = (prev and not prev.get("released") and not prev.get("unreadable")
                               and (prev.get("host") != host or not flock_works))
            if alive_elsewhere and not self._stale(prev, mine):
                raise self._refuse(prev)
            if prev and not prev.get("released"):
                self.took_over = prev
            now = time.time()
            self.record = {"host": host, "pid": os.getpid(), "slurm_job_id": mine, "since": _utc(now),
                           "heartbeat_unix": now, "heartbeat": _utc(now), "flock": flock_works,
                           "released": False}
            self._write(self.record)
        except BaseException:
            self._close()
            raise
        self._start_heartbeat()
        return self

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    now = time.time()
                    self.record.update(heartbeat_unix=now, heartbeat=_utc(now))
                    self._write(self.record)
                except OSError:
                    pass                  # a full disk must not kill the run; the flock still holds
        self._beat = threading.Thread(target=beat, daemon=True, name="run-lock-heartbeat")
        self._beat.start()

    def _close(self) -> None:
        if self.fd is not None:
            _HELD.discard(self.fd)
            try:
                os.close(self.fd)         # closing the descriptor drops the flock
            finally:
                self.fd = None

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None
        if self.fd is None:
            return
        try:
            self.record.update(released=True, released_at=_utc(time.time()))
            self._write(self.record)
        except OSError:
            pass
        self._close()

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
