# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Embedding explorer
#
# Embed every clip of your media (several evenly spaced windows per clip) with any weights the kit
# loads, map the embeddings to 2-D with UMAP and explore the maps: **hover** a point to see its clip,
# **click** it to see the window's frames and hear its audio, **lasso** a group (the lasso button in
# the map's toolbar) to get it as a table in Python and as a strip of its clips. The two maps are
# linked: a selection in one selects the same clips in the other. Colour by class label, modality,
# the window's time offset or the split.
#
# Embeddings come from `crisscross embed` (`evaluate.embed.embed`, resumable, cached in the work
# directory): backbone features `h` per modality and, when the weights carry the pretraining heads, the
# projections `z` and predictions `p`.

# %% tags=["parameters"]
MEDIA = ""           # a folder of videos (class folders = labels), a manifest .csv or a media file; "" = the demo data
WEIGHTS = ""         # a run dir, checkpoint.pt, released/exported vid_/aud_ file or .zip, an embeddings dir, or "random"; "" = notebook 00's run
AUDIO_WEIGHTS = ""   # with a released video backbone file: the audio backbone file
WINDOWS = 4          # evenly spaced windows per clip (one point per window and modality)
SEED = 0
SMALL = None         # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
import numpy as np
import torch
from IPython.display import Markdown, display

from crisscross_core.viz.embeddings import EmbeddingExplorer, alignment, embedding_points
from crisscross_core.viz.notebook import notebook_embeddings, small_mode, weights_note

SMALL = small_mode() if SMALL is None else SMALL
torch.set_num_threads(1 if SMALL else torch.get_num_threads())  # 1: CI shares 2 cores
if SMALL:
    WINDOWS = 2
emb, source = notebook_embeddings(MEDIA, WEIGHTS, WINDOWS, AUDIO_WEIGHTS, seed=SEED, small=SMALL, progress=not SMALL)
items = emb.items()
display(Markdown(f"**media:** {source} · {weights_note(emb)}"))
for m in emb.missing(emb.modalities):
    print("left out:", m["path"], "-", m["reason"])

# %% [markdown]
# ## Maps
# One UMAP per modality from the backbone features `h`. With pretraining heads, two joint maps:
# **joint (z)** puts both modalities' projections `z` in one map, and **aligned** puts the audio
# prediction `p_a` beside the video projection `z_v` -- the pair the audio→video loss term pulls
# together (`docs/method.md`). How close the two modalities are, as numbers (L2-normalised rows; the
# same windows):
# * **gap** -- distance between the two clouds' mean directions (0: same centre; up to 2);
# * **cos own / cos other** -- mean cosine of each window with its *own* counterpart, and with the other
#   windows' counterparts. `cos own` well above `cos other` means each clip finds its partner even where
#   the clouds sit apart (the "modality gap" of contrastive models), which the maps cannot show.

# %%
feats = {m: emb.features(m, "h") for m in emb.modalities}
spaces = emb.spaces
heads = set(spaces) == {"video", "audio"} and all({"z", "p"} <= set(spaces[m]) for m in spaces)
z = {m: emb.features(m, "z") for m in emb.modalities} if heads else None
p = {m: emb.features(m, "p") for m in emb.modalities} if heads else None
points = embedding_points(feats, items, seed=SEED, joint=z,
                          aligned={"audio": p["audio"], "video": z["video"]} if heads else None)
if heads:
    both = np.intersect1d(z["video"].meta["row"], z["audio"].meta["row"])   # windows both modalities have
    pick = lambda f: f.select(np.isin(f.meta["row"], both))
    lines = ["| pair | gap | cos own | cos other | windows |", "|---|---|---|---|---|"]
    for name, a, b in (("z_a vs z_v (joint)", z["audio"], z["video"]), ("p_a vs z_v (aligned)", p["audio"], z["video"])):
        r = alignment(pick(a), pick(b))
        lines.append(f"| {name} | {r['gap']:.2f} | {r['cos_own']:.3f} | {r['cos_other']:.3f} | {r['n']} |")
    display(Markdown("\n".join(lines)))
print({name: len(ps.xy) for name, ps in points.items()}, "points per map")

# %% [markdown]
# ## Explore
# Left and right maps (choose each), the clip view beside them. In a map: drag to pan, scroll to zoom,
# hover for the tooltip and the clip's frames, click a point for its window's frames and audio; the
# toolbar's lasso button switches to lasso selection (drag around a group). The selection appears as a
# table and a strip of its clips below, and in Python as `explorer.selection`.

# %%
durations = emb.meta["settings"]["window_seconds"]
explorer = EmbeddingExplorer(points, items, clip_duration=durations, audio_rate=16000,
                             left="video" if "video" in points else None,
                             right="aligned" if "aligned" in points else None)
explorer

# %% [markdown]
# The selection in Python, and selecting from code: here every window of the first clip's class in the
# left map (the same clips light up in the right map).

# %%
left = points[explorer.space["left"].value]
explorer.select("left", np.flatnonzero(left.label == left.label[0]))
explorer.selection.groupby(["label", "modality"], observed=True).size()
