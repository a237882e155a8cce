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
# failed ones are submitted again (each resumes from its own checkpoint). On the project's 2-core CPU
# machine the default setting took 4.4–5.7 minutes per run, about 40 minutes for the 8 runs (measured
# with other work on the machine, load average 3–4); fewer `STEPS` is faster but at 150 steps most
# settings are still near chance, so the ranking is a smoke test of the pipeline, not the paper's
# result. `ON_CLUSTER = True` scales it up (more steps, three seeds, your Slurm profile) without
# changing anything else.

# %% tags=["parameters"]
ON_CLUSTER = False         # True: the full demo schedule, 3 seeds, PROFILE, many runs at once
PROFILE = "auto"           # cluster profile when ON_CLUSTER ("auto": loopback Slurm if it answers)
RELATIONS = ["same_timestamp", "overlapped", "adjacent", "far_apart"]
LOSS_GROUPS = {            # name -> overrides; the paper ablates the asynchronous terms
    "intra+sync": ["loss.asynchronous=false"],
    "intra+sync+async": ["loss.asynchronous=true"],
}
STEPS = 150                # optimiser steps per run (laptop setting)
METRIC = "knn_video"       # readout ranked in the verdict: knn_video, knn_audio, r1_a2v, r1_v2a, sync_gap
SWEEP_DIR = ""             # "" = <work dir>/ablations (re-use it to resume)
SMALL = None               # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
import os

from IPython.display import Image, Markdown, display

from crisscross_core.launch import sweep
from crisscross_core.viz.media import figure_png
from crisscross_core.viz.notebook import demo_manifest, nb_paths, pick_cluster, small_mode

SMALL = small_mode() if SMALL is None else SMALL
paths = nb_paths()
seeds, cluster, max_parallel, why = [0], "local", 1, "a laptop: one run at a time uses the cores best"
if ON_CLUSTER:
    STEPS, seeds, max_parallel = 600, [0, 1, 2], 16
    cluster, why = pick_cluster(PROFILE)
if SMALL:                  # CI: two relations, four steps, the few-clip demo data
    RELATIONS, STEPS, max_parallel = RELATIONS[1:3], 4, 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
manifest = str(demo_manifest(paths["demo"], small=SMALL))
sweep_dir = SWEEP_DIR or str(paths["work"] / ("ablations_small" if SMALL else "ablations"))
print(f"cluster: {cluster} ({why}); {len(RELATIONS)} relations x {len(LOSS_GROUPS)} loss groups x "
      f"{len(seeds)} seed(s) = {len(RELATIONS) * len(LOSS_GROUPS) * len(seeds)} runs of {STEPS} steps")

# %% [markdown]
# ## Submit the grid
# One run per (relation, loss group, seed). The relation and the loss group are the only
# differences; everything else is the `tiny_cpu` preset on the demo data. `data.split=train` trains
# on the training clips; the readout uses the held-out `test` clips.

# %%
runs = [[f"data.relation={rel}", *extra] for rel in RELATIONS for extra in LOSS_GROUPS.values()]
common = [f"data.manifest={manifest}", "data.split=train", f"optim.max_steps={STEPS}",
          "train.progress=false", "train.checkpoint_every=50", "train.log_every=10"]
if SMALL:
    common += ["optim.batch_size=8", "data.num_workers=0", "data.clips_per_video=1", "train.log_every=1"]
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
# Mean over seeds per (relation, loss group); error bars are the standard deviation over seeds
# (none with one seed: then a difference is one draw, not a result).

# %%
from crisscross_core.data.manifest import read_manifest

held_out = [r for r in read_manifest(manifest).rows if r.split == "test"]
n_classes = len({r.label for r in held_out})
CHANCE = {"knn_video": 1 / n_classes, "knn_audio": 1 / n_classes, "r1_a2v": 1 / len(held_out),
          "r1_v2a": 1 / len(held_out), "sync_gap": 0.0}.get(METRIC)
by = ["data.relation", "loss.asynchronous"]
display(Markdown(f"**{s.verdict(METRIC, by)}**" + (f" — chance is {CHANCE:.3f} ({len(held_out)} held-out "
                                                       f"clips)" if CHANCE is not None else "")))
ranked = s.summary(METRIC, by)
lines = ["| relation | loss terms | " + METRIC + " | ± std | n |", "|---|---|---|---|---|"]
for r in ranked:
    group = "intra+sync+async" if str(r["loss.asynchronous"]).lower() == "true" else "intra+sync"
    std = f"{r['std']:.3f}" if r["std"] is not None else "—"
    lines.append(f"| {r['data.relation']} | {group} | {r['mean']:.3f} | {std} | {r['n']} |")
display(Markdown("\n".join(lines)))

# %%
fig = s.plot(METRIC, x="data.relation", hue="loss.asynchronous", chance=CHANCE,
             title=f"{METRIC} after {STEPS} steps ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}); "
                   "asynchronous terms on/off")
Image(figure_png(fig, dpi=90))
