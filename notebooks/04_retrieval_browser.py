# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Retrieval browser
#
# Pick a query clip and see its top-K neighbours as frame strips with their audio:
# video→video and audio→audio (frozen backbone features `h`, as in the paper's retrieval protocol,
# `docs/evaluation.md`), and cross-modal video→audio / audio→video in the head space the cross-modal
# loss terms train: the query's prediction `p` against the other modality's projections `z`. Then
# Recall@K over all clips, with the same protocol the browser shows.
#
# Media and weights: any folder, manifest or file, and any weights the kit loads (as in notebook 03;
# the embeddings are shared through the work directory's cache).

# %% tags=["parameters"]
MEDIA = ""           # a folder of videos (class folders = labels), a manifest .csv or a media file; "" = the demo data
WEIGHTS = ""         # a run dir, checkpoint.pt, released/exported vid_/aud_ file or .zip, an embeddings dir, or "random"; "" = notebook 00's run
AUDIO_WEIGHTS = ""   # with a released video backbone file: the audio backbone file
WINDOWS = 4          # windows per clip, L2-normalised and averaged into one vector per clip
K = 5                # neighbours shown
SMALL = None         # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
import numpy as np
import torch
from IPython.display import Markdown, display

from crisscross_core.viz.notebook import notebook_embeddings, small_mode, weights_note
from crisscross_core.viz.retrieval_browser import PROTOCOL, RetrievalBrowser, recall_markdown, recall_table

SMALL = small_mode() if SMALL is None else SMALL
torch.set_num_threads(1 if SMALL else torch.get_num_threads())  # 1: CI shares 2 cores
if SMALL:
    WINDOWS, K = 2, 3
emb, source = notebook_embeddings(MEDIA, WEIGHTS, WINDOWS, AUDIO_WEIGHTS, small=SMALL, progress=not SMALL)
display(Markdown(f"**media:** {source} · {weights_note(emb)}"))

# %% [markdown]
# ## Features
# One vector per clip: its windows, each L2-normalised, averaged (`Features.per_item()`); only clips
# that both modalities have, so that row i is clip i everywhere.

# %%
mods = [m for m in ("video", "audio") if m in emb.modalities]
items = emb.items(mods)
keep = np.array([it.rid for it in items])


def per_item(modality, space):
    f = emb.features(modality, space).per_item()
    return f.select(np.isin(f.rid, keep))


h = {m: per_item(m, "h") for m in mods}
heads = len(mods) == 2 and all({"z", "p"} <= set(emb.spaces[m]) for m in mods)
z = {m: per_item(m, "z") for m in mods} if heads else None
p = {m: per_item(m, "p") for m in mods} if heads else None
assert all((f.rid == keep).all() for f in h.values())
print(f"{len(items)} clips, {len({it.label for it in items if it.label >= 0})} classes; spaces {emb.spaces}")

# %% [markdown]
# ## Browse
# ✔ marks a hit: the same class within a modality, the query's own clip across modalities.

# %%
browser_same = RetrievalBrowser(h, items, k=K, clip_duration=2.0)
browser_same

# %%
if heads:
    browser_cross = RetrievalBrowser(z, items, k=K, clip_duration=2.0, queries=p)
    browser_cross.direction.value = "audio → video"
    display(browser_cross)
else:
    print("no pretraining heads in these weights: cross-modal retrieval needs z and p (a run directory or "
          "a full checkpoint)")

# %% [markdown]
# ## Recall@K
# The protocol, as the browser shows it:

# %%
table = recall_table(h, z, p)
display(Markdown(f"{PROTOCOL}\n\n{recall_markdown(table)}"))
