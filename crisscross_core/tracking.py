"""Weights & Biases for a run that gets killed, requeued and resumed: one W&B run, every step once.

The W&B run id is created once and kept in `<run_dir>/wandb_run_id`, so every attempt of the run
(restart, Slurm requeue, preemption) continues the same W&B run (`resume="allow"`). Records are held
back until the checkpoint that contains their step is on disk (`commit()`, called right after each
checkpoint write) and then sent in step order: after a kill -9, the steps logged since the last
checkpoint were never sent, and the resumed run sends them once when it redoes them.

wandb itself buffers what it was sent (its `.wandb` file is flushed every few seconds), so a kill -9
can also lose records that *were* sent. On each start the tracker therefore asks what the W&B run
durably holds — offline: the earlier `.wandb` files of this run id, read back; online: the resumed
run's summary (the last `trainer/step` the server has) — and replays the missing records of
metrics.jsonl (already trimmed to the checkpoint) before going on. So the W&B history has each step
exactly once, without gaps: the same contract as metrics.jsonl.

wandb is optional (`pip install wandb`); with `wandb.enabled=false` (the default) it is never imported.

    tracker = WandbTracker.start(cfg, run_dir, step)   # None unless wandb.enabled
    tracker.log(record)          # a metrics.jsonl record (kind step / eval / epoch / data)
    tracker.commit(step)         # after a checkpoint at `step`: send what it covers
    tracker.finish(step)         # at the end of a completed run: send the rest, close
"""
from __future__ import annotations

import json
import os
import struct
import uuid
from pathlib import Path
from typing import Optional

from .config import Config, ConfigError, to_dict
from .fileio import atomic_write_text
from .runlog import read_metrics

ID_FILE = "wandb_run_id"
_SKIP = {"kind", "step", "time"}


def wandb_run_id(run_dir: Path) -> str:
    """The run's W&B id: read from `<run_dir>/wandb_run_id`, created (and written) on first use."""
    path = Path(run_dir) / ID_FILE
    if path.is_file():
        rid = path.read_text().strip()
        if rid:
            return rid
    rid = uuid.uuid4().hex[:16]
    atomic_write_text(path, rid + "\n")
    return rid


def require_wandb(cfg: Config):
    """The wandb module, or a ConfigError (before any work) when wandb.enabled but it is not installed."""
    try:
        import wandb
    except ImportError:
        raise ConfigError("config key 'wandb.enabled' is true but wandb is not installed: "
                          "pip install 'crisscross-kit[tracking]' (or wandb), or set wandb.enabled=false") from None
    return wandb


class WandbTracker:
    """Sends metrics.jsonl records to one W&B run, each once the checkpoint covering it exists."""

    def __init__(self, run, wandb_module):
        self.run, self.wandb = run, wandb_module
        self.pending: list[dict] = []

    @classmethod
    def start(cls, cfg: Config, run_dir: Path, step: int) -> Optional["WandbTracker"]:
        if not cfg.wandb.enabled or cfg.wandb.mode == "disabled":
            return None
        wandb = require_wandb(cfg)
        w = cfg.wandb
        run = wandb.init(project=w.project, entity=w.entity or None, id=wandb_run_id(run_dir),
                         name=w.name or Path(run_dir).name, dir=w.dir or str(run_dir), mode=w.mode,
                         resume="allow", config=to_dict(cfg), settings=wandb.Settings(quiet=True))
        run.define_metric("trainer/step")
        run.define_metric("*", step_metric="trainer/step")
        tracker = cls(run, wandb)
        have = (held_offline(Path(run.dir).parents[1], run.id) if w.mode == "offline"
                else held_online(run))
        missing = [r for r in read_metrics(run_dir, kind=None)
                   if r.get("step", 0) <= step and (r.get("step", 0), r.get("kind", "step")) not in have]
        tracker.pending = missing
        tracker.commit(step)                        # what metrics.jsonl holds up to the checkpoint
        run.summary["replayed_records"] = len(missing)
        return tracker

    def log(self, rec: dict) -> None:
        """Queue a metrics record (sent by commit once its step is in a checkpoint)."""
        self.pending.append(rec)

    def commit(self, step: int) -> None:
        """Send the queued records of steps ≤ `step` (just written to a checkpoint), in order."""
        ready = sorted((r for r in self.pending if r.get("step", 0) <= step), key=lambda r: r.get("step", 0))
        self.pending = [r for r in self.pending if r.get("step", 0) > step]
        for rec in ready:
            kind = rec.get("kind", "step")
            data = {f"{'train' if kind == 'step' else kind}/{k}": v for k, v in rec.items()
                    if k not in _SKIP and isinstance(v, (int, float)) and not isinstance(v, bool)}
            data["trainer/step"] = rec.get("step", 0)
            self.run.log(data)

    def log_image(self, name: str, path: str | os.PathLike, step: int) -> None:
        """A figure (PNG) of the run, e.g. the demo's curves; sent at once."""
        self.run.log({name: self.wandb.Image(str(path)), "trainer/step": step})

    def finish(self, step: int) -> None:
        self.commit(step)
        self.run.finish()

    def abandon(self) -> None:
        """On a crash: close without sending the records no checkpoint covers (a resume redoes them)."""
        self.pending.clear()
        try:
            self.run.finish(exit_code=1)
        except Exception:  # noqa: BLE001 - never hide the original error
            pass


