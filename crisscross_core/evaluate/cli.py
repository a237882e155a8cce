"""`crisscross evaluate <protocol> --weights W --data MANIFEST ...` — run a protocol, write its JSON.

Protocols: esc-svm (ESC-50/ESC-10 linear SVM), dcase (fc-tuning), finetune (UCF101/HMDB51), linear-probe,
knn, retrieval, table (render result JSONs beside the paper's numbers). `crisscross evaluate <protocol>
--help` lists that protocol's options only.

`--weights` (required): a released `vid_crisscross_*` / `aud_crisscross_*` file (or its .zip), our export, a
full checkpoint, a run directory, or `random` (one random-init network seeded by `--seed`, used for every
split; `--width/--depth` set its size). Audio protocols take `--baseline logmel-stats` instead (per-mel-bin
mean/std statistics, no network). `retrieval --embeddings DIR` searches the output of `crisscross embed`.
Every row a protocol leaves out (no label, no audio, no video, file missing, undecodable) is counted and
named in the result JSON and printed once. Details: docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from ..config import ConfigError

PROTOCOLS = ("esc-svm", "dcase", "finetune", "linear-probe", "knn", "retrieval", "table")
HELP = {
    "esc-svm": "ESC-50 / ESC-10 linear SVM on frozen audio features, k-fold",
    "dcase": "DCASE 2013 fc-tuning (frozen audio backbone, linear head)",
    "finetune": "UCF101 / HMDB51 full fine-tuning of the video backbone",
    "linear-probe": "logistic regression on frozen per-item features (train split → test split)",
    "knn": "cosine kNN on frozen per-item features (train split → test split)",
    "retrieval": "Recall@K: video→video, audio→audio (same class), or audio↔video (same clip)",
    "table": "render result JSONs beside the paper's numbers",
}
AUDIO_BASELINE_PROTOCOLS = ("esc-svm", "linear-probe", "knn", "retrieval")


def _floats(s: str) -> tuple:
    try:
        return tuple(float(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None


# ----------------------------------------------------------------------------- options per protocol

def _common(p: argparse.ArgumentParser, protocol: str) -> None:
    g = p.add_argument_group("weights and data")
    g.add_argument("--weights", default=None,
                   help="backbone weights file (.pth.tar / .zip), export, full checkpoint, run directory, or "
                        "'random' (seeded by --seed); required" + (" unless --baseline"
                                                                   if protocol in AUDIO_BASELINE_PROTOCOLS else ""))
    g.add_argument("--width", type=float, default=None, help="random init: backbone width")
    g.add_argument("--depth", type=int, default=None, help="random init: backbone depth")
    g.add_argument("--data", default=None, help="manifest (kit CSV, or a plain CSV such as ESC's esc10.csv)")
    g.add_argument("--root", default=None, help="media root (default: the manifest's root)")
    g.add_argument("--label-column", default=None,
                   help="CSV column holding the labels (default: label, category, class or label_name)")
    g.add_argument("--dataset", default=None, help="dataset name recorded in the JSON (default: from --data)")
    g.add_argument("--pretrain", default=None,
                   help="kinetics_sound | kinetics400 | audioset (default: from the weights file name)")
    g.add_argument("--on-error", default="skip", choices=("skip", "fail"),
                   help="a file that cannot be decoded: skip it (counted and named in the JSON) or stop")
    o = p.add_argument_group("run")
    o.add_argument("--out", default="results", help="directory for the result JSON")
    o.add_argument("--label", default="", help="free-text label stored in the JSON and shown in tables")
    o.add_argument("--device", default="auto", help="auto | cpu | cuda")
    o.add_argument("--seed", type=int, default=0, help="random init, crops and sampling")
    o.add_argument("--batch-size", type=int, default=None, help="feature / training batch (protocol default)")
    o.add_argument("--num-workers", type=int, default=0, help="decode workers")
    o.add_argument("--cache-dir", default=None, help="cache extracted features here (npz)")
    o.add_argument("--no-progress", action="store_true")


def _splits(p: argparse.ArgumentParser, default_train="train", default_test="test", cross=False) -> None:
    g = p.add_argument_group("splits")
    g.add_argument("--train-split", default=None,
                   help=f"split tag of the training / gallery items (default {default_train!r}; e.g. train1, train-1)")
    g.add_argument("--test-split", default=None,
                   help=(f"split tag of the test / query items (default {default_test!r}; e.g. test1, test-1)"
                         + ("; cross-modal retrieval uses every row unless given" if cross else "")))
    g.add_argument("--split", type=int, default=None,
                   help="official split k: sets --train-split train<k> --test-split test<k> (UCF/HMDB)")


def _clip(p, frames=True, clip_duration=True, windows=None, crop=True) -> None:
    g = p.add_argument_group("clips")
    if clip_duration:
        g.add_argument("--clip-duration", type=float, default=None, help="audio seconds per window")
    if frames:
        g.add_argument("--frames", type=int, default=8, help="video frames per clip (16 fps)")
    if crop:
        g.add_argument("--crop-size", type=int, default=None, help="video crop (default 112; finetune 224)")
    if windows is not None:
        g.add_argument("--windows", type=int, default=windows, help="windows per item, features averaged")


def _baseline(p) -> None:
    p.add_argument("--baseline", default=None, choices=("logmel-stats",),
                   help="no-network audio features (per-mel-bin mean and std of the log-mel) instead of --weights")


def _add_protocol(sub, name: str) -> None:
    p = sub.add_parser(name, help=HELP[name], description=HELP[name] + ". Details: docs/evaluation.md.")
    p.set_defaults(protocol=name)
    if name == "table":
        p.add_argument("--results", nargs="*", default=None, help="result files or directories (default --out)")
        p.add_argument("--out", default="results")
        p.add_argument("--format", default="markdown", choices=("markdown", "plain"))
        return
    _common(p, name)
    if name == "esc-svm":
        _clip(p, frames=False, crop=False)
        _baseline(p)
        s = p.add_argument_group("esc-svm")
        s.add_argument("--crops", type=int, default=100, help="augmented training crops per recording (release 100)")
        s.add_argument("--test-windows", type=int, default=None, help="evenly spaced test windows per recording")
        s.add_argument("--legacy-test-crop", action="store_true", help="the release's 2 s test crop bug")
        s.add_argument("--legacy-norm", action="store_true", help="the release's L2 norm over the last axis")
        s.add_argument("--selection", default="heldout", choices=("heldout", "test", "fixed"),
                       help="how C is chosen (test = the release's best-C-on-test)")
        s.add_argument("--c-grid", type=_floats, default=None, help="comma-separated C values")
        s.add_argument("--fixed-c", type=float, default=1e-4)
        s.add_argument("--extend-grid", type=int, default=0,
                       help="when the held-out C is at an edge of the grid, try up to N more values (×10)")
        s.add_argument("--solver", default="torch", choices=("torch", "liblinear"),
                       help="torch: batched squared-hinge Newton solver (CPU/GPU); liblinear: sklearn LinearSVC")
        s.add_argument("--tol", type=float, default=1e-4, help="torch solver tolerance (relative gradient norm)")
        s.add_argument("--max-iter", type=int, default=1000, help="liblinear: LinearSVC max_iter (release 1000)")
        s.add_argument("--no-test-sweep", action="store_true",
                       help="fit only the selected C on all training folds (no best-C-on-test report; faster)")
        s.add_argument("--scale-features", action="store_true", help="standardise features (on for --baseline)")
        s.add_argument("--folds", default=None, help="comma-separated test folds (default: all; fewer = partial)")
    elif name == "dcase":
        _splits(p)
        _clip(p, frames=False, crop=False)
        d = p.add_argument_group("dcase")
        d.add_argument("--epochs", type=int, default=None, help="default 200")
        d.add_argument("--crops-per-epoch", type=int, default=60)
        d.add_argument("--distinct-epochs", type=int, default=None)
        d.add_argument("--lr", type=float, default=None)
        d.add_argument("--test-windows", type=int, default=None, help="default 60")
        d.add_argument("--legacy-norm", action="store_true", help="the release's L2 norm over the last axis")
    elif name == "finetune":
        _splits(p)
        _clip(p, clip_duration=False)
        d = p.add_argument_group("finetune")
        d.add_argument("--epochs", type=int, default=None, help="default 20")
        d.add_argument("--lr", type=float, default=None)
        d.add_argument("--clips-per-video", type=int, default=10)
        d.add_argument("--test-windows", type=int, default=None, help="dense test clips (default 10)")
        d.add_argument("--eval-each-epoch", action="store_true",
                       help="test every epoch and also report the release's best-over-epochs")
        d.add_argument("--max-steps", type=int, default=0, help="stop after N steps (a partial run)")
    elif name in ("linear-probe", "knn"):
        _splits(p)
        _clip(p, windows=10)
        _baseline(p)
        g = p.add_argument_group(name)
        g.add_argument("--modality", default="video", choices=("video", "audio"))
        if name == "knn":
            g.add_argument("--k", type=int, default=20, help="neighbours")
    elif name == "retrieval":
        _splits(p, cross=True)
        _clip(p, windows=10)
        _baseline(p)
        g = p.add_argument_group("retrieval")
        g.add_argument("--mode", default="video", choices=("video", "audio", "cross"), help="retrieval kind")
        g.add_argument("--audio-weights", default=None,
                       help="cross-modal: audio backbone (default: --weights when it is a run directory)")
        g.add_argument("--embeddings", default=None,
                       help="an output directory of `crisscross embed` (instead of --weights/--data)")
        g.add_argument("--space", default=None,
                       help="with --embeddings: feature space h | z | p (default h; cross-modal: queries p, "
                            "gallery z when present, else h)")
        g.add_argument("--leave-one-out", action="store_true",
                       help="video/audio mode without splits: every item queries all the others")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="protocol", metavar="protocol", required=True)
    for name in PROTOCOLS:
        _add_protocol(sub, name)


# ----------------------------------------------------------------------------- helpers

def _device(name: str) -> str:
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _need(args, *names):
    miss = [n for n in names if not getattr(args, n, None)]
    if miss:
        raise ConfigError(f"{args.protocol}: --{miss[0].replace('_', '-')} is required")


def _need_weights(args) -> None:
    if args.weights or getattr(args, "baseline", None):
        return
    alt = " (or --baseline logmel-stats)" if args.protocol in AUDIO_BASELINE_PROTOCOLS else ""
    raise ConfigError(f"{args.protocol}: --weights is required{alt}: a weights file, a "
                      f"run directory, or 'random' for a random-init network seeded by --seed")


class Encoders:
    """One encoder per (weights, modality) for the whole evaluation: a random init is built once (seeded)
    and used for every split and item."""

    def __init__(self, args):
        self.args, self._cache = args, {}

    def get(self, modality: str, weights=None):
        from .features import load_encoder
        w = weights or self.args.weights
        key = (str(w), modality)
        if key not in self._cache:
            self._cache[key] = load_encoder(w, modality, depth=self.args.depth, width=self.args.width,
                                            device=_device(self.args.device), seed=self.args.seed)
        return self._cache[key]


def _dataset_name(args, default):
    if getattr(args, "dataset", None):
        return args.dataset
    if not getattr(args, "data", None):
        return default
    stem = pathlib.Path(args.data).stem.lower()
    for name in ("esc10", "esc50", "ucf101", "hmdb51", "dcase", "kinetics_sound", "kinetics400"):
        if name in stem:
            return name
    return default


def _dropped(manifest_drops: list, *feature_sets) -> list:
    """Manifest rows left out plus files that failed to decode, one {rid, path, reason} per row."""
    out = {d["rid"]: d for d in manifest_drops}
    for f in feature_sets:
        for d in (f.meta.get("failed", []) if f is not None else []):
            out.setdefault(d["rid"], {**d, "reason": f"undecodable: {d['reason']}"})
    return sorted(out.values(), key=lambda d: d["rid"])


def _save(args, protocol, dataset, res, info, metric="top1", run=None, dropped=()) -> int:
    from .media import drop_summary
    from .results import guess_pretrain, write_result
    res = dict(res)
    res["dropped"] = list(dropped)
    res["n_dropped"] = len(dropped)
    if dropped:
        print(f"[evaluate] left out {len(dropped)} row(s): {drop_summary(dropped)}", file=sys.stderr, flush=True)
    pre = getattr(args, "pretrain", None) or guess_pretrain(info.get("weights"))
    path = write_result(protocol, res, args.out, dataset=dataset, weights=info.get("weights"),
                        weights_sha256=info.get("sha256"), seed=args.seed, pretrain=pre, label=args.label,
                        metric=metric, run=run,
                        config={"args": {k: v for k, v in vars(args).items() if k != "func"},
                                "protocol": res.get("config", {}), "encoder": info})
    summary = {k: v for k, v in res.items() if isinstance(v, (int, float, str, bool)) and k != "config"}
    print(json.dumps({"protocol": protocol, "dataset": dataset, **summary, "json": str(path)}))
    return 0


def _set_splits(args, cross=False) -> None:
    if getattr(args, "split", None) is not None:
        args.train_split, args.test_split = f"train{args.split}", f"test{args.split}"
    if args.train_split is None:
        args.train_split = "train"
    if args.test_split is None:
        args.test_split = "" if cross else "test"


# ----------------------------------------------------------------------------- protocols

def run(args) -> int:
    import torch
    if args.protocol == "table":
        from .results import load_results, render_markdown, render_plain
        recs = load_results(args.results or [args.out])
        print((render_markdown if args.format == "markdown" else render_plain)(recs))
        return 0
    if args.protocol == "retrieval" and args.embeddings:
        return _retrieval_from_embeddings(args)
    _need(args, "data")
    _need_weights(args)
    if args.device in ("auto", "cpu") and not torch.cuda.is_available():
        torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    torch.manual_seed(args.seed)
    dev, prog = _device(args.device), not args.no_progress
    enc = Encoders(args)
    if args.protocol == "esc-svm":
        return _esc_svm(args, enc, dev, prog)
    if args.protocol == "dcase":
        return _dcase(args, enc, dev, prog)
    if args.protocol == "finetune":
        return _finetune(args, enc, dev, prog)
    return _feature_protocols(args, enc, dev, prog)


def _esc_svm(args, enc, dev, prog) -> int:
    from .features import AudioSettings, audio_train_transform
    from .media import load_items
    from .svm import C_GRID, SVMConfig, run_svm
    drops: list = []
    items, _ = load_items(args.data, args.root, require_audio=True, label_column=args.label_column,
                          dropped=drops)
    cfg = SVMConfig(clip_duration=args.clip_duration or 2.0, train_crops=args.crops,
                    test_windows=args.test_windows, legacy_test_crop=args.legacy_test_crop,
                    c_grid=args.c_grid or C_GRID, selection=args.selection, fixed_c=args.fixed_c,
                    solver=args.solver, tol=args.tol, max_iter=args.max_iter, extend_grid=args.extend_grid,
                    sweep_test=not args.no_test_sweep, scale_features=args.scale_features or bool(args.baseline),
                    folds=tuple(args.folds.split(",")) if args.folds else None,
                    batch_size=args.batch_size or 64, seed=args.seed)
    feat, info = _audio_featurizer(args, enc, "conv5x")
    aug = audio_train_transform(AudioSettings(clip_duration=cfg.clip_duration), device=dev)
    res = run_svm(feat, items, cfg, augment=aug, device=dev, cache_dir=args.cache_dir,
                  cache_tag={"weights": info.get("sha256") or info.get("baseline") or "random"},
                  num_workers=args.num_workers, progress=prog, on_error=args.on_error)
    dropped = drops + [{**f, "reason": f"undecodable: {f['reason']}"} for f in res.pop("failed")]
    run = {"folds": f"{len(res['folds_run'])}/{res['folds_total']}", "crops": cfg.train_crops,
           "windows": cfg.windows(), "seed": args.seed, "solver": cfg.solver, "partial": res["partial"]}
    return _save(args, "esc_svm", _dataset_name(args, "esc50"), res, info, run=run, dropped=dropped)


def _audio_featurizer(args, enc, mode: str):
    """(featurizer, info): --baseline logmel-stats, or the audio encoder's conv5x SVM / pooled features."""
    from .features import AudioFeatures, LogMelStats
    if getattr(args, "baseline", None):
        return LogMelStats(), {"weights": None, "sha256": None, "baseline": args.baseline}
    model, info = enc.get("audio")
    return AudioFeatures(model, mode, getattr(args, "legacy_norm", False)), info


