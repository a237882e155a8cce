"""A small ipywidgets panel for one submitted job: state, step, samples/s, live loss plot, cancel.

    job = submit(...); panel = JobPanel(job); panel          # shows it in a notebook cell
    panel.refresh()                                          # pull status + metrics.jsonl now
    panel.start(interval=5)                                  # or refresh in a background thread

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
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class JobPanel:
    """ipywidgets view of a job handle; `widget` is the VBox, `refresh()` updates it."""

    def __init__(self, handle: Any, loss_key: str = "loss", tail_lines: int = 8):
        import ipywidgets as W

        self.handle, self.loss_key, self.tail_lines = handle, loss_key, tail_lines
        self._last_plotted: Optional[tuple] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        name = getattr(handle, "job_id", "?")
        self.title = W.HTML(f"<b>job {name}</b> <code>{getattr(handle, 'run_dir', '')}</code>")
        self.state = W.Label("state: ?")
        self.step = W.Label("step: -")
        self.speed = W.Label("samples/s: -")
        self.loss = W.Label(f"{loss_key}: -")
        self.plot = W.Image(format="png", layout=W.Layout(width="420px"))
        self.log = W.Textarea(value="", layout=W.Layout(width="100%", height="120px"), disabled=True)
        self.cancel_button = W.Button(description="Cancel job", button_style="danger", icon="stop")
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.cancel_button.on_click(self._on_cancel)
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.widget = W.VBox([
            self.title,
            W.HBox([self.state, self.step, self.speed, self.loss]),
            self.plot,
            W.HBox([self.refresh_button, self.cancel_button]),
            self.log,
        ])

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)

    def refresh(self) -> dict:
        """Pull state, metrics and the log tail from the handle; update the widgets; return the values."""
        state = str(self.handle.status())
        rows = [r for r in self.handle.metrics() if r.get("kind", "step") == "step"]
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
            self.log.value = self.handle.tail(self.tail_lines)
        except Exception as e:  # noqa: BLE001 - a missing log must not break the panel
            self.log.value = f"(no log yet: {e})"
        self.cancel_button.disabled = state in FINAL_STATES
        return view

    def _on_cancel(self, _button: Any = None) -> None:
        self.handle.cancel()
        self.cancel_button.disabled = True
        self.state.value = "state: cancelling"

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

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
