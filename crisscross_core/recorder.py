"""Where a run's records go: `metrics.jsonl` (always), TensorBoard and Weights & Biases (when on).

    rec = RunRecorder(run_dir, cfg, step, is_main)   # no-op on ranks other than the main one
    rec.record({"kind": "step", "step": 10, "loss": -0.5, ...})
    rec.checkpointed(10)                             # a checkpoint at step 10 is on disk (W&B sends)
    rec.close(completed=True, step=600)

Records are JSON objects with a `kind` ("step", "epoch", "eval", "data") and a `step`; the reader
is runlog.read_metrics. TensorBoard tags are the keys for "step" records (as before) and
"<kind>/<key>" for the others; W&B gets every kind under its own prefix (tracking.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from .config import Config
from .tracking import WandbTracker

_NOT_SCALARS = ("kind", "step", "time")


def _tensorboard(cfg: Config, run_dir: Path):
    if not cfg.train.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: metrics.jsonl is the record
        return None
    return SummaryWriter(str(run_dir / "tb"))


class RunRecorder:
    def __init__(self, run_dir: Path, cfg: Config, step: int, is_main: bool):
        self.is_main = is_main
        self.file = open(Path(run_dir) / "metrics.jsonl", "a") if is_main else None
        self.tb = _tensorboard(cfg, Path(run_dir)) if is_main else None
        self.wandb: Optional[WandbTracker] = None
        if is_main:
            try:
                self.wandb = WandbTracker.start(cfg, Path(run_dir), step)
            except BaseException:
                self.close(completed=False)
                raise

    def record(self, rec: dict) -> None:
        if not self.is_main:
            return
        self.file.write(json.dumps(rec) + "\n")
        self.file.flush()
        kind = rec.get("kind", "step")
        if self.tb is not None:
            for k, v in rec.items():
                if k not in _NOT_SCALARS and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.tb.add_scalar(k if kind == "step" else f"{kind}/{k}", v, rec.get("step", 0))
        if self.wandb is not None:
            self.wandb.log(rec)

    def checkpointed(self, step: int) -> None:
        if self.wandb is not None:
            self.wandb.commit(step)

    def close(self, completed: bool, step: int = 0) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.wandb is not None:
            (self.wandb.finish(step) if completed else self.wandb.abandon())
            self.wandb = None
