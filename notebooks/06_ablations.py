# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · The paper's ablations from one cell
#
# CrissCross's claim is an ablation claim: relaxing the temporal synchronicity of the two views
# (which **relation** they are drawn at) and adding the **asynchronous** cross-modal terms improve
# the representation. This notebook re-runs that study on the demo data: every relation ×
# loss-group setting is a full pretraining run (`train(cfg)`), all of them submitted as **one**
# sweep (`crisscross_core.launch.sweep`: one Slurm job array, or local processes), each read out by
# the online evaluation at its end on the held-out clips (`crisscross_core.online_eval`: kNN top-1
# per modality on backbone features, cross-modal R@1 in the head space, the sync − async cosine gap).
#
# Running this cell again re-attaches: finished and running runs are left alone, missing or
# failed ones are submitted again (each resumes from its own checkpoint). On a laptop or CPU box the
# runs go side by side, one core each (one torch thread, data read in the training process): on the
# project's 2-core CPU machine that is 1.5-1.6x the throughput of one run at a time on both cores (with
# bit-identical readouts), and the default setting (8 runs of 100 steps) took 13-14 minutes in all,
# building the demo data included (idle machine, 2026-12-02). 100 steps is where the relations have
# separated on the audio readout; the video readout and the asynchronous terms need longer
# (`STEPS = 150`: about 20 minutes there). One seed on a laptop: read the ranking as a smoke test of
# the pipeline, not the paper's result. `ON_CLUSTER = True` scales it up (600
# steps, three seeds with error bars, your Slurm profile) without changing anything else.

# %% tags=["parameters"]
ON_CLUSTER = False         # True: the full demo schedule, 3 seeds, PROFILE, many runs at once
PROFILE = "auto"           # cluster profile when ON_CLUSTER ("auto": loopback Slurm if it answers)
RELATIONS = ["same_timestamp", "overlapped", "adjacent", "far_apart"]
LOSS_GROUPS = {            # name -> overrides; the paper ablates the asynchronous terms
    "intra+sync": ["loss.asynchronous=false"],
    "intra+sync+async": ["loss.asynchronous=true"],
}
STEPS = 100                # optimiser steps per run (laptop setting)
METRICS = ["knn_video", "knn_audio"]   # readouts ranked and drawn (also r1_a2v, r1_v2a, sync_gap)
SWEEP_DIR = ""             # "" = <work dir>/ablations (re-use it to resume)
SMALL = None               # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
from IPython.display import Image, Markdown, display

from crisscross_core.launch import sweep
from crisscross_core.viz.media import figure_png
from crisscross_core.viz.notebook import demo_manifest, local_parallelism, nb_paths, pick_cluster, small_mode

SMALL = small_mode() if SMALL is None else SMALL
paths = nb_paths()
seeds, cluster, why = [0], "local", "this machine"
if ON_CLUSTER:
    STEPS, seeds = 600, [0, 1, 2]
    cluster, why = pick_cluster(PROFILE)
if SMALL:                  # CI: two relations, four steps, the few-clip demo data
    RELATIONS, STEPS = RELATIONS[1:3], 4
n_runs = len(RELATIONS) * len(LOSS_GROUPS) * len(seeds)
if cluster == "local":     # side by side, one core each
    max_parallel, how = local_parallelism(n_runs)
    why += f": {how}"
else:                      # Slurm: the array's cap on simultaneous tasks
    max_parallel = 16
manifest = str(demo_manifest(paths["demo"], small=SMALL))
sweep_dir = SWEEP_DIR or str(paths["work"] / ("ablations_small" if SMALL else "ablations"))
print(f"cluster: {cluster} ({why}); {len(RELATIONS)} relations x {len(LOSS_GROUPS)} loss groups x "
      f"{len(seeds)} seed(s) = {n_runs} runs of {STEPS} steps, at most {max_parallel} at once")

