"""Downstream evaluation: one feature extractor and the paper's protocols (spec §9).

    from crisscross_core.evaluate import load_encoder, load_items, AudioFeatures, run_svm, SVMConfig
    enc, info = load_encoder("aud_crisscross_kinetics_400.pth.tar", "audio")   # or a run directory
    items, classes = load_items("esc50.csv")
    res = run_svm(AudioFeatures(enc), items, SVMConfig(clip_duration=2.0),
                  augment=audio_train_transform(AudioSettings()))

Modules: features (extractor, featurizers, cache), svm (ESC), fctune (DCASE), finetune (UCF/HMDB),
probe (linear / kNN), retrieval (Recall@K), results (JSON + tables), cli (`crisscross evaluate`).
scikit-learn and faiss are imported lazily, only by the protocols that need them.
"""
from .features import (AudioFeatures, AudioSettings, Features, LogMelStats, VideoFeatures, VideoSettings,
                       audio_train_transform, extract_features, load_encoder, svm_pool)
from .fctune import FCTuneConfig, run_fctune
from .finetune import FT_TABLE, FinetuneConfig, VideoClassifier, finetune_hparams, run_finetune
from .media import Item, load_items
from .probe import knn_probe, linear_probe
from .results import load_results, render_markdown, render_plain, write_result
from .retrieval import class_retrieval, cross_modal_retrieval
from .svm import SVMConfig, run_svm

__all__ = ["AudioFeatures", "AudioSettings", "Features", "LogMelStats", "VideoFeatures", "VideoSettings",
           "audio_train_transform", "extract_features", "load_encoder", "svm_pool", "FCTuneConfig",
           "run_fctune", "FT_TABLE", "FinetuneConfig", "VideoClassifier", "finetune_hparams", "run_finetune",
           "Item", "load_items", "knn_probe", "linear_probe", "load_results", "render_markdown",
           "render_plain", "write_result", "class_retrieval", "cross_modal_retrieval", "SVMConfig", "run_svm"]
