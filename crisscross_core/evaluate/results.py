"""Result records (JSON) and tables beside the paper's numbers (docs/evaluation.md).

    path = write_result("esc_svm", res, out_dir="results", weights_sha256=..., seed=0, config={...},
                        run={"folds": "5/5", "crops": 100, "windows": 10, "seed": 0, "partial": False})
    print(render_markdown(load_results("results")))   # or render_plain(...)

A record: protocol, dataset, pretrain (when known), metric, mean, std, run (what was run: folds, crops,
windows, seed, solver, ...; `partial` when some folds / steps were left out), per-split numbers, config,
weights path + sha256, seed, timestamp (UTC ISO), kit version. Means are fractions in [0, 1]; tables
print percentages. A partial run is marked PARTIAL in tables and is not compared with the paper.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional, Sequence

from ..data.datasets import DataError

# Top-1 (%) from the paper's / release's README table: full fine-tuning (UCF/HMDB), SVM (ESC-50), fc (DCASE).
PAPER = {
    "kinetics_sound": {"ucf101": 88.3, "hmdb51": 60.5, "esc50": 82.8, "dcase": 93.0},
    "kinetics400": {"ucf101": 91.5, "hmdb51": 64.7, "esc50": 86.8, "dcase": 96.0},
    "audioset": {"ucf101": 92.4, "hmdb51": 67.4, "esc50": 90.5, "dcase": 97.0},
}
PRETRAIN_NAMES = {"kinetics_sound": "Kinetics-Sound (22K)", "kinetics400": "Kinetics400 (240K)",
                  "audioset": "AudioSet (1.8M)"}
PROTOCOL_DATASET = {"esc_svm": "esc50", "dcase": "dcase"}


def guess_pretrain(weights: Optional[str]) -> Optional[str]:
    """'kinetics_sound' / 'kinetics400' / 'audioset' from a released file name, else None."""
    if not weights:
        return None
    n = Path(str(weights)).name.lower()
    if "kinetics_sound" in n:
        return "kinetics_sound"
    if "kinetics_400" in n or "kinetics400" in n:
        return "kinetics400"
    if "audioset" in n:
        return "audioset"
    return None


def write_result(protocol: str, result: dict, out_dir, *, dataset: str, weights: Optional[str] = None,
                 weights_sha256: Optional[str] = None, seed: int = 0, config: Optional[dict] = None,
                 pretrain: Optional[str] = None, metric: str = "top1", label: str = "",
                 run: Optional[dict] = None) -> Path:
    """Write `<out_dir>/<protocol>_<dataset>_<timestamp>.json` atomically; returns the path.

    `result` must hold `mean` (fraction) and may hold `std`, `per_fold` / `per_split`, extra numbers.
    `run`: what was run (folds "k/K", crops, windows, seed, solver, split, partial); tables show it.
    """
    if "mean" not in result:
        raise ValueError(f"write_result({protocol!r}): result has no 'mean' (keys: {sorted(result)})")
    from crisscross_core import __version__
    now = time.time()
    if run is None:          # what the result itself says about how it was run (e.g. run_svm's output)
        run = {k: result[k] for k in ("crops", "windows", "seed", "solver", "partial") if k in result}
        if "folds_run" in result and "folds_total" in result:
            run = {"folds": f"{len(result['folds_run'])}/{result['folds_total']}", **run}
    rec = {"protocol": protocol, "dataset": dataset, "pretrain": pretrain or guess_pretrain(weights),
           "metric": metric, "label": label, "mean": result["mean"], "std": result.get("std"),
           "run": run or {}, "partial": bool((run or {}).get("partial", result.get("partial", False))),
           "weights": weights, "weights_sha256": weights_sha256, "seed": seed,
           "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "kit_version": __version__,
           "config": config or result.get("config", {}), "result": result}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{protocol}_{dataset}_{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}_{os.getpid()}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rec, indent=2, default=_jsonable))
    tmp.replace(path)
    return path


def _jsonable(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def load_results(paths) -> list[dict]:
    """Records from JSON files and/or directories of them (sorted by timestamp)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    recs = []
    for p in map(Path, paths):
        files = sorted(p.glob("*.json")) if p.is_dir() else [p]
        for f in files:
            try:
                r = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise DataError(f"cannot read result file {f}: {e}") from e
            if "protocol" in r and "mean" in r:
                r["_file"] = str(f)
                r["_mtime_ns"] = f.stat().st_mtime_ns  # breaks ties of second-resolution timestamps
                recs.append(r)
    return sorted(recs, key=lambda r: (r.get("timestamp", ""), r["_mtime_ns"]))


