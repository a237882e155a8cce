"""Sweeps: a grid of pretraining runs as one Slurm job array, read out and compared from one cell.

    from crisscross_core.launch import sweep
    s = sweep("tiny_cpu", grid={"data.relation": ["overlapped", "far_apart"],
                                "loss.asynchronous": [True, False]},
              seeds=[0, 1], overrides=["data.manifest=demo/manifest.csv"],
              readout={"manifest": "demo/manifest.csv", "split": "test"},
              cluster="loopback", max_parallel=4, sweep_dir="runs/ablation")
    s.status(); s.table(); s.plot("knn_video", x="data.relation", hue="loss.asynchronous")

Each run is a full `train(cfg)` in its own run directory, named from its overrides, followed by a
readout: the online evaluation at the end of the run (online_eval.py) on the `readout` manifest.
Slurm: one job array (at most `max_parallel` tasks at once). Local executor: `max_parallel`
processes, each running its share of the runs one after another. Every run writes its state to
`<run_dir>/sweep_task.json` (RUNNING / COMPLETED / FAILED with the error line), so calling `sweep`
again with the same `sweep_dir` re-attaches: finished and running runs are left alone, and only the
missing or failed ones are submitted (each resumes from its own checkpoint).
"""
from __future__ import annotations

import datetime as _dt
import itertools
import json
import os
import re
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional, Sequence

from .config import ConfigError, load_config, save_config
from .fileio import atomic_write_text
from .jobstatus import process_alive
from .runlog import read_metrics

TASK_FILE = "sweep_task.json"
SWEEP_FILE = "sweep.json"
FINAL = ("COMPLETED", "FAILED")


# ----------------------------------------------------------------------------- the grid

def expand(grid: Optional[dict] = None, runs: Optional[Sequence[Sequence[str]]] = None,
           seeds: Optional[Sequence[int]] = None) -> list[list[str]]:
    """Override sets: the cartesian product of `grid` ({key: [values]}), or the given `runs`, each
    repeated per seed (`train.seed=<s>` appended) when `seeds` is given."""
    if (grid is None) == (runs is None):
        raise ConfigError("give a sweep either grid={key: [values]} or runs=[[overrides], ...]")
    if grid is not None:
        if not grid or any(not isinstance(v, (list, tuple)) or not v for v in grid.values()):
            raise ConfigError(f"sweep grid must map keys to non-empty lists of values, got {grid!r}")
        keys = list(grid)
        sets = [[f"{k}={_yaml(v)}" for k, v in zip(keys, combo)] for combo in itertools.product(*grid.values())]
    else:
        sets = [list(r) for r in runs]
    if seeds:
        sets = [s + [f"train.seed={int(seed)}"] for s in sets for seed in seeds]
    return sets


def _yaml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def run_name(overrides: Sequence[str]) -> str:
    """A directory name from overrides: 'relation=far_apart__asynchronous=false__seed=1'."""
    parts = []
    for o in overrides:
        key, _, value = o.partition("=")
        value = Path(value).stem if "/" in value else value
        parts.append(f"{key.split('.')[-1]}={value}")
    name = "__".join(parts) or "base"
    return re.sub(r"[^A-Za-z0-9_.=+-]", "-", name)[:180]


# ----------------------------------------------------------------------------- what runs in the job

def _write_task(run_dir: Path, state: str, **fields: Any) -> None:
    rec = {"state": state, "host": socket.gethostname(), "pid": os.getpid(), "time": time.time(),
           "slurm_job": _slurm_task_id(), **fields}
    atomic_write_text(Path(run_dir) / TASK_FILE, json.dumps(rec, indent=1, default=str))


def _slurm_task_id() -> Optional[str]:
    arr, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{arr}_{task}" if arr and task else os.environ.get("SLURM_JOB_ID")


