# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Pretrain on Slurm from a notebook
#
# Choose a cluster profile and a preset, submit a (multi-node) run from a cell, watch it with the
# job panel (state, step, samples/s, live loss, log tail, a cancel button), then cancel and resume.
#
# `crisscross_core.launch.submit` snapshots the code into the run directory, submits one submitit
# job whose tasks call `train(cfg)` with torch.distributed set up from the Slurm environment, and
# returns a handle. Training always resumes from `<run_dir>/checkpoint.pt`, so "resume" is just
# "submit again with the same run directory" — after a cancel, a time-out or a preemption alike.
#
# Where it runs: `PROFILE="auto"` picks the loopback Slurm cluster (`tests/slurm_cluster.sh start`,
# profile `slurm/profiles/loopback.yaml`) when `sbatch` is on PATH and `sinfo` answers, and
# otherwise submitit's local executor (subprocesses on this machine, one node). On your cluster,
# set `PROFILE` to your profile (see `slurm/README.md`; `example_university.yaml` is a template).

# %% tags=["parameters"]
PROFILE = "auto"          # "auto" | a profile name in slurm/profiles/ | a YAML path | "local" | "debug"
PRESET = "tiny_cpu"       # or paper_kinetics400 / paper_kinetics_sound / paper_audioset / a YAML file
NODES = 2                 # Slurm nodes (local executor: always 1)
TASKS_PER_NODE = 1        # CPU: tasks per node; GPU clusters: set GPUS_PER_NODE (one task per GPU)
GPUS_PER_NODE = None
MANIFEST = ""             # training manifest; "" = the demo data
STEPS = None              # total optimiser steps of this run; None = 60 (small mode: 6)
OVERRIDES = []            # more dotted config overrides, e.g. ["optim.batch_size=32"]
RUN_DIR = ""              # "" = <work dir>/slurm_run
WATCH_S = 900             # the waiting cells give up after this many seconds (the job runs on)
SMALL = None              # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
import os
from pathlib import Path

import yaml
from IPython.display import Markdown, display

from crisscross_core.launch import PROFILE_DIRS, submit
from crisscross_core.runlog import read_metrics, series
from crisscross_core.viz.notebook import demo_manifest, nb_paths, pick_cluster, small_mode
from crisscross_core.viz.plots import loss_curves

SMALL = small_mode() if SMALL is None else SMALL
paths = nb_paths(SMALL)
STEPS = STEPS or (6 if SMALL else 60)
if SMALL:
    os.environ.setdefault("OMP_NUM_THREADS", "1")   # jobs inherit it: one thread each on CI's 2 cores
run_dir = Path(RUN_DIR or paths["work"] / "slurm_run")
manifest = MANIFEST or str(demo_manifest(paths["demo"], small=SMALL))

# %% [markdown]
# ## Cluster profiles
# The profiles the launcher knows (`slurm/profiles/*.yaml`, plus directories in `$CRISSCROSS_PROFILES`).

# %%
lines = ["| profile | description | partition | time (min) | GPUs/node |", "|---|---|---|---|---|"]
for d in PROFILE_DIRS:
    for p in sorted(Path(d).glob("*.yaml")) if Path(d).is_dir() else []:
        prof = yaml.safe_load(p.read_text()) or {}
        lines.append(f"| `{p.stem}` | {prof.get('description', '')} | {prof.get('partition', '')} | "
                     f"{prof.get('time_min', '')} | {prof.get('gpus_per_node', '')} |")
display(Markdown("\n".join(lines)))

cluster, why = pick_cluster(PROFILE)
nodes = NODES if cluster not in ("local", "debug") else 1
display(Markdown(f"**cluster:** `{cluster}` — {why}; **nodes:** {nodes} × {TASKS_PER_NODE} task(s)"))

# %% [markdown]
# ## Submit
# The config is validated before anything is submitted (a typo in an override fails here, naming
# the key). Small runs use a short schedule so that the whole notebook takes about a minute on CPU.

# %%
overrides = [f"data.manifest={manifest}", "train.checkpoint_every=2", "train.tensorboard=false", *OVERRIDES]
if SMALL:
    overrides += ["optim.batch_size=8", "data.num_workers=0", "data.clips_per_video=1", "train.log_every=1"]


def launch(max_steps):
    """Submit (or resubmit: train resumes from run_dir/checkpoint.pt) a run that stops at `max_steps`."""
    return submit(PRESET, overrides + [f"optim.max_steps={max_steps}"], cluster=cluster, nodes=nodes,
                  tasks_per_node=TASKS_PER_NODE, gpus_per_node=GPUS_PER_NODE, run_dir=str(run_dir),
                  time_min=30)


job = launch(STEPS // 2)
panel = job.panel().watch()      # refreshes in a background thread: this cell returns at once
panel

# %% [markdown]
# `panel.watch()` keeps the panel current without holding the kernel, so **Cancel job** and
# **Refresh** answer at once. The next cell waits for the job with `await panel.wait_async()`: while a
# cell awaits, the kernel still handles the panel's clicks (a synchronous wait -- `job.wait()`,
# `time.sleep` -- would queue them until the cell ends). `WATCH_S` only bounds how long the cell waits;
# the job runs on either way.

# %%
state = await panel.wait_async(timeout=WATCH_S)
print(job, "->", state)
print(job.tail(5))

# %% [markdown]
# ## Cancel, then resume
# Submit the rest of the schedule, cancel it once it has taken a step (the panel's **Cancel job**
# button does the same), then submit again: `train` picks up the latest checkpoint in the run directory.

# %%
done_steps = read_metrics(run_dir)[-1]["step"]
job2 = launch(STEPS)
panel2 = job2.panel().watch()
panel2

# %%
state2 = await panel2.wait_async(until=lambda j: read_metrics(run_dir)[-1]["step"] > done_steps, timeout=300)
job2.cancel()
print(job2, "->", await panel2.wait_async(timeout=60))   # the log ends with one "[crisscross] cancelled" line
print(job2.tail(3))

# %%
job3 = launch(STEPS)
panel3 = job3.panel().watch()
state3 = await panel3.wait_async(timeout=WATCH_S)
print(job3, "->", state3)
print("\n".join(l for l in job3.tail(200).splitlines() if "resumed" in l) or "(started from scratch)")
panel3

# %% [markdown]
# ## Loss, the six terms, throughput
# From `<run_dir>/metrics.jsonl` (rank 0 writes one record per logged step). Intra-modal terms are
# solid, synchronous cross-modal dashed, asynchronous cross-modal dotted; −1 is perfect agreement.

# %%
records = read_metrics(run_dir, kind="step")
fig = loss_curves(records, title=f"{PRESET} on {cluster}")

# %%
import matplotlib.pyplot as plt

steps, sps = series(records, "samples_per_s")
_, wait = series(records, "data_wait")
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(steps, sps, marker="o", label="samples/s (all ranks)")
ax.set_xlabel("step")
ax.set_ylabel("samples/s")
ax2 = ax.twinx()
ax2.plot(steps, wait, color="grey", ls="--", label="data wait (fraction)")
ax2.set_ylim(0, 1)
fig.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
ax.set_title(f"throughput — world size {records[-1].get('world_size', 1) if records else '?'}")
fig.tight_layout()
