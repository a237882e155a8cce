"""Reading a run directory's records: `metrics.jsonl` written by `train(cfg)`.

Each line is one JSON object; `kind` is "step" (losses, lrs, throughput every log_every steps)
or "epoch" (data-health summary). A line cut by a kill is ignored.
"""
from __future__ import annotations

import json
from pathlib import Path


def metrics_path(run: str | Path) -> Path:
    run = Path(run)
    return run / "metrics.jsonl" if run.is_dir() or run.suffix != ".jsonl" else run


def read_metrics(run: str | Path, kind: str | None = "step") -> list[dict]:
    """Records of `kind` ("step", "epoch", or None for all) from a run dir or a metrics file."""
    path = metrics_path(run)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if kind is None or rec.get("kind", "step") == kind:
            out.append(rec)
    return out


def series(records: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of `key` over the records that have it."""
    pts = [(r["step"], r[key]) for r in records if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]