def train_and_read(config: str, _overrides=None, target: str = "crisscross_core.train:train") -> dict:
    """One sweep run: `target(config)` (train), then its readout (the last online evaluation) —
    with the run's state in `<run_dir>/sweep_task.json` whatever happens."""
    from .launch import resolve_target
    cfg = load_config(config)
    run_dir = Path(cfg.train.run_dir)
    started = time.time()
    _write_task(run_dir, "RUNNING", started=started)
    try:
        summary = resolve_target(target)(config, None)
        evals = read_metrics(run_dir, kind="eval")
        readout = {k: v for k, v in (evals[-1] if evals else {}).items()
                   if isinstance(v, (int, float)) and k not in ("time", "seconds")}
        _write_task(run_dir, "COMPLETED", started=started, ended=time.time(), summary=summary, readout=readout)
        return {"run_dir": str(run_dir), "readout": readout}
    except BaseException as exc:   # SystemExit too: a requeue must not read as success
        if isinstance(exc, SystemExit):
            _write_task(run_dir, "REQUEUED", started=started)
        else:
            line = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            _write_task(run_dir, "FAILED", started=started, ended=time.time(), error=line,
                        traceback=traceback.format_exc())
        raise


def run_stripe(tasks_file: str, _overrides=None, target: str = "crisscross_core.train:train") -> dict:
    """The local executor's share of a sweep: its runs one after another; a failing run does not stop
    the others (its failure is in its own sweep_task.json)."""
    done, failed = [], []
    for config in json.loads(Path(tasks_file).read_text()):
        try:
            train_and_read(config, None, target=target)
            done.append(config)
        except Exception:  # noqa: BLE001 - recorded by train_and_read
            failed.append(config)
    return {"done": len(done), "failed": len(failed)}


# ----------------------------------------------------------------------------- the handle

PROPORTIONS = ("knn_video", "knn_audio", "r1_a2v", "r1_v2a")   # readouts that are a fraction of clips
READOUTS = PROPORTIONS + ("sync_cos", "async_cos", "sync_gap")    # what online_eval records, to rank by


def sampling_error(metric: str, a: dict, b: dict) -> Optional[float]:
    """Binomial standard error of the difference of two summary rows' means of a proportion readout,
    sqrt(p_a(1-p_a)/n_a + p_b(1-p_b)/n_b) over their held-out clips; None for other metrics or when the
    clip counts are unknown. (Both are read out on the same clips, which makes the true error of the
    difference smaller when the two models err on the same clips: this one errs on the safe side.)"""
    if metric not in PROPORTIONS or not a.get("n_items") or not b.get("n_items"):
        return None
    return sum(r["mean"] * (1 - r["mean"]) / r["n_items"] for r in (a, b)) ** 0.5