def run_desc(r: dict) -> str:
    """'folds 1/5 · crops 2 · windows 10 · seed 0 · torch · PARTIAL' from a record's `run`."""
    run = r.get("run") or {}
    parts = []
    for key, name in (("folds", "folds"), ("split", ""), ("epochs", "epochs"), ("frames", "frames"),
                      ("crops", "crops"), ("windows", "windows"), ("seed", "seed"), ("solver", "")):
        v = run.get(key)
        if v is not None and v != "":
            parts.append(f"{name} {v}".strip())
    if r.get("partial"):
        parts.append("PARTIAL")
    return " · ".join(parts) or "—"


def _rows(records: Sequence[dict]) -> list[list[str]]:
    rows = []
    for r in records:
        ds, pre = r["dataset"], r.get("pretrain")
        paper = PAPER.get(pre or "", {}).get(ds)
        ours = 100 * r["mean"]
        std = f" ± {100 * r['std']:.1f}" if r.get("std") is not None else ""
        if r.get("metric", "top1") != "top1":
            paper = None                               # the paper table is top-1 only
        delta = "—"
        if paper is not None:
            delta = "— (partial)" if r.get("partial") else f"{ours - paper:+.1f}"
        rows.append([ds, r["protocol"] + (f" ({r['label']})" if r.get("label") else ""), r.get("metric", "top1"),
                     PRETRAIN_NAMES.get(pre, pre or "—"), _weights_desc(r), run_desc(r),
                     f"{ours:.1f}{std}", f"{paper:.1f}" if paper is not None else "—", delta])
    return rows


def _weights_desc(r: dict) -> str:
    enc = (r.get("config") or {}).get("encoder") or {}
    if r.get("weights") and r["weights"] != "random":
        return Path(r["weights"]).name
    if enc.get("baseline"):
        return f"{enc['baseline']} (no network)"
    size = ", ".join(f"{k} {enc[k]}" for k in ("depth", "width") if enc.get(k) is not None)
    seed = enc.get("seed", r.get("seed"))
    return f"random init ({size}{', ' if size else ''}seed {seed})"


HEADER = ["dataset", "protocol", "metric", "pretraining", "weights", "run", "ours (%)", "paper top-1 (%)", "Δ"]


def paper_rows() -> list[list[str]]:
    return [[PRETRAIN_NAMES[p]] + [f"{PAPER[p][d]:.1f}" for d in ("ucf101", "hmdb51", "esc50", "dcase")]
            for p in PAPER]


def render_markdown(records: Sequence[dict], include_paper: bool = True) -> str:
    """Markdown table: our records beside the paper's number for the same dataset and pretraining."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(records)]
    if include_paper:
        lines += ["", "Paper (CrissCross, AAAI 2023; top-1 %):", "",
                  "| pretraining | UCF101 | HMDB51 | ESC50 | DCASE |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(r) + " |" for r in paper_rows()]
    return "\n".join(lines)


def render_plain(records: Sequence[dict], include_paper: bool = True) -> str:
    """Fixed-width plain-text table (no pandas)."""
    def table(header, rows):
        w = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        fmt = lambda r: "  ".join(str(x).ljust(n) for x, n in zip(r, w)).rstrip()
        return "\n".join([fmt(header), "  ".join("-" * n for n in w)] + [fmt(r) for r in rows])
    out = table(HEADER, _rows(records))
    if include_paper:
        out += "\n\nPaper (CrissCross, AAAI 2023; top-1 %):\n" + table(
            ["pretraining", "UCF101", "HMDB51", "ESC50", "DCASE"], paper_rows())
    return out
