# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Downstream tables
#
# Collect the evaluation protocols' JSON results (`crisscross evaluate ...` writes one file per run)
# and render them beside the paper's numbers, with their spreads (per-fold / per-split) and plots.
#
# With `RUN_PROTOCOLS = True` the notebook first runs a few protocols itself on what is at hand:
# kNN and linear probes on the demo data (pretrained vs random init) and, when `../shared/data/esc10`
# exists, the ESC-10 linear-SVM protocol (`docs/evaluation.md`) with the run's audio encoder and with a
# no-network log-mel-statistics baseline. The paper's rows (Kinetics-Sound / K400 / AudioSet
# pretraining, full-size models) are the reference; a tiny CPU model pretrained for minutes on
# synthetic clips is not expected to approach them.
#
# For the paper's protocols at full size, run for example
# `crisscross evaluate esc-svm --weights aud_crisscross_kinetics_400.pth.tar --data esc50.csv --out results`
# and point `RESULTS` at the directory.

# %% tags=["parameters"]
RESULTS = []              # extra result JSON files / directories to include
RESULTS_DIR = ""          # where this notebook writes; "" = <work dir>/results
RUN_PROTOCOLS = True      # run the small protocols below (else only collect)
WEIGHTS = ""              # a run dir, checkpoint.pt, released/exported vid_/aud_ file or .zip; "" = notebook 00's run
MEDIA = ""                # labelled media with train/test splits (a manifest, or class folders); "" = the demo data
ESC_FOLDS = None          # ESC-10 test folds (None = all five)
ESC_CROPS = 10            # augmented training crops per ESC recording (paper: 100)
SMALL = None              # None = from $CRISSCROSS_NB_SMALL (CI's tiny mode)

# %%
from pathlib import Path

import numpy as np
import torch
from IPython.display import Markdown, display

from crisscross_core.evaluate.features import AudioFeatures, LogMelStats, audio_train_transform, load_encoder
from crisscross_core.evaluate.media import load_items
from crisscross_core.evaluate.probe import knn_probe, linear_probe
from crisscross_core.evaluate.results import load_results, render_markdown, write_result
from crisscross_core.evaluate.svm import SVMConfig, run_svm
from crisscross_core.viz.result_figures import results_figure, spread_values
from crisscross_core.evaluate.features import settings_for
from crisscross_core.viz.notebook import (is_embeddings_dir, nb_paths, notebook_embeddings, run_config, small_mode,
                                          weights_note, weights_source)

SMALL = small_mode() if SMALL is None else SMALL
torch.set_num_threads(1 if SMALL else torch.get_num_threads())  # 1: CI shares 2 cores
paths = nb_paths(SMALL)
out_dir = Path(RESULTS_DIR or paths["work"] / "results")
esc = paths["repo"] / "data_manifests" / "esc10.csv"      # the kit manifest of ../shared/data/esc10
weights = weights_source(WEIGHTS, SMALL) if RUN_PROTOCOLS else None
run_cfg = Path(weights) / "config.yaml" if weights and Path(weights).is_dir() else None
cfg = run_config(Path(weights) if run_cfg and run_cfg.is_file() else None,
                 preset="tiny_cpu" if SMALL else "paper_kinetics400")
random_arch = str(run_cfg) if run_cfg and run_cfg.is_file() else ("tiny_cpu" if SMALL else "paper_kinetics400")

# %% [markdown]
# ## Run small protocols
# Probes on labelled media with train/test splits (the demo data by default): per-clip backbone features
# (two windows averaged, `crisscross embed`) of the train split train a cosine kNN and a logistic-regression
# probe, scored on the test split. Random init (the same architecture) is repeated over several
# initialisation seeds: that spread is the yardstick for the pretrained numbers.

# %%


def split_features(e, modality):
    """(train, test) per-window backbone Features of an Embeddings, by each clip's split tag."""
    f = e.features(modality, "h")
    splits, _ = e.split_of(f.rid)
    train = np.array(["train" in s.split() for s in splits])
    test = np.array(["test" in s.split() for s in splits])
    return f.select(train), f.select(test)