class Sweep:
    """All runs of a sweep: `status()`, `table()`, `errors()`, `wait()`, `summary()`, `plot()`."""

    def __init__(self, sweep_dir: Path, meta: dict):
        self.dir, self.meta = Path(sweep_dir), meta

    @property
    def runs(self) -> list[dict]:
        return self.meta["runs"]

    def _task(self, run: dict) -> Optional[dict]:
        try:
            rec = json.loads((Path(run["run_dir"]) / TASK_FILE).read_text())
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) else None

    def state(self, run: dict) -> str:
        """COMPLETED, FAILED, RUNNING, PENDING, REQUEUED, or MISSING (never submitted, or its job is gone)."""
        rec = self._task(run)
        own = rec.get("state") if rec else None
        if own == "COMPLETED":
            return own
        job = run.get("job")
        alive = _job_alive(job) if job else False
        if own in ("RUNNING", "REQUEUED"):          # ... unless the process or job behind it is gone
            if not rec.get("slurm_job") and rec.get("host") == socket.gethostname():
                return own if process_alive(rec) else "FAILED"
            return own if alive is not False else "FAILED"
        if own == "FAILED":
            return "PENDING" if alive and run.get("submitted_ts", 0) > rec.get("time", 0) else "FAILED"
        if job is None:
            return "MISSING"                            # never submitted
        return "PENDING" if alive else "FAILED"         # its job ended before the run could say anything

    def status(self) -> dict:
        """{run name: state}."""
        return {r["name"]: self.state(r) for r in self.runs}

    def errors(self) -> dict:
        """{run name: its error line} for the failed runs."""
        out = {}
        for r in self.runs:
            rec = self._task(r)
            if self.state(r) == "FAILED":
                out[r["name"]] = (rec or {}).get("error") or self._no_result(r)
        return out

    def _no_result(self, run: dict) -> str:
        job = run.get("job") or {}
        log = self.dir / "submitit" / f"{job.get('id', '?')}_0_log.out"
        return f"job {job.get('id', '?')} ended without recording a result; its log: {log}"

    def rows(self) -> list[dict]:
        """One dict per run: its overrides (as columns), state, step, final losses, readout, wall time, error."""
        out = []
        for r in self.runs:
            rec = self._task(r) or {}
            row = {"run": r["name"]}
            for o in r["overrides"]:
                k, _, v = o.partition("=")
                row[k] = v
            row["state"] = self.state(r)
            steps = read_metrics(r["run_dir"])
            last = steps[-1] if steps else {}
            row["step"] = last.get("step")
            for k in ("loss", "Lv1v2", "La1a2", "Lv1a1", "Lv2a2", "Lv1a2", "La1v2"):
                if k in last:
                    row[k] = last[k]
            row.update(rec.get("readout") or {})
            if rec.get("started") and rec.get("ended"):
                row["wall_s"] = round(rec["ended"] - rec["started"], 1)
            if row["state"] == "FAILED":
                row["error"] = rec.get("error") or self._no_result(r)
            out.append(row)
        return out

    def table(self):
        """`rows()` as a pandas DataFrame (when pandas is installed), else the list of dicts."""
        try:
            import pandas as pd
        except ImportError:
            return self.rows()
        return pd.DataFrame(self.rows()).set_index("run")

    def wait(self, timeout: Optional[float] = None, poll: float = 2.0) -> dict:
        """Block until no run is PENDING / RUNNING / REQUEUED; return status()."""
        t0 = time.time()
        while True:
            st = self.status()
            if all(s in FINAL + ("MISSING",) for s in st.values()):
                return st
            if timeout is not None and time.time() - t0 > timeout:
                raise TimeoutError(f"sweep {self.dir}: still running after {timeout} s: {st}")
            time.sleep(poll)

    def summary(self, metric: str, by: Sequence[str]) -> list[dict]:
        """Settings (the `by` keys) ranked by the mean of `metric` over their completed runs (e.g. over
        seeds): [{setting..., "mean", "std", "n", "n_items"}], best first. n_items: the fewest held-out
        clips any of the setting's readouts was computed on (None when the readouts do not say).
        A `by` key no run sweeps, or a metric no completed run reports, is a ConfigError naming it
        (grouping by a misspelt key would pool every run into one "setting")."""
        rows = self.rows()
        self._check_names(metric, by, rows)
        groups: dict = {}
        for row in rows:
            if row["state"] != "COMPLETED" or metric not in row:
                continue
            key = tuple(row.get(k, "") for k in by)
            groups.setdefault(key, []).append((row[metric], row.get("n_items")))
        out = []
        for key, pairs in groups.items():
            vals = [v for v, _ in pairs]
            n = len(vals)
            mean = sum(vals) / n
            std = (sum((v - mean) ** 2 for v in vals) / (n - 1)) ** 0.5 if n > 1 else None
            items = [int(i) for _, i in pairs if i]
            out.append({**dict(zip(by, key)), "mean": mean, "std": std, "n": n,
                        "n_items": min(items) if len(items) == n else None})
        return sorted(out, key=lambda r: -r["mean"])

    def swept(self) -> list[str]:
        """The keys the runs' own overrides set (grid keys and train.seed), in the grid's order."""
        return list(dict.fromkeys(o.partition("=")[0] for r in self.runs for o in r["overrides"]))

    def _check_names(self, metric: str, by: Sequence[str], rows: list[dict]) -> None:
        swept = self.swept()
        for k in by:
            if k not in swept:
                raise ConfigError(f"sweep {self.dir.name}: {k!r} is not a swept key; swept: {', '.join(swept) or 'none'}")
        done = [r for r in rows if r["state"] == "COMPLETED"]
        if done and not any(metric in r for r in done):
            fixed = set(swept) | {"run", "state", "step", "error", "wall_s"}
            have = sorted({k for r in done for k, v in r.items() if k not in fixed and isinstance(v, (int, float))})
            raise ConfigError(f"sweep {self.dir.name}: no completed run reports {metric!r}; they report: "
                              f"{', '.join(have)}")

    def verdict(self, metric: str, by: Sequence[str]) -> str:
        """One sentence: which setting won on `metric`, by how much, with the spread (over seeds). With
        one seed per setting there is no spread; for a readout that is a fraction of held-out clips
        (kNN top-1, R@1) the sentence then gives the difference's binomial standard error instead."""
        ranked = self.summary(metric, by)
        if not ranked:
            return f"no completed run reports {metric!r} yet"
        fmt = lambda r: (f"{', '.join(f'{k}={r[k]}' for k in by)}: {r['mean']:.4f}"
                         + (f" ± {r['std']:.4f} (n={r['n']})" if r["std"] is not None else f" (n={r['n']})"))
        if len(ranked) == 1:
            return f"only one setting completed: {fmt(ranked[0])}"
        best, second = ranked[0], ranked[1]
        if best["mean"] == second["mean"]:
            return f"no winner on {metric}: {fmt(best)} ties with {fmt(second)}"
        gap = best["mean"] - second["mean"]
        head = f"best {metric}: {fmt(best)}; ahead of {fmt(second)} by {gap:.4f}"
        spread = max((r["std"] or 0.0) for r in ranked[:2])
        if spread:
            clear = "more than" if gap > 2 * spread else "within"
            pooled = [k for k in self.swept() if k not in by]     # what the runs of one setting differ in
            over = "seeds" if pooled == ["train.seed"] else f"the runs pooled across {', '.join(pooled)}"
            return f"{head}, {clear} two standard deviations over {over}"
        se = sampling_error(metric, best, second)
        if se is None:
            return f"{head} (one seed each: no spread to compare with)"
        clear = "more than" if gap > 2 * se else "within"
        return (f"{head} (one seed each: no spread over seeds; {clear} two binomial standard errors of the "
                f"difference, {se:.4f}, over {min(best['n_items'], second['n_items'])} held-out clips)")

    def plot(self, metric: str | Sequence[str], x: str, hue: Optional[str] = None, title: str = "",
             chance: Optional[float | dict] = None):
        """Bars of `metric` per value of `x`, grouped by `hue`, error bars = std over seeds; `chance`
        (the metric's chance level) as a dashed line. Several metrics: one panel each, side by side,
        `chance` then a {metric: level} dict."""
        from .viz.sweep_figure import sweep_figure
        metrics = [metric] if isinstance(metric, str) else list(metric)
        levels = chance if isinstance(chance, dict) else {m: chance for m in metrics}
        panels = [(self.summary(m, [x] + ([hue] if hue else [])), m, levels.get(m)) for m in metrics]
        order = [o.partition("=")[2] for r in self.runs for o in r["overrides"] if o.partition("=")[0] == x]
        return sweep_figure(panels, x, hue, title, order=list(dict.fromkeys(order)))   # as the grid lists them

    def __repr__(self) -> str:
        counts: dict = {}
        for s in self.status().values():
            counts[s] = counts.get(s, 0) + 1
        return f"Sweep({self.dir}, {len(self.runs)} runs: {counts})"


