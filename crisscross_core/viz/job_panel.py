"""A small ipywidgets panel for one submitted job: state, step, samples/s, live loss plot, cancel.

    job = submit(...); panel = job.panel(); panel            # shows it in a notebook cell
    panel.watch()                  # refresh in a background thread; the cell returns at once
    await panel.wait_async()       # a cell that waits for the job -- the panel's buttons still work
    panel.refresh()                # pull status + metrics.jsonl now

Buttons are ipywidgets callbacks, run by the kernel when it handles the click's message. `watch()`
never holds the kernel, and a cell awaiting `wait_async()` lets the kernel handle widget messages
(ipykernel >= 7 dispatches them while a cell awaits), so **Cancel job** works whether the kernel is
idle or busy waiting. A cell blocked in synchronous code (`panel.wait()`, `job.wait()`, `time.sleep`)
queues the click until it returns.

Works with any handle that has status(), metrics() (list of dicts with step/loss/samples_per_s),
tail(n) and cancel() -- crisscross_core.jobs.JobHandle or a fake in tests.
"""
from __future__ import annotations

import io
import threading
from typing import Any, Optional

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                "DEADLINE", "BOOT_FAIL"}


def loss_png(rows: list[dict], key: str = "loss", width: float = 5.0, height: float = 2.6) -> bytes:
    """PNG bytes of `key` against step for the rows that have both (an empty axes if none)."""
    from matplotlib.figure import Figure  # no pyplot: backend untouched, safe from a thread

    pts = [(r["step"], r[key]) for r in rows if "step" in r and isinstance(r.get(key), (int, float))]
    fig = Figure(figsize=(width, height), dpi=80)
    ax = fig.add_subplot(1, 1, 1)
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.5, marker="o" if len(pts) < 20 else None, ms=4)
    else:
        ax.text(0.5, 0.5, "no logged step yet", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _takes_kind(handle: Any) -> bool:
    """Whether handle.metrics accepts kind= (JobHandle does; simple fakes may not)."""
    import inspect
    try:
        return "kind" in inspect.signature(handle.metrics).parameters
    except (TypeError, ValueError):
        return False


class JobPanel:
    """ipywidgets view of a job handle; `widget` is the VBox, `refresh()` updates it."""

    def __init__(self, handle: Any, loss_key: str = "loss", tail_lines: int = 8):
        import ipywidgets as W

        self.handle, self.loss_key, self.tail_lines = handle, loss_key, tail_lines
        self._last_plotted: Optional[tuple] = None
        self._thread: Optional[threading.Thread] = None
        self.cancelled = False
        self._stop = threading.Event()
        name = getattr(handle, "job_id", "?")
        self.title = W.HTML(f"<b>job {name}</b> <code>{getattr(handle, 'run_dir', '')}</code>")
        self.state = W.Label("state: ?")
        self.step = W.Label("step: -")
        self.speed = W.Label("samples/s: -")
        self.loss = W.Label(f"{loss_key}: -")
        self.plot = W.Image(format="png", layout=W.Layout(width="420px"))
        self.log = W.Textarea(value="", layout=W.Layout(width="100%", height="120px"), disabled=True)
        self.recent = W.HTML()
        self.online = W.HTML("<small>online evaluation: - (off unless eval.manifest is set)</small>")
        self.cancel_button = W.Button(description="Cancel job", button_style="danger", icon="stop")
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.cancel_button.on_click(self._on_cancel)
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.widget = W.VBox([
            self.title,
            W.HBox([self.state, self.step, self.speed, self.loss]),
            self.plot,
            W.HBox([self.refresh_button, self.cancel_button]),
            self.recent,
            self.online,
            W.HTML("<small>the job's log (stdout+stderr), last lines</small>"),
            self.log,
        ])

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)

    def refresh(self) -> dict:
        """Pull state, metrics and the log tail from the handle; update the widgets; return the values."""
        state = str(self.handle.status())
        everything = self.handle.metrics(kind=None) if _takes_kind(self.handle) else self.handle.metrics()
        rows = [r for r in everything if r.get("kind", "step") == "step"]
        evals = [r for r in everything if r.get("kind") == "eval"]
        if evals:
            from crisscross_core.online_eval import format_eval
            self.online.value = f"<small>latest {format_eval(evals[-1])}</small>"
        last = rows[-1] if rows else {}
        view = {"state": state, "step": last.get("step"), "samples_per_s": last.get("samples_per_s"),
                "loss": last.get(self.loss_key), "n_points": len(rows)}
        self.state.value = f"state: {state}"
        self.step.value = f"step: {view['step'] if view['step'] is not None else '-'}"
        sps = view["samples_per_s"]
        self.speed.value = f"samples/s: {sps:.1f}" if isinstance(sps, (int, float)) else "samples/s: -"
        lv = view["loss"]
        self.loss.value = f"{self.loss_key}: {lv:.4f}" if isinstance(lv, (int, float)) else f"{self.loss_key}: -"
        key = (len(rows), view["step"])
        if key != self._last_plotted:  # redraw only when there is something new
            self.plot.value = loss_png(rows, self.loss_key)
            self._last_plotted = key
        try:
            tail = self.handle.tail(self.tail_lines)
        except Exception as e:  # noqa: BLE001 - a missing log must not break the panel
            tail = f"(no log yet: {e})"
        steps = " · ".join(f"step {r.get('step')}: {self.loss_key} {r.get(self.loss_key, float('nan')):.4f}"
                           for r in rows[-3:])
        # the steps come from metrics.jsonl (current); the log below is the job's stdout+stderr, which shows
        # progress only as often as the job prints
        self.recent.value = f"<small>last logged steps (metrics.jsonl): {steps or '-'}</small>"
        self.log.value = tail
        self.cancel_button.disabled = state in FINAL_STATES
        return view

    def _on_cancel(self, _button: Any = None) -> None:
        self.handle.cancel()
        self.cancelled = True
        self.cancel_button.disabled = True
        self.state.value = "state: cancelling"

    def watch(self, interval: float = 2.0) -> "JobPanel":
        """Refresh every `interval` s in a background thread until the job ends; returns at once, so the
        kernel stays free for the panel's buttons (and for other cells). Returns the panel (shows it)."""
        return self.start(interval)

    def wait(self, until=None, timeout: Optional[float] = None, poll: float = 0.5) -> str:
        """Block until the job ends (or `until(handle)` is true, or `timeout` s), refreshing the panel;
        returns the state. This holds the kernel: in a notebook use `await panel.wait_async(...)`, which
        lets the panel's buttons work meanwhile."""
        import time
        self.stop()               # one refresher at a time: this loop takes over from watch()'s thread
        t0 = time.time()
        while not self._ended(until, t0, timeout):
            time.sleep(poll)
        return self.refresh()["state"]

    async def wait_async(self, until=None, timeout: Optional[float] = None, poll: float = 0.5) -> str:
        """`await panel.wait_async()` in a notebook cell: like wait(), but the cell awaits between
        refreshes, and the kernel (ipykernel >= 7) handles widget messages -- the Cancel and Refresh
        clicks -- while a cell awaits, so the buttons work while this cell is busy."""
        import asyncio
        import time
        self.stop()
        t0 = time.time()
        while not self._ended(until, t0, timeout):
            await asyncio.sleep(poll)
        return self.refresh()["state"]

    def _ended(self, until, t0: float, timeout: Optional[float]) -> bool:
        import time
        view = self.refresh()
        return (view["state"] in FINAL_STATES or (until is not None and until(self.handle))
                or (timeout is not None and time.time() - t0 > timeout))

    def start(self, interval: float = 5.0) -> "JobPanel":
        """Refresh every `interval` s in a daemon thread until the job ends or stop() is called."""
        self.stop()
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    if self.refresh()["state"] in FINAL_STATES:
                        break
                except Exception as e:  # noqa: BLE001 - keep the notebook alive, show why
                    self.state.value = f"state: refresh failed ({e})"
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, daemon=True, name="job-panel-refresh")
        self._thread.start()
        return self

    @property
    def watching(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

