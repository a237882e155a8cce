# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Embedding explorer
#
# Extract embeddings of every clip of a manifest (several evenly spaced windows per clip), map them
# to 2-D with UMAP — video, audio, and both modalities in one joint map — and colour the points by
# class label, modality or the window's time offset. Pick a point with the slider to see its frames
# and hear its audio.
#
# Features come from `crisscross_core.demo.embed_split` (one pass of the frozen model through
# `evaluate.features.extract_features`, the extractor every protocol uses): backbone features `h`
# and head projections `z` of a pretraining run — by default the run notebook 00 wrote; without
# one, a random-init model is used and the notebook says so.

# %% tags=["parameters"]
MANIFEST = ""        # a labelled manifest (kit CSV, or a plain CSV with filename,label); "" = the demo data
RUN_DIR = ""         # a pretraining run directory; "" = the one notebook 00 wrote
WINDOWS = 4          # evenly spaced windows per clip
MAX_ITEMS = 200      # at most this many clips (first rows)
SEED = 0
SMALL = None         # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
import torch
from IPython.display import Image, Markdown, display

from crisscross_core.viz.embeddings import EmbeddingExplorer, embedding_points, scatter_figure
from crisscross_core.viz.media import figure_png
from crisscross_core.demo import embed_split
from crisscross_core.viz.notebook import explorer_inputs, load_model, small_mode

SMALL = small_mode() if SMALL is None else SMALL
torch.set_num_threads(1 if SMALL else torch.get_num_threads())  # 1: CI shares 2 cores
if SMALL:
    WINDOWS, MAX_ITEMS = 2, 16
run_dir, manifest, cfg, items, classes = explorer_inputs(MANIFEST, RUN_DIR, MAX_ITEMS, small=SMALL)
print(f"{len(items)} clips, {len(classes)} classes; manifest {manifest}")

# %% [markdown]
# ## Extract
# Video: `WINDOWS` clips of the run's length per file; audio: `WINDOWS` log-mel windows of the run's
# audio length. Each row remembers its clip and window.

# %%
model, note = load_model(run_dir, cfg, seed=SEED)
display(Markdown(f"**weights:** {note}"))
emb = embed_split(model, cfg, items, windows=WINDOWS)
{m: {s: f.x.shape for s, f in e.items()} for m, e in emb.items()}

# %% [markdown]
# ## UMAP
# One map per modality from the backbone features `h`, and one joint map with both modalities'
# projections `z` — the space the cross-modal loss terms align. Colour the joint map by modality to
# see how far the two are aligned (a random-init model keeps them apart).

# %%
points = embedding_points({m: emb[m]["h"] for m in ("video", "audio")}, items,
                          {"video": cfg.data.video_duration, "audio": cfg.data.audio_duration}, WINDOWS,
                          seed=SEED, joint={m: emb[m]["z"] for m in ("video", "audio")})
for space, colour in (("video", "label"), ("audio", "label"), ("joint", "modality"), ("video", "time offset")):
    display(Image(figure_png(scatter_figure(points[space], colour, title=f"{space} — {colour}"), dpi=70)))

# %% [markdown]
# ## Explore
# Choose the map and the colouring; move the slider to select a point (circled): its window's frames
# and audio appear on the right.

# %%
explorer = EmbeddingExplorer(points, items, clip_duration=cfg.data.audio_duration,
                             audio_rate=cfg.data.audio_rate)
explorer

# %% [markdown]
# Driving it from code: select the last point of the joint map, coloured by time offset.

# %%
explorer.space.value = "joint"
explorer.colour.value = "time offset"
explorer.point.value = explorer.point.max
display(Markdown(explorer.info.value))
display(Image(explorer.frames.value))