def _job_alive(job: dict) -> Optional[bool]:
    """Is the job that should run this run still queued or running? None: cannot tell."""
    if job.get("kind") == "slurm":
        from .jobs import _sacct_state, _scontrol_state
        st = _scontrol_state(job["id"]) or _sacct_state(job["id"])
        if st is None:
            return None
        return st.split()[0].upper() in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED",
                                          "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING")
    if job.get("kind") == "local":
        if job.get("host") != socket.gethostname():
            return None
        return process_alive({"host": job["host"], "pid": job.get("pid")})
    return None


# ----------------------------------------------------------------------------- submission

def sweep(base: Any = "tiny_cpu", grid: Optional[dict] = None, runs: Optional[Sequence[Sequence[str]]] = None,
          *, seeds: Optional[Sequence[int]] = None, overrides: Optional[Sequence[str]] = None,
          readout: Optional[dict] = None, cluster: str | Path | dict = "local", nodes: int = 1,
          gpus_per_node: Optional[int] = None, tasks_per_node: Optional[int] = None, max_parallel: int = 4,
          time_min: Optional[int] = None, sweep_dir: Optional[str | Path] = None,
          target: str = "crisscross_core.train:train", python_path: Optional[list] = None,
          submit: bool = True, **slurm: Any) -> Sweep:
    """Submit (or re-attach to) a sweep; return its handle. See the module docstring.

    base: preset / YAML / Config; overrides: applied to every run before its own; readout: the held-out
    set of the final online evaluation ({"manifest", "split", "root", "max_items"} → eval.*);
    max_parallel: Slurm array parallelism, or local processes. time_min: minutes per run (a local
    process running several runs gets that many times more). Every run's config is validated before
    anything is submitted. submit=False only re-attaches.
    """
    from .launch import LaunchError, _python_command, build_executor, load_profile, snapshot_code
    sets = expand(grid, runs, seeds)
    common = list(overrides or [])
    for k, v in (readout or {}).items():
        if k not in ("manifest", "split", "root", "max_items", "knn_k"):
            raise ConfigError(f"sweep readout key {k!r} unknown; use manifest, split, root, max_items, knn_k")
        if k in ("manifest", "root") and v:
            v = str(Path(v).expanduser().resolve())
        common.append(f"eval.{k}={v}")
    sdir = Path(sweep_dir or f"runs/sweep-{_dt.datetime.now():%Y%m%d-%H%M%S}").expanduser().resolve()
    sdir.mkdir(parents=True, exist_ok=True)
    meta_path = sdir / SWEEP_FILE
    old = json.loads(meta_path.read_text()) if meta_path.is_file() else {"runs": []}
    known = {r["name"]: r for r in old["runs"]}
    common = [_absolute(o) for o in common]          # the jobs run in the code snapshot, not here
    run_list, configs = [], {}
    for s in sets:
        s = [_absolute(o) for o in s]
        name = run_name(s)
        rdir = sdir / name
        try:
            cfg = load_config(base, [*common, *s, f"train.run_dir={rdir}"])
        except ConfigError as e:
            raise ConfigError(f"sweep run {name!r}: {e}") from None
        configs[name] = cfg
        run_list.append({**known.get(name, {}), "name": name, "overrides": s, "run_dir": str(rdir)})
    handle = Sweep(sdir, {"base": str(base), "common": common, "runs": run_list,
                          "cluster": str(cluster) if not isinstance(cluster, dict) else "<dict>"})
    todo = [r for r in run_list if handle.state(r) in ("MISSING", "FAILED")]
    if submit and todo:
        kind = cluster if cluster in ("local", "debug") else "slurm"
        if kind == "debug":
            raise LaunchError("sweeps run on 'local' or a Slurm profile, not 'debug'")
        prof = {} if kind != "slurm" else load_profile(cluster)
        gpus = int(gpus_per_node if gpus_per_node is not None else prof.get("gpus_per_node", 0))
        ntasks = int(tasks_per_node or gpus or prof.get("tasks_per_node", 1))
        snap = snapshot_code(sdir)
        python = _python_command(snap, python_path or [])
        cfg_paths = {}
        for r in todo:
            p = snap / "configs" / f"{r['name']}.yaml"
            save_config(configs[r["name"]], p)
            cfg_paths[r["name"]] = str(p)
            Path(r["run_dir"]).mkdir(parents=True, exist_ok=True)
        now = time.time()
        timeout = int(time_min or prof.get("time_min", 60))
        if kind == "slurm":
            _submit_array(todo, cfg_paths, prof, sdir, python, nodes, ntasks, gpus, timeout, max_parallel,
                          target, slurm, now)
        else:
            if nodes != 1:
                raise LaunchError("cluster='local' runs on one node; use nodes=1 or a Slurm profile")
            _submit_local(todo, cfg_paths, sdir, snap, python, ntasks, gpus, timeout, max_parallel, target, now)
    atomic_write_text(meta_path, json.dumps(handle.meta, indent=1))
    return handle