def _dcase(args, enc, dev, prog) -> int:
    from .fctune import FCTuneConfig, run_fctune
    from .media import load_items
    _set_splits(args)
    drops: list = []
    tr, names = load_items(args.data, args.root, split=args.train_split, require_audio=True,
                           label_column=args.label_column, dropped=drops)
    te, _ = load_items(args.data, args.root, split=args.test_split, classes=names, require_audio=True,
                       label_column=args.label_column, dropped=drops)
    model, info = enc.get("audio")
    cfg = FCTuneConfig(clip_duration=args.clip_duration or 1.0, epochs=args.epochs or 200,
                       crops_per_epoch=args.crops_per_epoch, distinct_epochs=args.distinct_epochs,
                       batch_size=args.batch_size or 512, lr=args.lr or 0.007,
                       test_windows=args.test_windows or 60, legacy_norm=args.legacy_norm, seed=args.seed)
    res = run_fctune(model, tr, te, len(names), cfg, device=dev, progress=prog, on_error=args.on_error)
    dropped = drops + [{**f, "reason": f"undecodable: {f['reason']}"} for f in res.pop("failed", [])]
    run = {"epochs": cfg.epochs, "crops": cfg.crops_per_epoch, "windows": cfg.test_windows, "seed": args.seed,
           "partial": False}
    return _save(args, "fctune", _dataset_name(args, "dcase"), res, info, run=run, dropped=dropped)


