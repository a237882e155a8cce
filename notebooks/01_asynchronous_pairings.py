# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Asynchronous pairings: which windows does CrissCross pair?
#
# CrissCross learns from two views of one video, `(v1, a1)` and `(v2, a2)`, taken at two related
# times. Six loss terms tie them together: intra-modal (`v1↔v2`, `a1↔a2`), synchronous cross-modal
# (`v1↔a1`, `v2↔a2`) and **asynchronous** cross-modal (`v1↔a2`, `a1↔v2`). How far apart the two views
# are is the *relation* (see `docs/method.md`): `same_timestamp`, `overlapped`, `adjacent`, `random`,
# `far_apart`, `v_far_a_same`, `v_same_a_far`.
#
# This notebook draws the windows the training data pipeline samples — the same
# `PretrainDataset.windows()` and decoder that `train()` uses — on one timeline over the clip's
# frames and log-mel spectrogram, plays the audio windows and shows the augmented views.
#
# Data: your manifest (`MANIFEST`), else the real clips in `../shared/data/clips` when present,
# else the embedded demo data.

# %% tags=["parameters"]
MANIFEST = ""            # a kit manifest CSV; "" = ../shared/data/clips, else the demo data
PRESET = "paper_kinetics400"   # window lengths, decode size and augmentation come from this preset
RELATION = "overlapped"  # one of the seven relations
CLIP_INDEX = 0           # which row of the manifest
SEED = 0
SMALL = None             # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
import torch
from IPython.display import Audio, Image, Markdown, display

from crisscross_core.config import RELATIONS, load_config
from crisscross_core.viz.pairings import PairingExplorer, relations_figure
from crisscross_core.viz.media import figure_png
from crisscross_core.viz.notebook import demo_manifest, nb_paths, pick_pairing_source, small_mode

SMALL = small_mode() if SMALL is None else SMALL
torch.set_num_threads(1 if SMALL else torch.get_num_threads())  # 1: CI shares 2 cores
paths = nb_paths(SMALL)
cfg = load_config("tiny_cpu" if SMALL else PRESET)

# the demo data (notebook 00's) is built only when there is no manifest and no shared clips
manifest, source = pick_pairing_source(MANIFEST, demo_manifest=lambda: demo_manifest(paths["demo"], small=SMALL))
display(Markdown(f"**data:** {source} — manifest `{manifest}`; video views {cfg.data.video_duration} s, "
                 f"audio views {cfg.data.audio_duration} s, decoded at {tuple(cfg.data.decode_size)}"))

# %% [markdown]
# ## The explorer
# Pick a clip and a relation; **Resample** draws the next epoch's windows and augmentations (per-item
# randomness is a function of seed, epoch and index, so a draw is reproducible). The two players
# are the audio windows `a1` and `a2` exactly as decoded for training (16 kHz mono).

# %%
ex = PairingExplorer(manifest, cfg.data, cfg.aug, seed=SEED, index=CLIP_INDEX, relation=RELATION)
ex

# %% [markdown]
# The widgets can be driven from code as well. A second explorer on the same clip (the one above keeps
# showing `RELATION`): switch it to `far_apart`, then draw once more.

# %%
demo = PairingExplorer(manifest, cfg.data, cfg.aug, seed=SEED, index=CLIP_INDEX, relation=RELATION, augment=False)
before = demo.windows
demo.relation.value = "far_apart"
demo.next_draw()
print(f"{RELATION}:", before)
print("far_apart: ", demo.windows)
display(Image(demo.timeline.value))

# %% [markdown]
# ## All seven relations for this clip
# One draw each, same clip and epoch, on one time axis. Shared views (`v_far_a_same`, `v_same_a_far`)
# are one augmented tensor used for both views of that modality (see `docs/method.md`).

# %%
t0, frames, wave = ex.context(int(ex.clip.value))
row = ex.dataset.rows[int(ex.clip.value)]
draws = {}
for rel in RELATIONS:
    ex.dataset.cfg.relation = rel
    draws[rel] = ex.dataset.windows(int(ex.clip.value))
ex.dataset.cfg.relation = ex.relation.value
t1 = t0 + (len(wave) / cfg.data.audio_rate if len(wave) else len(frames) / ex.context_fps)
display(Image(figure_png(relations_figure(draws, frames, t0, t1,
                                          f"{row.path}: the windows of each relation"), dpi=90)))

# %% [markdown]
# ## Listen to the audio windows
# `a1` and `a2` of the current draw (the same bytes the explorer's players hold).

# %%
a = ex.item["audio"].numpy()
for name, x, (s, d) in (("a1", a[0], ex.windows.a1), ("a2", a[1], ex.windows.a2)):
    display(Markdown(f"**{name}** {s:.2f}–{s + d:.2f} s"))
    display(Audio(x, rate=cfg.data.audio_rate))

# %% [markdown]
# ## Augmented views side by side
# Left: the decoded frames of `v1` / `v2`; middle: after the batched video augmentation (random
# resized crop, flip, colour jitter, grey, blur, cut-out); right: the augmented log-mels of `a1` / `a2`
# (volume jitter, frequency / time masks, resize-crop).

# %%
display(Image(ex.views.value))
