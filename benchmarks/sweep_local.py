"""What notebook 06's laptop setting costs: one run at a time with a data worker, vs runs side by side
with one core each (one torch thread, data read in the training process), as the notebook runs them.

    python benchmarks/sweep_local.py                   # 40 steps of tiny_cpu each, the full demo data
    python benchmarks/sweep_local.py --notebook        # also notebook 06's default setting, end to end

Each run is its own `crisscross pretrain` process on the demo's training split. From their
metrics.jsonl: samples/s (mean of the logged windows after the first, which holds the start-up);
from the operating system: each process's peak resident memory. The side-by-side runs are the same
run as the one-at-a-time run (same seed and config but for the worker/thread settings), so their last
logged losses must equal it: printed as `same_losses`. `--notebook` executes notebooks/06_ablations
headless in an empty work directory (building the demo data included) and prints its wall time.
Prints one JSON line per figure; a shared machine's load slows every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def emit(figure: str, value, unit: str, **context) -> None:
    print(json.dumps({"figure": figure, "value": round(value, 4) if isinstance(value, float) else value,
                      "unit": unit, **context}), flush=True)


def run_side_by_side(manifest: str, runs: list[tuple[str, list[str]]], steps: int) -> dict:
    """Start every (run_dir, overrides) at once; wait; {run_dir: (peak RSS MB, wall s)}."""
    t0, procs = time.time(), {}
    for run_dir, extra in runs:
        cmd = [sys.executable, "-m", "crisscross_core.cli", "pretrain", "-c", "tiny_cpu",
               f"data.manifest={manifest}", "data.split=train", f"optim.max_steps={steps}",
               f"train.run_dir={run_dir}", "train.progress=false", "train.log_every=10",
               "train.checkpoint_every=100000", *extra]
        procs[subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).pid] = run_dir
    out = {}
    while procs:
        pid, status, usage = os.wait4(-1, 0)
        if pid in procs:
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"run {procs[pid]} failed (exit {os.waitstatus_to_exitcode(status)}); "
                                 f"see {procs[pid]}/error.txt")
            out[procs.pop(pid)] = (usage.ru_maxrss / 1024, time.time() - t0)
    return out


def throughput(run_dir: str) -> tuple[float, dict]:
    """(mean samples/s of the logged windows after the first, the last logged losses)."""
    from crisscross_core.runlog import read_metrics
    steps = read_metrics(run_dir)
    rates = [r["samples_per_s"] for r in steps[1:]] or [r["samples_per_s"] for r in steps]
    losses = {k: v for k, v in steps[-1].items() if k == "loss" or k.startswith("L")}
    return sum(rates) / len(rates), losses


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--data", default=None, help="a demo manifest (default: build the full demo data in a temp dir)")
    p.add_argument("--runs", type=int, default=0, help="runs side by side (0 = notebook 06's choice for this machine)")
    p.add_argument("--notebook", action="store_true", help="also execute notebook 06's default setting")
    args = p.parse_args()
    from crisscross_core.config import load_config
    from crisscross_core.data.synthetic import make_demo_dataset
    from crisscross_core.viz.notebook import local_parallelism
    tmp = Path(tempfile.mkdtemp(prefix="cc-sweep-local-"))
    manifest = args.data or str(make_demo_dataset(tmp / "demo", workers=2, progress=False))
    n = args.runs or local_parallelism(8)[0]
    ctx = {"steps": args.steps, "batch": load_config("tiny_cpu").optim.batch_size, "preset": "tiny_cpu",
           "load_avg_1min": round(os.getloadavg()[0], 2)}

    one = str(tmp / "one")                                # the trainer's default on this machine
    (rss1, wall1), = run_side_by_side(manifest, [(one, [])], args.steps).values()
    sps1, losses1 = throughput(one)
    emit("one_run_with_data_worker", sps1, "samples/s", wall_s=round(wall1, 1), peak_rss_mb=round(rss1), **ctx)

    side = [(str(tmp / f"side{i}"), ["data.num_workers=0", "train.cpu_threads=1"]) for i in range(n)]
    res = run_side_by_side(manifest, side, args.steps)
    per_run = [throughput(d) for d, _ in side]
    total = sum(s for s, _ in per_run)
    emit("side_by_side_total", total, "samples/s", runs=n, per_run=[round(s, 1) for s, _ in per_run],
         wall_s=round(max(w for _, w in res.values()), 1), peak_rss_mb=round(max(r for r, _ in res.values())),
         same_losses=all(l == losses1 for _, l in per_run), **ctx)
    emit("side_by_side_speedup", total / sps1, "x", runs=n, **ctx)

    if args.notebook:
        from nbclient import NotebookClient
        import jupytext
        env_work = tmp / "nbwork"
        os.environ.update(CRISSCROSS_NB_WORKDIR=str(env_work), CRISSCROSS_NB_SMALL="")
        nb = jupytext.read(REPO / "notebooks" / "06_ablations.py")
        t0 = time.time()
        NotebookClient(nb, timeout=7200, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
        wall = time.time() - t0
        from crisscross_core.sweep import attach_sweep
        rows = attach_sweep(env_work / "ablations").rows()
        emit("notebook06_default_wall", wall, "s", runs=len(rows), steps_per_run=sorted({r["step"] for r in rows}),
             completed=sum(r["state"] == "COMPLETED" for r in rows), work_dir="empty (demo data built)",
             **{k: v for k, v in ctx.items() if k != "steps"})


if __name__ == "__main__":
    main()