def _finetune(args, enc, dev, prog) -> int:
    from .finetune import FinetuneConfig, finetune_hparams, run_finetune
    from .media import load_items, screen_items
    from .results import guess_pretrain
    _set_splits(args)
    ds = _dataset_name(args, "custom")
    model, info = enc.get("video")
    pre = args.pretrain or guess_pretrain(info.get("weights"))
    # unknown dataset / pretraining / frame count: the nearest UCF101 / Kinetics row of the table
    key = (ds if ds in ("ucf101", "hmdb51") else "ucf101", pre or "kinetics400",
           args.frames if args.frames in (8, 32) else (8 if args.frames < 20 else 32))
    if key != (ds, pre, args.frames):
        print(f"[finetune] no hyper-parameter row for ({ds}, {pre}, {args.frames} frames); using {key}'s",
              file=sys.stderr)
    hp = finetune_hparams(*key)
    if args.batch_size:
        hp["batch_size"] = args.batch_size
    if args.lr:
        hp["lr"] = args.lr
    drops: list = []
    tr, names = load_items(args.data, args.root, split=args.train_split, require_video=True,
                           label_column=args.label_column, dropped=drops)
    te, _ = load_items(args.data, args.root, split=args.test_split, classes=names, require_video=True,
                       label_column=args.label_column, dropped=drops)
    tr, bad_tr = screen_items(tr, "video", args.on_error, progress=prog)
    te, bad_te = screen_items(te, "video", args.on_error, progress=prog)
    cfg = FinetuneConfig(frames=args.frames, crop_size=args.crop_size or 224, epochs=args.epochs or 20,
                         clips_per_video=args.clips_per_video, test_clips=args.test_windows or 10,
                         eval_each_epoch=args.eval_each_epoch, num_workers=args.num_workers,
                         max_steps=args.max_steps, seed=args.seed, **hp)
    res = run_finetune(model, tr, te, len(names), cfg, device=dev, progress=prog)
    dropped = drops + [{**f, "reason": f"undecodable: {f['reason']}"} for f in bad_tr + bad_te]
    run = {"epochs": cfg.epochs, "frames": cfg.frames, "windows": cfg.test_clips, "seed": args.seed,
           "partial": bool(cfg.max_steps)}
    return _save(args, "finetune", ds, res, info, run=run, dropped=dropped)


