"""Downstream evaluation: one feature extractor, the paper's protocols, and embeddings of your own media.

    from crisscross_core.evaluate import load_encoder, load_items, AudioFeatures, run_svm, SVMConfig
    enc, info = load_encoder("aud_crisscross_kinetics_400.pth.tar", "audio")   # or a run directory / "random"
    items, classes = load_items("esc50.csv")
    res = run_svm(AudioFeatures(enc), items, SVMConfig(clip_duration=2.0),
                  augment=audio_train_transform(AudioSettings()))

    from crisscross_core.evaluate.embed import embed       # `crisscross embed`; resumable
    out = embed("my_videos/", "runs/k400", "emb/")
    f = load_embeddings(out).features("video", "h")         # Features for retrieval, probes, explorers

Modules: features (extractor, featurizers, cache), embed (your own media → embeddings directory), svm (ESC)
with linear_svm (the torch squared-hinge solver), fctune (DCASE), finetune (UCF/HMDB), probe (linear / kNN),
retrieval (Recall@K), results (JSON + tables), cli (`crisscross evaluate`). Protocols: docs/evaluation.md.
scikit-learn and faiss are imported lazily, only by the protocols that need them.
"""
from .embed import Embeddings, load_embeddings   # not `embed` itself: it would hide the module evaluate.embed
from .features import (AudioFeatures, AudioSettings, Features, LogMelStats, VideoFeatures, VideoSettings,
                       audio_train_transform, extract_features, load_encoder, svm_pool)
from .fctune import FCTuneConfig, run_fctune
from .finetune import FT_TABLE, FinetuneConfig, VideoClassifier, finetune_hparams, run_finetune
from .linear_svm import SquaredHingeSVM, fit_path
from .media import Item, load_items
from .probe import knn_probe, linear_probe
from .results import load_results, render_markdown, render_plain, write_result
from .retrieval import class_retrieval, cross_modal, cross_modal_retrieval, leave_one_out_retrieval
from .svm import SVMConfig, run_svm

__all__ = ["Embeddings", "load_embeddings", "AudioFeatures", "AudioSettings", "Features", "LogMelStats",
           "VideoFeatures", "VideoSettings", "audio_train_transform", "extract_features", "load_encoder", "svm_pool",
           "FCTuneConfig", "run_fctune", "FT_TABLE", "FinetuneConfig", "VideoClassifier", "finetune_hparams",
           "run_finetune", "SquaredHingeSVM", "fit_path", "Item", "load_items", "knn_probe", "linear_probe",
           "load_results", "render_markdown", "render_plain", "write_result", "class_retrieval", "cross_modal",
           "cross_modal_retrieval", "leave_one_out_retrieval", "SVMConfig", "run_svm"]