def _absolute(override: str) -> str:
    """'data.manifest=rel.csv' -> the absolute path (paths are resolved here, jobs run elsewhere)."""
    key, sep, value = override.partition("=")
    if sep and value and key.strip() in ("data.manifest", "data.root", "eval.manifest", "eval.root"):
        return f"{key}={Path(value).expanduser().resolve()}"
    return override


def _submit_array(todo, cfg_paths, prof, sdir, python, nodes, ntasks, gpus, timeout, max_parallel, target,
                  slurm, now) -> None:
    from .launch import Runner, build_executor
    ex = build_executor("slurm", prof, sdir / "submitit", python, nodes=nodes, tasks_per_node=ntasks,
                        gpus_per_node=gpus, time_min=timeout, job_name=f"cc-sweep-{sdir.name}"[:60], **slurm)
    ex.update_parameters(array_parallelism=max(1, int(max_parallel)))
    with ex.batch():                                # one sbatch --array for all of them
        jobs = [ex.submit(Runner("crisscross_core.sweep:train_and_read", cfg_paths[r["name"]], {"target": target},
                                 run_dir=r["run_dir"])) for r in todo]
    for r, job in zip(todo, jobs):
        r.update(job={"kind": "slurm", "id": str(job.job_id)}, submitted_ts=now)