def _extract(args, featurizer, items, modality, dev, prog, tag):
    from .features import AudioSettings, VideoSettings, extract_features
    return extract_features(featurizer, items, modality, windows=args.windows,
                            audio=AudioSettings(clip_duration=args.clip_duration or 2.0),
                            video=VideoSettings(frames=args.frames, crop_size=args.crop_size or 112),
                            batch_size=args.batch_size or 32, device=dev, seed=args.seed,
                            num_workers=args.num_workers, cache_dir=args.cache_dir, cache_tag=tag,
                            progress=prog, on_error=args.on_error)


def _featurizer(args, enc, modality, weights=None):
    from .features import VideoFeatures
    if modality == "audio":
        if weights and not getattr(args, "baseline", None):
            model, info = enc.get("audio", weights)
            from .features import AudioFeatures
            return AudioFeatures(model, "pool"), info
        return _audio_featurizer(args, enc, "pool")
    if getattr(args, "baseline", None):
        raise ConfigError(f"{args.protocol}: --baseline {args.baseline} is an audio "
                          f"baseline; it has no video features (use --modality audio / --mode audio)")
    model, info = enc.get("video", weights)
    return VideoFeatures(model), info


def _feature_protocols(args, enc, dev, prog) -> int:
    from .media import load_items
    cross = args.protocol == "retrieval" and args.mode == "cross"
    _set_splits(args, cross=cross)
    ds = _dataset_name(args, "custom")
    modality = args.mode if args.protocol == "retrieval" else args.modality
    if cross:
        return _cross_retrieval(args, enc, dev, prog, ds)
    drops: list = []
    need = dict(require_audio=modality == "audio", require_video=modality == "video",
                label_column=args.label_column, dropped=drops)
    feat, info = _featurizer(args, enc, modality)
    tag = {"weights": info.get("sha256") or info.get("baseline") or "random"}
    loo = args.protocol == "retrieval" and args.leave_one_out
    if loo:
        items, names = load_items(args.data, args.root, split=args.test_split if args.test_split != "test" else "",
                                  **need)
        f = _extract(args, feat, items, modality, dev, prog, tag)
        from .retrieval import leave_one_out_retrieval
        r = leave_one_out_retrieval(f)
        r["mean"], r["feature_dim"] = r["R@1"], int(f.x.shape[1])
        run = {"windows": args.windows, "seed": args.seed, "split": "leave-one-out", "partial": False}
        return _save(args, f"retrieval_{modality}", ds, r, info, metric="R@1", run=run, dropped=_dropped(drops, f))
    tr, names = load_items(args.data, args.root, split=args.train_split, **need)
    te, _ = load_items(args.data, args.root, split=args.test_split, classes=names, **need)
    ftr = _extract(args, feat, tr, modality, dev, prog, tag)
    fte = _extract(args, feat, te, modality, dev, prog, tag)
    dropped = _dropped(drops, ftr, fte)
    run = {"windows": args.windows, "seed": args.seed, "split": f"{args.train_split} → {args.test_split}",
           "partial": False}
    if args.protocol in ("linear-probe", "knn"):
        from .probe import knn_probe, linear_probe
        r = linear_probe(ftr, fte, seed=args.seed) if args.protocol == "linear-probe" else \
            knn_probe(ftr, fte, k=args.k)
        r["mean"], r["feature_dim"] = r["top1"], int(ftr.x.shape[1])
        return _save(args, args.protocol.replace("-", "_") + f"_{modality}", ds, r, info, run=run, dropped=dropped)
    from .retrieval import class_retrieval
    r = class_retrieval(fte, ftr)
    r["mean"], r["feature_dim"] = r["R@1"], int(ftr.x.shape[1])
    return _save(args, f"retrieval_{modality}", ds, r, info, metric="R@1", run=run, dropped=dropped)