class _Held(set):
    """The (step, kind) pairs a W&B run holds; with a watermark, every pair up to that step."""

    def __init__(self, pairs=(), upto: Optional[int] = None):
        super().__init__(pairs)
        self.upto = upto

    def __contains__(self, pair) -> bool:
        return (self.upto is not None and pair[0] <= self.upto) or super().__contains__(pair)


def held_online(run) -> _Held:
    """What a resumed online run holds: every record up to the last `trainer/step` in its summary."""
    last = run.summary.get("trainer/step") if hasattr(run.summary, "get") else None
    return _Held(upto=int(last) if isinstance(last, (int, float)) else None)


def held_offline(wandb_dir: Path, run_id: str) -> _Held:
    """(step, kind) pairs durably written in the earlier offline `.wandb` files of `run_id` under
    `wandb_dir` (each process writes its own `offline-run-*-<id>/run-<id>.wandb`)."""
    pairs = set()
    for f in sorted(Path(wandb_dir).glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")):
        for items in history_items(f):
            if "trainer/step" in items:
                kinds = {k.split("/", 1)[0] for k in items if "/" in k and not k.startswith("trainer/")}
                pairs |= {(int(items["trainer/step"]), "step" if k == "train" else k) for k in kinds}
    return _Held(pairs)


def history_items(path: Path) -> list[dict]:
    """The logged rows of one `.wandb` file ({key: value} per history record). The file is a LevelDB-style
    log (a 7-byte ':W&B' header, 32 KiB blocks of records framed by crc32 / length / type) of protobuf
    `Record`s; a file cut short by a kill ends where its data ends."""
    from wandb.proto import wandb_internal_pb2 as pb
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        return []
    chunks, pos, buf = [], 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            chunks.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            chunks.append(buf + chunk)
    rows = []
    for c in chunks:
        rec = pb.Record()
        try:
            rec.ParseFromString(c)
        except Exception:  # noqa: BLE001 - a record cut by a kill
            continue
        if rec.WhichOneof("record_type") == "history":
            rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item})
    return rows


def log_figures(cfg: Config, run_dir: Path, figures: dict, step: int) -> None:
    """Add PNG figures ({name: path}) to the run's W&B run (the same id), e.g. the demo's report."""
    wandb = require_wandb(cfg)
    w = cfg.wandb
    run = wandb.init(project=w.project, entity=w.entity or None, id=wandb_run_id(run_dir),
                     name=w.name or Path(run_dir).name, dir=w.dir or str(run_dir), mode=w.mode,
                     resume="allow", settings=wandb.Settings(quiet=True))
    run.log({f"figures/{Path(name).stem}": wandb.Image(str(path)) for name, path in figures.items()})
    run.finish()