def _submit_local(todo, cfg_paths, sdir, snap, python, ntasks, gpus, timeout, max_parallel, target, now) -> None:
    from .launch import Runner, build_executor
    n = max(1, min(int(max_parallel), len(todo)))
    for i in range(n):
        share = todo[i::n]
        tasks_file = snap / f"stripe{i}.json"
        atomic_write_text(tasks_file, json.dumps([cfg_paths[r["name"]] for r in share]))
        ex = build_executor("local", {}, sdir / "submitit", python, tasks_per_node=ntasks, gpus_per_node=gpus,
                            time_min=timeout * len(share))      # the stripe runs its runs one after another
        job = ex.submit(Runner("crisscross_core.sweep:run_stripe", str(tasks_file), {"target": target}))
        pid = job._process.pid if getattr(job, "_process", None) is not None else None
        for r in share:
            r.update(job={"kind": "local", "id": str(job.job_id), "host": socket.gethostname(), "pid": pid},
                     submitted_ts=now)


def attach_sweep(sweep_dir: str | Path) -> Sweep:
    """The handle of an existing sweep directory (reads sweep.json; submits nothing)."""
    p = Path(sweep_dir).expanduser().resolve() / SWEEP_FILE
    try:
        return Sweep(p.parent, json.loads(p.read_text()))
    except FileNotFoundError:
        from .launch import LaunchError
        raise LaunchError(f"{p.parent}: no {SWEEP_FILE} (not a sweep directory)") from None


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    """`crisscross sweep -c PRESET --grid key=a,b --grid key2=x,y [--seeds 0,1] [--profile P] ...`"""
    parser.add_argument("-c", "--config", default="tiny_cpu", help="preset or YAML file (the base of every run)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="a swept key and its values (repeat for more keys: their cartesian product)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds: each setting once per seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="an override applied to every run (repeatable)")
    parser.add_argument("--readout-manifest", default=None, help="held-out manifest of the final online evaluation")
    parser.add_argument("--readout-split", default="", help="its split tag")
    parser.add_argument("--profile", "--cluster", dest="cluster", default="local",
                        help="'local' or a Slurm profile (slurm/profiles/ name or YAML path)")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus-per-node", type=int, default=None)
    parser.add_argument("--max-parallel", type=int, default=4, help="runs at once (Slurm array parallelism)")
    parser.add_argument("--time", type=int, default=None, dest="time_min", help="minutes per run")
    parser.add_argument("--sweep-dir", default=None, help="where the runs go (re-use it to resume the sweep)")
    parser.add_argument("--metric", default="knn_video", choices=READOUTS,
                        help="readout ranked in the printed verdict")
    parser.add_argument("--wait", action="store_true", help="block until every run has ended, then print the table")


def _parse_grid(items: Sequence[str]) -> dict:
    import yaml
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"--grid {item!r} is not of the form key=v1,v2,...")
        grid[key.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def run(args) -> int:
    if not args.grid:
        raise ConfigError("give at least one --grid key=v1,v2")
    grid = _parse_grid(args.grid)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    readout = {"manifest": args.readout_manifest, "split": args.readout_split} if args.readout_manifest else None
    s = sweep(args.config, grid=grid, seeds=seeds, overrides=args.overrides, readout=readout,
              cluster=args.cluster, nodes=args.nodes, gpus_per_node=args.gpus_per_node,
              max_parallel=args.max_parallel, time_min=args.time_min, sweep_dir=args.sweep_dir)
    print(f"sweep {s.dir}: {len(s.runs)} runs")
    if args.wait:
        s.wait()
    for name, st in s.status().items():
        print(f"  {st:<10} {name}")
    for name, err in s.errors().items():
        print(f"  error in {name}: {err}", file=sys.stderr)
    if args.wait:
        by = list(grid)
        print(s.verdict(args.metric, by))
    return 0 if not s.errors() else 1
