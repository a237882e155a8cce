# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Quickstart: CrissCross end to end on the demo data
#
# CrissCross (Sarkar & Etemad, AAAI 2023) learns video and audio encoders without labels, SimSiam
# style, from two views `(v1, a1)` and `(v2, a2)` of the same video taken at related times, with
# six loss terms: intra-modal, synchronous cross-modal and asynchronous cross-modal.
#
# In small steps: **build** the embedded demo data (real mp4 files written by the kit) →
# **look** at a clip (frames and audio) → **pretrain** a tiny model briefly on CPU →
# **evaluate** the frozen encoders (linear probe, cross-modal retrieval) against random init →
# **plot**. Every step is one call into `crisscross_core`; the other notebooks reuse the run.

# %% tags=["parameters"]
STEPS = 0          # optimiser steps; 0 = the tiny_cpu preset's schedule
RUN_DIR = ""       # "" = <work dir>/quickstart (small mode: <work dir>/nb_small, shared with 03-05)
OVERRIDES = []     # more dotted config overrides, e.g. ["optim.batch_size=32"]
SEED = 0
SMALL = None       # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
import collections

import torch
from IPython.display import Audio

from crisscross_core.data.manifest import read_manifest
from crisscross_core.runlog import read_metrics
from crisscross_core.viz.media import clip_figure, load_preview
from crisscross_core.viz.notebook import demo_manifest, nb_paths, small_mode
from crisscross_core.online_eval import format_eval
from crisscross_core.viz.plots import collapse_curves, grouped_bars, loss_curves, online_curves

SMALL = small_mode() if SMALL is None else SMALL
torch.set_num_threads(1 if SMALL else torch.get_num_threads())  # 1: CI shares 2 cores
paths = nb_paths(SMALL)
run_dir = RUN_DIR or paths["run"]
print("work dir:", paths["work"], "| small mode:", SMALL)

# %% [markdown]
# ## 1 · Build the demo data
# Written once into the work directory (then reused). The manifest lists every file with its
# label, split and stream facts (duration, fps, audio rate); see `data_manifests/README.md`.

# %%
manifest = demo_manifest(paths["demo"], small=SMALL)
m = read_manifest(manifest)
print(f"{manifest}: {len(m.rows)} clips, root {m.root}")
print("clips per split:", dict(collections.Counter(r.split for r in m.rows)))
print("classes:", sorted({r.label for r in m.rows}))

# %% [markdown]
# ## 2 · Look at a clip
# Frames (a strip over the whole clip), the waveform and the log-mel spectrogram the audio encoder sees.

# %%
row = m.rows[0]
frames, wave = load_preview(m.root / row.path, fps=8.0, short_side=64)
fig = clip_figure(frames, wave, 16000, title=f"{row.path} — label {row.label!r}", n_frames=10)

# %%
Audio(wave, rate=16000)

# %% [markdown]
# ## 3 · Pretrain briefly
# `train(cfg, overrides)` is the one entry point (the CLI, torchrun and Slurm call it too). It writes
# `config.yaml`, `metrics.jsonl`, `checkpoint.pt` and the exported encoders into the run directory,
# and resumes from its checkpoint when run again. With `eval.manifest` set it also evaluates the
# held-out clips while it trains (`crisscross_core.online_eval`: kNN top-1 per modality, cross-modal
# R@1, the sync − async cosine gap), without changing what it learns.

# %%
from crisscross_core.train import train

overrides = [f"data.manifest={manifest}", f"train.run_dir={run_dir}", f"train.seed={SEED}",
             "train.tensorboard=false", f"eval.manifest={manifest}", "eval.split=test", "eval.every=50",
             *OVERRIDES]
if SMALL:
    overrides += ["optim.max_steps=4", "optim.batch_size=8", "data.num_workers=0", "data.clips_per_video=1",
                  "train.log_every=1", "train.checkpoint_every=2", "eval.every=2"]
if STEPS:
    overrides.append(f"optim.max_steps={STEPS}")
summary = train("tiny_cpu", overrides)
{k: v for k, v in summary.items() if k != "last"}

# %% [markdown]
# ## 4 · Plot the losses
# The total and the six terms (negative cosine: −1 is perfect agreement; intra solid, synchronous
# cross-modal dashed, asynchronous cross-modal dotted). The collapse monitors: the std of the
# normalised projections falls to 0 when they collapse to a point; their effective rank falls to ~1
# when they collapse onto a line (which the std does not see).

# %%
records = read_metrics(run_dir, kind="step")
fig = loss_curves(records, title=f"tiny_cpu on the demo data ({records[-1]['step']} steps)")
collapse_curves(records);
last = records[-1]
print(f"last: loss {last['loss']:.3f}, std_v {last['std_v']:.2f}, std_a {last['std_a']:.2f}, "
      f"effective rank of z: video {last['rank_v']:.1f}, audio {last['rank_a']:.1f}, "
      f"{last['samples_per_s']:.1f} samples/s")

# %% [markdown]
# The online evaluations of the held-out clips during training: kNN top-1 per modality on the
# backbone features, cross-modal R@1 (a clip's audio prediction finding its own video among all
# held-out clips, and back; chance dotted), and the mean cosine of the audio prediction `p_a` with the
# video projection `z_v` for the pair drawn together (sync) and for the pair the relation puts apart
# (async).

# %%
evals = read_metrics(run_dir, kind="eval")
online_curves(evals)
print(format_eval(evals[-1]))

# %% [markdown]
# ## 5 · Evaluate the frozen encoders
# On held-out (test split) clips, the pretrained model against the same architecture at random init
# (`crisscross_core.demo.evaluate_model`, what `crisscross demo` reports): a linear probe on the class
# per modality (backbone features, several windows per clip; the train split trains it), and
# cross-modal retrieval in the head space — a clip's audio prediction `p_a` must find its own video
# projection `z_v` among all test clips (and video→audio likewise), the pairing the loss trains.

# %%
from crisscross_core.demo import evaluate_model, summary_table
from crisscross_core.evaluate.media import load_items
from crisscross_core.viz.notebook import load_model, run_config

cfg = run_config(run_dir)
train_items, classes = load_items(manifest, split="train")
test_items, _ = load_items(manifest, split="test", classes=classes)
if SMALL:
    train_items, test_items = train_items[:16], test_items[:8]
results = {}
for label, rd in (("random init", None), ("pretrained", run_dir)):
    model, note = load_model(rd, cfg, seed=SEED)
    results[label] = evaluate_model(model, cfg, train_items, test_items)
    results[label].pop("_test_backbone")
    print(note)
print(summary_table(results, len(classes)))

# %%
fig = grouped_bars({name: {k: results[k][key] for k in results} for name, key in
                    (("video probe", "probe_video"), ("audio probe", "probe_audio"),
                     ("a→v R@1", "a2v_R@1"), ("v→a R@1", "v2a_R@1"))},
                   "top-1 / R@1", f"held-out demo clips ({len(test_items)}); chance: probe",
                   chance=1 / len(classes))

# %% [markdown]
# ## Next
# * `01_asynchronous_pairings` — what the seven temporal relations sample, with audio;
# * `02_pretrain_on_slurm` — the same run on a cluster, watched from a cell;
# * `03_embedding_explorer`, `04_retrieval_browser`, `05_downstream_tables` — the run's encoders at work.