def _cross_retrieval(args, enc, dev, prog, ds) -> int:
    from .media import load_items
    from .retrieval import cross_modal
    if getattr(args, "baseline", None):
        raise ConfigError("retrieval --mode cross: --baseline logmel-stats has no video "
                          "side; cross-modal retrieval needs --weights for both encoders")
    drops: list = []
    items, _ = load_items(args.data, args.root, split=args.test_split, require_label=False, require_audio=True,
                          require_video=True, label_column=args.label_column, dropped=drops)
    fv_feat, info = _featurizer(args, enc, "video")
    aw = args.audio_weights or (args.weights if pathlib.Path(str(args.weights)).is_dir()
                                or args.weights == "random" else None)
    if aw is None:
        raise ConfigError("retrieval --mode cross: --audio-weights is required when "
                          "--weights is a single video file (a run directory or 'random' gives both)")
    fa_feat, ainfo = _featurizer(args, enc, "audio", aw)
    fv = _extract(args, fv_feat, items, "video", dev, prog, {"weights": info.get("sha256") or "random"})
    fa = _extract(args, fa_feat, items, "audio", dev, prog, {"weights": ainfo.get("sha256") or "random"})
    r = cross_modal(fa, fv)
    info = {**info, "audio": ainfo}
    run = {"windows": args.windows, "seed": args.seed, "split": args.test_split or "all rows", "partial": False}
    return _save(args, "retrieval_cross", ds, r, info, metric="R@1 (a→v, v→a mean)", run=run,
                 dropped=_dropped(drops, fv, fa))


