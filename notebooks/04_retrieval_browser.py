# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Retrieval browser
#
# Pick a query clip and see its top-K neighbours as frame strips with their audio:
# video→video and audio→audio (frozen backbone features `h`, as in the paper's retrieval protocol,
# spec §9.4), and cross-modal video→audio / audio→video in the head space the cross-modal loss
# terms train: the query's prediction `p` against the other modality's projections `z`.
# Then Recall@K on the labelled data.
#
# Weights: the run notebook 00 wrote (or `RUN_DIR`); without one, random-init encoders with a note.

# %% tags=["parameters"]
MANIFEST = ""        # a labelled manifest; "" = the demo data
RUN_DIR = ""         # a pretraining run directory; "" = the one notebook 00 wrote
WINDOWS = 4          # clips per item, features L2-normalised and averaged
K = 5                # neighbours shown
MAX_ITEMS = 300
SMALL = None         # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
import numpy as np
import torch
from IPython.display import Markdown, display

from crisscross_core.evaluate.retrieval import KS, class_retrieval, cross_modal_retrieval
from crisscross_core.viz.retrieval_browser import RetrievalBrowser
from crisscross_core.demo import embed_split
from crisscross_core.viz.notebook import explorer_inputs, load_model, query_gallery, small_mode

SMALL = small_mode() if SMALL is None else SMALL
torch.set_num_threads(1 if SMALL else torch.get_num_threads())  # 1: CI shares 2 cores
if SMALL:
    WINDOWS, MAX_ITEMS, K = 2, 16, 3
run_dir, manifest, cfg, items, classes = explorer_inputs(MANIFEST, RUN_DIR, MAX_ITEMS, small=SMALL)
print(f"{len(items)} clips, {len(classes)} classes")

# %% [markdown]
# ## Features
# Per clip: `WINDOWS` evenly spaced windows, each L2-normalised, averaged (`Features.per_item()`).

# %%
model, note = load_model(run_dir, cfg)
display(Markdown(f"**weights:** {note}"))
emb = embed_split(model, cfg, items, windows=WINDOWS)
h, z, p = ({m: emb[m][s].per_item() for m in ("video", "audio")} for s in ("h", "z", "p"))
assert all((f.rid == np.array([it.rid for it in items])).all() for f in (*h.values(), *z.values()))

# %% [markdown]
# ## Browse
# ✔ marks a hit: the same class within a modality, the query's own clip across modalities.

# %%
browser_same = RetrievalBrowser(h, items, k=K, clip_duration=cfg.data.audio_duration,
                                audio_rate=cfg.data.audio_rate)
browser_same

# %%
browser_cross = RetrievalBrowser(z, items, k=K, clip_duration=cfg.data.audio_duration,
                                 audio_rate=cfg.data.audio_rate, queries=p)
browser_cross.direction.value = "audio → video"
browser_cross

# %% [markdown]
# ## Recall@K
# Within a modality: test clips query the other clips, a hit at K = a same-class clip among the top
# K (spec §9.4). Cross-modal: each clip's other modality is its one positive (chance R@1 = 1/N).

# %%
q, g = query_gallery(items)
sel = lambda f, idx: f.select(np.isin(f.rid, [items[i].rid for i in idx]))
rows = {}
for m in ("video", "audio"):
    rows[f"{m} → {m}"] = class_retrieval(sel(h[m], q), sel(h[m], g))
rows["audio → video"] = cross_modal_retrieval(p["audio"], z["video"])
rows["video → audio"] = cross_modal_retrieval(p["video"], z["audio"])
lines = ["| direction | " + " | ".join(f"R@{k}" for k in KS) + " | queries | gallery |",
         "|---|" + "---|" * (len(KS) + 2)]
for name, r in rows.items():
    lines.append(f"| {name} | " + " | ".join(f"{100 * r[f'R@{k}']:.1f}" for k in KS)
                 + f" | {r['n_queries']} | {r['n_gallery']} |")
display(Markdown("\n".join(lines)))
