"""What online evaluation costs: seconds per evaluation vs seconds per training step, on the demo.

    python benchmarks/online_eval.py                      # the full demo data (800 train / 200 held out)
    python benchmarks/online_eval.py --steps 60 --every 20

One `train(cfg)` of the `tiny_cpu` preset on the demo data with `eval.*` on the held-out split; from
its metrics.jsonl: the mean step time (wall time of the logged windows, evaluations excluded) and
the mean evaluation time. Prints one JSON line per figure, then the overhead of a few schedules
(evaluation every N steps): overhead = (eval s / N) / step s. Both come from the same run, so a
shared machine's load affects them alike.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path



def emit(figure: str, value: float, unit: str, **context) -> None:
    print(json.dumps({"figure": figure, "value": round(value, 5), "unit": unit, **context}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--data", default=None, help="a demo manifest (default: build the full demo data in a temp dir)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    from crisscross_core.data.synthetic import make_demo_dataset
    from crisscross_core.runlog import read_metrics
    from crisscross_core.train import train
    tmp = Path(tempfile.mkdtemp(prefix="cc-online-eval-"))
    manifest = args.data or str(make_demo_dataset(tmp / "demo", workers=2, progress=False))
    run = tmp / "run"
    with contextlib.redirect_stdout(sys.stderr):       # the trainer's log lines; stdout keeps the JSON
        train("tiny_cpu", [f"data.manifest={manifest}", f"train.run_dir={run}", f"optim.max_steps={args.steps}",
                           "train.progress=false", "train.log_every=1", f"train.cpu_threads={args.threads}",
                           f"eval.manifest={manifest}", "eval.split=test", f"eval.every={args.every}"])
    steps = read_metrics(run)
    evals = read_metrics(run, kind="eval")
    # each step record's window covers its steps; drop the first (start-up) and the windows that
    # contain an evaluation (the step right after one)
    eval_steps = {e["step"] for e in evals}
    times = [(r["step"], r["time"]) for r in steps]
    dts = [t1 - t0 for (s0, t0), (s1, t1) in zip(times, times[1:]) if s0 not in eval_steps and s1 - s0 == 1]
    step_s = sorted(dts)[len(dts) // 2]
    eval_s = sum(e["seconds"] for e in evals) / len(evals)
    emit("online_eval_seconds_per_eval", eval_s, "s", clips=evals[-1]["n_items"], evals=len(evals))
    emit("train_seconds_per_step", step_s, "s", preset="tiny_cpu", batch=64, threads=args.threads)
    for every in (25, 50, 100, 200):
        emit(f"online_eval_overhead_every_{every}", (eval_s / every) / step_s, "fraction of training time")


if __name__ == "__main__":
    main()