def _retrieval_from_embeddings(args) -> int:
    from .embed import load_embeddings
    from .media import has_split
    from .retrieval import class_retrieval, cross_modal, leave_one_out_retrieval
    emb = load_embeddings(args.embeddings)
    cross = args.mode == "cross"
    _set_splits(args, cross=cross)
    ds = args.dataset or emb.meta.get("source", {}).get("name") or "custom"
    info = {**emb.meta.get("weights", {}), "embeddings": str(emb.path)}
    info.setdefault("sha256", None)
    run = {"windows": emb.meta.get("settings", {}).get("windows"), "seed": emb.meta.get("weights", {}).get("seed"),
           "partial": not emb.meta.get("complete", False), "embeddings": str(emb.path)}
    dropped = [{"rid": f["rid"], "path": f["path"], "reason": f"embedding failed: {f['reason']}"}
               for f in emb.meta.get("failed", [])]
    if cross:
        q_space = args.space or ("p" if "p" in emb.spaces.get("audio", []) else "h")
        g_space = args.space or ("z" if "z" in emb.spaces.get("video", []) else "h")
        fa_q, fv_g = emb.features("audio", q_space), emb.features("video", g_space)
        fv_q, fa_g = emb.features("video", q_space), emb.features("audio", g_space)
        keep = _split_rids(emb, args.test_split) if args.test_split else None
        if keep is not None:
            fa_q, fv_g, fv_q, fa_g = (f.select(keep(f)) for f in (fa_q, fv_g, fv_q, fa_g))
        r = cross_modal(fa_q, fv_g, fv_q, fa_g)
        r["spaces"] = {"query": q_space, "gallery": g_space}
        run["split"] = args.test_split or "all rows"
        return _save(args, "retrieval_cross", ds, r, info, metric="R@1 (a→v, v→a mean)", run=run,
                     dropped=dropped + emb.missing(("audio", "video")))
    f = emb.features(args.mode, args.space or "h")
    lab = f.label >= 0
    unl = [{"rid": int(r), "path": emb.path_of(int(r)), "reason": "no label"} for r in np.unique(f.rid[~lab])]
    f = f.select(lab)
    if args.leave_one_out:
        r = leave_one_out_retrieval(f)
        run["split"] = "leave-one-out"
    else:
        tr = f.select(np.array([has_split(s, args.train_split, fo) for s, fo in zip(*emb.split_of(f.rid))], bool))
        te = f.select(np.array([has_split(s, args.test_split, fo) for s, fo in zip(*emb.split_of(f.rid))], bool))
        if not len(tr.x) or not len(te.x):
            raise ConfigError(f"{emb.path}: no rows with split tag {args.train_split!r} and/or "
                              f"{args.test_split!r}; pass --train-split/--test-split, or --leave-one-out")
        r = class_retrieval(te, tr)
        run["split"] = f"{args.train_split} → {args.test_split}"
    r["mean"] = r["R@1"]
    r["space"] = args.space or "h"
    return _save(args, f"retrieval_{args.mode}", ds, r, info, metric="R@1", run=run,
                 dropped=dropped + emb.missing((args.mode,)) + unl)


def _split_rids(emb, split):
    from .media import has_split

    def keep(f):
        s, fo = emb.split_of(f.rid)
        return np.array([has_split(a, split, b) for a, b in zip(s, fo)], bool)
    return keep


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="crisscross evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