if RUN_PROTOCOLS:
    probes = {"knn": lambda a, b: knn_probe(a, b, k=5), "linear_probe": linear_probe}
    for label, w, seeds in (("pretrained", weights, [0]), ("random init", "random", [0, 1] if SMALL else [0, 1, 2])):
        runs = {}
        for seed in seeds:
            e, source = notebook_embeddings(MEDIA, w, windows=2, config=random_arch if w == "random" else None,
                                            seed=seed, small=SMALL, progress=not SMALL)
            for m in ("video", "audio"):
                if m not in e.modalities:
                    continue
                tr, te = split_features(e, m)
                for name, fn in probes.items():
                    runs.setdefault((name, m), []).append(fn(tr, te)["top1"])
        print(f"{label}: {len(tr.x)} train / {len(te.x)} test windows of {source}")
        display(Markdown(weights_note(e)))
        winfo = e.meta["weights"]
        for (name, m), vals in runs.items():
            r = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "per_seed": vals}
            wfile = (winfo.get(m) or {}).get("weights") if winfo.get("kind") == "backbone" else winfo.get("weights")
            write_result(f"{name}_{m}", r, out_dir, dataset="demo" if not MEDIA else Path(MEDIA).stem,
                         label=label, seed=seeds[0], weights=wfile if w != "random" else None,
                         config={"weights": str(w), "windows": 2, "init_seeds": seeds,
                                 "encoder": {"seed": seeds[0]} if w == "random" else {}})

# %% [markdown]
# ESC-10 linear SVM (`docs/evaluation.md`): augmented random crops of the training folds, evenly spaced
# windows of the test fold, C chosen on a held-out training fold; per-fold accuracies give the spread.
# Beside the run's audio encoder, a baseline without a network: per-mel-bin mean and std of the log-mel.

# %%
if RUN_PROTOCOLS and is_embeddings_dir(weights):
    print("ESC-10 skipped: WEIGHTS is an embeddings directory, the SVM protocol needs an audio encoder")
elif RUN_PROTOCOLS and (paths["shared"] / "esc10").is_dir() and esc.is_file():
    items, _ = load_items(esc)
    folds = ESC_FOLDS
    crops, windows, selection = ESC_CROPS, None, "heldout"
    if SMALL:   # two folds, one crop: the pipeline, not the number
        items = [it for it in items if it.fold in ("1", "2")]
        folds, crops, windows, selection = ("1", "2"), 1, 2, "fixed"
    _, a_settings = settings_for(cfg)
    svm_cfg = SVMConfig(clip_duration=2.0, train_crops=crops, test_windows=windows, selection=selection,
                        fixed_c=1e-2, folds=folds, scale_features=False)
    aug = audio_train_transform(a_settings)
    encoder, einfo = load_encoder(weights, "audio")
    for label, feat, scale, w, enc in (
            ("run encoder", AudioFeatures(encoder, "conv5x"), False, einfo["weights"], {}),
            ("log-mel stats", LogMelStats(), True, None, {"baseline": "log-mel statistics"})):
        c = SVMConfig(**{**svm_cfg.__dict__, "scale_features": scale})
        r = run_svm(feat, items, c, augment=aug, audio=a_settings, progress=False)
        write_result("esc_svm", r, out_dir, dataset="esc10", label=label, weights=w, config={"encoder": enc})
        print(f"ESC-10 {label}: {100 * r['mean']:.1f} ± {100 * r['std']:.1f} %")
elif RUN_PROTOCOLS:
    print(f"no {paths['shared'] / 'esc10'}: ESC-10 skipped")

# %% [markdown]
# ## Collect and render
# Every record carries the protocol, dataset, pretraining, weights (+ sha256), seed, config and
# timestamp. The table puts each number beside the paper's for the same dataset and pretraining.

# %%
records = load_results([p for p in [out_dir, *RESULTS] if Path(p).exists()])
latest = {}
for r in records:   # the newest record per (protocol, dataset, label, weights)
    latest[(r["protocol"], r["dataset"], r.get("label"), r.get("weights"))] = r
records = list(latest.values())
display(Markdown(render_markdown(records)))

# %% [markdown]
# ## Spreads
# Bars: mean ± std; dots: per-fold / per-seed numbers; red stars: the paper (when the record's
# pretraining matches one of the paper's rows).

# %%
fig = results_figure(records, title="our results (dots: folds / seeds) vs the paper (stars)")

# %%
for r in records:
    pts = spread_values(r)
    if pts:
        print(f"{r['dataset']:>8} {r['protocol']:<14} {r.get('label', ''):<14} "
              + " ".join(f"{100 * p:5.1f}" for p in pts))
