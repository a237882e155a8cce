"""Progress lines with elapsed time and ETA for the protocol steps that take more than a few seconds.

    tick = Ticker("svm", total=80)                      # e.g. 80 SVM fits in all
    tick.step("fold 1 (1/5) C=0.001: val acc 0.61")     # prints
    # [svm] fold 1 (1/5) C=0.001: val acc 0.61 · 3.0 s · 1/80 · ETA 4 min 00 s

Lines go to stderr (stdout keeps the one JSON summary line of the CLI). `enabled=False` prints nothing.
"""
from __future__ import annotations

import sys
import time


def fmt_s(seconds: float) -> str:
    """3 s · 42 s · 4 min 10 s · 1 h 05 min."""
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def say(tag: str, message: str, enabled: bool = True) -> None:
    if enabled:
        print(f"[{tag}] {message}", file=sys.stderr, flush=True)


class Ticker:
    """Counts `total` similar steps; each `step()` prints its message, the time it took, and the ETA of
    the rest (mean step time so far × steps left). `total` may grow (`add`)."""

    def __init__(self, tag: str, total: int, enabled: bool = True):
        self.tag, self.total, self.enabled = tag, max(1, int(total)), enabled
        self.done, self.t0 = 0, time.perf_counter()
        self._last = self.t0

    def add(self, n: int) -> None:
        self.total += int(n)

    def step(self, message: str = "", n: int = 1) -> float:
        now = time.perf_counter()
        dt, self._last = now - self._last, now
        self.done += n
        left = max(0, self.total - self.done)
        eta = (now - self.t0) / self.done * left
        say(self.tag, f"{message} · {fmt_s(dt)} · {self.done}/{self.total}"
            + (f" · ETA {fmt_s(eta)}" if left else f" · total {fmt_s(now - self.t0)}"), self.enabled)
        return dt
