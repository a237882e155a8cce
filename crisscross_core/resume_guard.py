"""Resuming safely: compare the new config with the checkpoint's before anything is touched, and keep
a history of every start's config in the run directory.

Keys fall into three kinds:
* harmless — logging, checkpoint frequency, workers, devices, progress, paths, `optim.max_steps`,
  growing `optim.epochs`: accepted, and each change is recorded;
* forcible — everything else that changes what is learned or the order of the data (data, augmentation,
  loss, optimiser and schedule, batch size, seed, precision): refused with the diff, unless the new
  config says `train.accept_config_changes=true`, which is recorded with the changes;
* incompatible — the model's architecture and the optimiser's kind: the checkpoint cannot be loaded
  into another shape, so these are refused even then (start a new run directory).

    changes = check_resume(new_cfg, checkpoint_state, run_dir)   # raises ResumeConfigError
    record_start(run_dir, new_cfg, step, changes, data_fingerprint)  # appends config_history.jsonl
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Optional

from .config import Config, ConfigError, from_dict, to_dict

HISTORY = "config_history.jsonl"
HARMLESS = {
    "name", "train.run_dir", "train.log_every", "train.checkpoint_every", "train.progress",
    "train.tensorboard", "train.export_at_end", "train.cpu_threads", "train.device", "train.compile",
    "train.channels_last", "train.accept_config_changes", "data.num_workers", "data.prefetch_factor",
    "data.max_retries", "data.manifest", "data.root", "optim.max_steps",
}
HARMLESS_PREFIXES = ("eval.", "wandb.")          # monitoring only: never touches the training stream
GROW_ONLY = {"optim.epochs"}                     # more epochs: accepted; fewer would change the past
INCOMPATIBLE_PREFIXES = ("model.",)
INCOMPATIBLE = {"optim.name"}


class ResumeConfigError(ConfigError):
    """The config differs from the checkpoint's in keys that change what is learned; nothing was touched."""


def flat(d: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and tuples are compared as lists."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def kind_of(key: str, old: Any, new: Any) -> str:
    if key in HARMLESS or key.startswith(HARMLESS_PREFIXES):
        return "harmless"
    if key in GROW_ONLY:
        return "harmless" if isinstance(old, (int, float)) and new >= old else "forcible"
    if key in INCOMPATIBLE or key.startswith(INCOMPATIBLE_PREFIXES):
        return "incompatible"
    return "forcible"


def config_changes(old: dict, new: Config) -> list[dict]:
    """[{key, old, new, kind}] between a checkpoint's config dict and `new` (old keys missing in an
    older kit version take their defaults)."""
    try:
        old_cfg = from_dict(Config, old or {})
    except ConfigError:          # a checkpoint of another kit version: compare what both know
        old_cfg = None
    a = flat(to_dict(old_cfg)) if old_cfg is not None else flat(old or {})
    b = flat(to_dict(new))
    return [{"key": k, "old": a.get(k), "new": b.get(k), "kind": kind_of(k, a.get(k), b.get(k))}
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _line(c: dict) -> str:
    return f"  {c['key']}: {c['old']!r} -> {c['new']!r}"


def check_resume(new: Config, state: dict, run_dir: Path, data_fingerprint: Optional[dict] = None) -> list[dict]:
    """The changes a resume from `state` (a checkpoint dict) would make, or ResumeConfigError.

    `data_fingerprint`: the new run's {"rows": n, "sha256": ...} of the rows it trains on; a checkpoint
    that recorded another one means the data changed (rows added, removed or edited)."""
    changes = config_changes(state.get("config") or {}, new)
    old_fp = state.get("data_fingerprint")
    if data_fingerprint and old_fp and old_fp.get("sha256") != data_fingerprint.get("sha256"):
        changes.append({"key": "(training rows)", "old": f"{old_fp.get('rows')} rows {old_fp.get('sha256', '')[:12]}",
                        "new": f"{data_fingerprint.get('rows')} rows {data_fingerprint.get('sha256', '')[:12]}",
                        "kind": "forcible"})
    step = state.get("step", "?")
    bad = [c for c in changes if c["kind"] == "incompatible"]
    if bad:
        raise ResumeConfigError(
            f"cannot resume {run_dir} (step {step}): the model differs from the checkpoint's, which "
            "cannot be loaded into another shape; use a new train.run_dir\n" + "\n".join(map(_line, bad)))
    forced = [c for c in changes if c["kind"] == "forcible"]
    if forced and not new.train.accept_config_changes:
        raise ResumeConfigError(
            f"resume refused: {run_dir} holds a run at step {step} trained with another config; these "
            "keys change what is learned or the data order. Start a new run (another train.run_dir), "
            "or resume anyway with train.accept_config_changes=true (recorded in "
            f"{Path(run_dir) / HISTORY})\n" + "\n".join(map(_line, forced)))
    return changes


def record_start(run_dir: Path, cfg: Config, step: int, changes: list[dict],
                 data_fingerprint: Optional[dict] = None) -> dict:
    """Append this start (fresh or resumed) to `<run_dir>/config_history.jsonl`; return the record."""
    rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "step": step,
           "resumed": step > 0, "host": socket.gethostname(), "pid": os.getpid(),
           "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "changes": changes,
           "forced": [c["key"] for c in changes if c["kind"] == "forcible"],
           "data_fingerprint": data_fingerprint, "config": to_dict(cfg)}
    with open(Path(run_dir) / HISTORY, "a") as f:
        f.write(json.dumps(rec, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return rec