# %% [markdown]
# ## Submit the grid
# One run per (relation, loss group, seed). The relation and the loss group are the only
# differences; everything else is the `tiny_cpu` preset on the demo data. `data.split=train` trains
# on the training clips; the readout uses the held-out `test` clips. Off the cluster every run uses one
# torch thread and reads its data in the training process (`train.cpu_threads=1`,
# `data.num_workers=0`): the same numbers as with a data worker, and one core per run.

# %%
runs = [[f"data.relation={rel}", *extra] for rel in RELATIONS for extra in LOSS_GROUPS.values()]
common = [f"data.manifest={manifest}", "data.split=train", f"optim.max_steps={STEPS}",
          "train.progress=false", "train.checkpoint_every=50", "train.log_every=10"]
if cluster == "local":
    common += ["train.cpu_threads=1", "data.num_workers=0"]
if SMALL:
    common += ["optim.batch_size=8", "data.clips_per_video=1", "train.log_every=1"]
s = sweep("tiny_cpu", runs=runs, seeds=seeds if len(seeds) > 1 else None, overrides=common,
          readout={"manifest": manifest, "split": "test"}, cluster=cluster, max_parallel=max_parallel,
          sweep_dir=sweep_dir, time_min=60)
s

# %% [markdown]
# ## Wait, then look at every run
# `s.status()` can be called at any time (also from another kernel: `attach_sweep(sweep_dir)`).
# A failed run shows its error line; calling the submit cell again resubmits only it.

# %%
status = s.wait()
print(status)
for name, err in s.errors().items():
    print(f"FAILED {name}: {err}")
table = s.table()
table

# %% [markdown]
# ## Which setting won
# Mean over seeds per (relation, loss group); error bars are the standard deviation over seeds. With
# one seed there is no spread: the verdict then weighs the difference against the readout's own
# sampling error (binomial, over the held-out clips), so a difference of one or two clips is not
# called a win.

# %%
from crisscross_core.data.manifest import read_manifest

held_out = [r for r in read_manifest(manifest).rows if r.split == "test"]
n_classes = len({r.label for r in held_out})
CHANCE = {"knn_video": 1 / n_classes, "knn_audio": 1 / n_classes, "r1_a2v": 1 / len(held_out),
          "r1_v2a": 1 / len(held_out), "sync_gap": 0.0}
by = ["data.relation", "loss.asynchronous"]
display(Markdown("\n\n".join(f"**{s.verdict(m, by)}** — chance is {CHANCE[m]:.3f} ({len(held_out)} held-out clips, "
                              f"{n_classes} classes)" for m in METRICS)))
cells = {m: {(r["data.relation"], str(r["loss.asynchronous"]).lower()): r for r in s.summary(m, by)} for m in METRICS}
lines = ["| relation | loss terms | " + " | ".join(f"{m} (± std)" for m in METRICS) + " | n |",
         "|---|---|" + "---|" * len(METRICS) + "---|"]
for key, r0 in sorted(cells[METRICS[0]].items(), key=lambda kv: -kv[1]["mean"]):
    group = "intra+sync+async" if key[1] == "true" else "intra+sync"
    vals = [cells[m].get(key) for m in METRICS]
    txt = [f"{v['mean']:.3f}" + (f" ± {v['std']:.3f}" if v["std"] is not None else "") if v else "—" for v in vals]
    lines.append(f"| {key[0]} | {group} | " + " | ".join(txt) + f" | {r0['n']} |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Each factor on its own
# The paper's two questions, one factor at a time: each relation averaged over the loss groups (and
# seeds), each loss group averaged over the relations. n is the number of runs in the average.

# %%
for m in METRICS:
    for key in by:
        ranked = s.summary(m, [key])
        print(f"{m} by {key}: " + "; ".join(f"{r[key]} {r['mean']:.3f} (n={r['n']})" for r in ranked))

# %%
fig = s.plot(METRICS, x="data.relation", hue="loss.asynchronous", chance=CHANCE,
             title=f"after {STEPS} steps ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}); asynchronous "
                   "terms on/off")
Image(figure_png(fig, dpi=90))
