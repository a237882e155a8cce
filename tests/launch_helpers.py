"""A stand-in for `crisscross_core.train.train` used by tests of the launch plumbing.

Same contract as train: `fake_train(cfg, overrides=None) -> dict`; reads RANK/WORLD_SIZE/MASTER_*
from the environment, all-reduces over gloo, appends rank-0 rows to <run_dir>/metrics.jsonl, resumes
from <run_dir>/checkpoint.json, writes <run_dir>/error.txt on failure. Runs for `steps` steps
(default cfg.optim.max_steps) of `sleep_s` seconds. Each rank also writes rank<r>.json describing
where it ran (host, node name, pid, the crisscross_core file it imported).
"""
from __future__ import annotations

import json
import os
import socket
import time
import traceback
from pathlib import Path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def fake_train(cfg, overrides=None, sleep_s: float = 0.2, steps: int | None = None) -> dict:
    import crisscross_core
    import crisscross_core.launch
    from crisscross_core.config import ConfigError, load_config

    cfg = load_config(cfg, overrides)
    run_dir = Path(cfg.train.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        if cfg.data.manifest and not Path(cfg.data.manifest).is_file():
            raise ConfigError(f"config key 'data.manifest': file {cfg.data.manifest!r} does not exist")
        import torch
        import torch.distributed as dist
        torch.set_num_threads(1)
        if world > 1:
            dist.init_process_group("gloo")
        info = {"rank": rank, "world_size": world, "host": socket.gethostname(),
                "node": os.environ.get("SLURMD_NODENAME", ""), "pid": os.getpid(),
                "attempt": os.environ.get("CRISSCROSS_JOB_ATTEMPT"),
                "crisscross_core_file": crisscross_core.__file__,
                "launch_file": crisscross_core.launch.__file__, "cwd": os.getcwd()}
        _atomic_write(run_dir / f"rank{rank}.json", json.dumps(info))
        ckpt = run_dir / "checkpoint.json"
        start = json.loads(ckpt.read_text())["step"] if ckpt.is_file() else 0
        total = steps or cfg.optim.max_steps or 5
        t0 = time.time()
        for step in range(start + 1, total + 1):
            t = torch.tensor([float(rank + 1)])
            if world > 1:
                dist.all_reduce(t)  # sum over ranks of (rank + 1) = world * (world + 1) / 2
            time.sleep(sleep_s)
            if rank == 0:
                row = {"step": step, "epoch": 0, "loss": 1.0 / step, "rank_sum": t.item(),
                       "world_size": world, "samples_per_s": step / max(time.time() - t0, 1e-6),
                       "pid": os.getpid(), "rank0": True}
                with open(run_dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
                _atomic_write(ckpt, json.dumps({"step": step}))
        if world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return {"run_dir": str(run_dir), "steps": total, "world_size": world, **info}
    except Exception:
        if rank == 0:
            (run_dir / "error.txt").write_text(traceback.format_exc())
        raise


def clips_manifest(out_dir, n: int = 4):
    """(manifest path, media root) for the first `n` .mp4 clips of ../shared/data/clips, or None
    when that folder is absent. Probed in place, not copied."""
    from shared_paths import SHARED
    clips = SHARED / "clips"
    if not clips.is_dir():
        return None
    from crisscross_core.data.builders import folder
    from crisscross_core.data.manifest import build_manifest, write_manifest
    entries = [e for e in folder(clips) if e.path.endswith(".mp4")][:n]
    rows, _ = build_manifest(entries, clips, workers=1, progress=False)
    return write_manifest(rows, Path(out_dir) / "clips.csv"), clips


def real_overrides(manifest, root, *extra):
    """Overrides for a few-step tiny_cpu run of the real train() on `clips_manifest` data."""
    return [f"data.manifest={manifest}", f"data.root={root}", "data.split=", "optim.batch_size=4",
            "data.num_workers=0", "data.clips_per_video=1", "train.log_every=1",
            "train.checkpoint_every=1", "train.progress=false", "train.tensorboard=false",
            "train.export_at_end=false", *extra]
