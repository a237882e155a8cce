"""`crisscross evaluate <protocol> --weights W --data MANIFEST ...` — run a protocol, write its JSON.

Protocols: esc-svm (ESC-50/ESC-10 linear SVM), dcase (fc-tuning), finetune (UCF101/HMDB51), linear-probe,
knn, retrieval, table (render result JSONs beside the paper's numbers).
`--weights`: a released `vid_crisscross_*` / `aud_crisscross_*` file, our export, a run directory, or
`random` (random init; `--width/--depth` set its size). `--baseline logmel-stats` (esc-svm) replaces the
encoder by per-mel-bin mean/std statistics.
"""
from __future__ import annotations

import argparse
import json
import sys

PROTOCOLS = ("esc-svm", "dcase", "finetune", "linear-probe", "knn", "retrieval", "table")


def _floats(s: str) -> tuple:
    return tuple(float(x) for x in s.split(",") if x.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", choices=PROTOCOLS, help="which downstream protocol to run")
    g = parser.add_argument_group("common")
    g.add_argument("--weights", default=None, help="backbone weights file, run directory, or 'random'")
    g.add_argument("--audio-weights", default=None,
                   help="retrieval cross-modal: audio backbone (default: --weights when it is a run dir)")
    g.add_argument("--data", default=None, help="manifest (kit CSV, or ESC's esc10.csv / esc50.csv)")
    g.add_argument("--root", default=None, help="media root (default: the manifest's root)")
    g.add_argument("--out", default="results", help="directory for the result JSON")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--batch-size", type=int, default=None, help="feature / training batch (protocol default)")
    g.add_argument("--num-workers", type=int, default=0, help="decode workers")
    g.add_argument("--cache-dir", default=None, help="cache extracted features here (npz)")
    g.add_argument("--width", type=float, default=None, help="random init: backbone width")
    g.add_argument("--depth", type=int, default=None, help="random init: backbone depth")
    g.add_argument("--pretrain", default=None,
                   help="kinetics_sound | kinetics400 | audioset (default: from the weights file name)")
    g.add_argument("--label", default="", help="free-text label stored in the JSON and shown in tables")
    g.add_argument("--train-split", default="train", help="split tag of training items (e.g. train1, train-1)")
    g.add_argument("--test-split", default="test", help="split tag of test items (e.g. test1, test-1)")
    g.add_argument("--split", type=int, default=None,
                   help="official split k: sets --train-split train<k> --test-split test<k> (UCF/HMDB)")
    g.add_argument("--no-progress", action="store_true")
    s = parser.add_argument_group("esc-svm")
    s.add_argument("--clip-duration", type=float, default=None, help="seconds (esc-svm 2 or 5; dcase 1)")
    s.add_argument("--crops", type=int, default=100, help="augmented training crops per recording")
    s.add_argument("--test-windows", type=int, default=None, help="evenly spaced test windows per recording")
    s.add_argument("--legacy-test-crop", action="store_true", help="the release's 2 s test bug (§11.D10)")
    s.add_argument("--legacy-norm", action="store_true", help="L2 norm over the last axis (§11.D9)")
    s.add_argument("--selection", default="heldout", choices=("heldout", "test", "fixed"),
                   help="how C is chosen (test = the release's best-C-on-test)")
    s.add_argument("--c-grid", type=_floats, default=None, help="comma-separated C values")
    s.add_argument("--fixed-c", type=float, default=1e-4)
    s.add_argument("--max-iter", type=int, default=1000)
    s.add_argument("--no-test-sweep", action="store_true",
                   help="fit only the selected C on all training folds (no best-C-on-test report; faster)")
    s.add_argument("--scale-features", action="store_true")
    s.add_argument("--folds", default=None, help="comma-separated test folds (default: all)")
    s.add_argument("--baseline", default=None, choices=("logmel-stats",), help="no-network features")
    d = parser.add_argument_group("dcase / finetune")
    d.add_argument("--epochs", type=int, default=None)
    d.add_argument("--crops-per-epoch", type=int, default=60)
    d.add_argument("--distinct-epochs", type=int, default=None)
    d.add_argument("--lr", type=float, default=None)
    d.add_argument("--dataset", default=None, help="finetune: ucf101 | hmdb51 (hyper-parameter table key)")
    d.add_argument("--frames", type=int, default=8, help="finetune: 8 or 32")
    d.add_argument("--crop-size", type=int, default=None, help="finetune/probe video crop (224 / 112)")
    d.add_argument("--clips-per-video", type=int, default=10)
    d.add_argument("--eval-each-epoch", action="store_true",
                   help="finetune: test every epoch and also report the release's best-over-epochs")
    d.add_argument("--max-steps", type=int, default=0)
    p = parser.add_argument_group("probes / retrieval")
    p.add_argument("--modality", default="video", choices=("video", "audio"))
    p.add_argument("--mode", default="video", choices=("video", "audio", "cross"), help="retrieval kind")
    p.add_argument("--windows", type=int, default=10, help="clips per item, features averaged")
    p.add_argument("--k", type=int, default=20, help="kNN neighbours")
    p.add_argument("--results", nargs="*", default=None, help="table: result files or directories")
    p.add_argument("--format", default="markdown", choices=("markdown", "plain"))


def _device(name: str) -> str:
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _encoder(args, modality, weights=None):
    from .features import load_encoder
    return load_encoder(weights or args.weights, modality, depth=args.depth, width=args.width,
                        device=_device(args.device))


def _need(args, *names):
    miss = [n for n in names if not getattr(args, n)]
    if miss:
        raise SystemExit(f"crisscross evaluate {args.protocol}: missing --{miss[0].replace('_', '-')}")


def _save(args, protocol, dataset, res, info, metric="top1") -> int:
    from .results import guess_pretrain, write_result
    pre = args.pretrain or guess_pretrain(info.get("weights"))
    path = write_result(protocol, res, args.out, dataset=dataset, weights=info.get("weights"),
                        weights_sha256=info.get("sha256"), seed=args.seed, pretrain=pre, label=args.label,
                        metric=metric,
                        config={"args": {k: v for k, v in vars(args).items() if k != "func"},
                                "protocol": res.get("config", {}), "encoder": info})
    summary = {k: v for k, v in res.items() if isinstance(v, (int, float, str)) and k != "config"}
    print(json.dumps({"protocol": protocol, "dataset": dataset, **summary, "json": str(path)}))
    return 0


def _dataset_name(args, default):
    import pathlib
    if args.dataset:
        return args.dataset
    stem = pathlib.Path(args.data).stem.lower()
    for name in ("esc10", "esc50", "ucf101", "hmdb51", "dcase", "kinetics_sound", "kinetics400"):
        if name in stem:
            return name
    return default


def run(args) -> int:
    import torch
    if args.protocol == "table":
        from .results import load_results, render_markdown, render_plain
        recs = load_results(args.results or [args.out])
        print((render_markdown if args.format == "markdown" else render_plain)(recs))
        return 0
    _need(args, "data")
    if args.split is not None:
        args.train_split, args.test_split = f"train{args.split}", f"test{args.split}"
    torch.manual_seed(args.seed)                      # random-init encoders are reproducible
    if args.device in ("auto", "cpu") and not torch.cuda.is_available():
        torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    from .media import load_items
    dev, prog = _device(args.device), not args.no_progress
    if args.protocol == "esc-svm":
        from .features import AudioFeatures, AudioSettings, LogMelStats, audio_train_transform
        from .svm import C_GRID, SVMConfig, run_svm
        items, _ = load_items(args.data, args.root)
        cfg = SVMConfig(clip_duration=args.clip_duration or 2.0, train_crops=args.crops,
                        test_windows=args.test_windows, legacy_test_crop=args.legacy_test_crop,
                        c_grid=args.c_grid or C_GRID, selection=args.selection, fixed_c=args.fixed_c,
                        max_iter=args.max_iter, sweep_test=not args.no_test_sweep, scale_features=args.scale_features or bool(args.baseline),
                        folds=tuple(args.folds.split(",")) if args.folds else None,
                        batch_size=args.batch_size or 64, seed=args.seed)
        if args.baseline:
            feat, info = LogMelStats(), {"weights": None, "sha256": None, "baseline": args.baseline}
        else:
            _need(args, "weights")
            enc, info = _encoder(args, "audio")
            feat = AudioFeatures(enc, "conv5x", args.legacy_norm)
        tag = {"w": info.get("sha256") or info.get("baseline") or f"random-{info.get('width')}-{args.seed}",
               "legacy_norm": args.legacy_norm}
        aug = audio_train_transform(AudioSettings(clip_duration=cfg.clip_duration), device=dev)
        res = run_svm(feat, items, cfg, augment=aug, device=dev, cache_dir=args.cache_dir, cache_tag=tag,
                      num_workers=args.num_workers, progress=prog)
        return _save(args, "esc_svm", _dataset_name(args, "esc50"), res, info)
    if args.protocol == "dcase":
        from .fctune import FCTuneConfig, run_fctune
        _need(args, "weights")
        tr, names = load_items(args.data, args.root, split=args.train_split)
        te, _ = load_items(args.data, args.root, split=args.test_split, classes=names)
        enc, info = _encoder(args, "audio")
        cfg = FCTuneConfig(clip_duration=args.clip_duration or 1.0, epochs=args.epochs or 200,
                           crops_per_epoch=args.crops_per_epoch, distinct_epochs=args.distinct_epochs,
                           batch_size=args.batch_size or 512, lr=args.lr or 0.007,
                           test_windows=args.test_windows or 60, legacy_norm=args.legacy_norm, seed=args.seed)
        res = run_fctune(enc, tr, te, len(names), cfg, device=dev, progress=prog)
        return _save(args, "fctune", _dataset_name(args, "dcase"), res, info)
    if args.protocol == "finetune":
        from .finetune import FinetuneConfig, finetune_hparams, run_finetune
        from .results import guess_pretrain
        _need(args, "weights")
        ds = _dataset_name(args, "custom")
        enc, info = _encoder(args, "video")
        pre = args.pretrain or guess_pretrain(info.get("weights"))
        # unknown dataset / pretraining / frame count: the nearest UCF101 / Kinetics row of the table
        key = (ds if ds in ("ucf101", "hmdb51") else "ucf101", pre or "kinetics400",
               args.frames if args.frames in (8, 32) else (8 if args.frames < 20 else 32))
        if key != (ds, pre, args.frames):
            print(f"[finetune] no spec §9.1 row for ({ds}, {pre}, {args.frames} frames); using {key}'s "
                  f"hyper-parameters", file=sys.stderr)
        hp = finetune_hparams(*key)
        if args.batch_size:
            hp["batch_size"] = args.batch_size
        if args.lr:
            hp["lr"] = args.lr
        tr, names = load_items(args.data, args.root, split=args.train_split)
        te, _ = load_items(args.data, args.root, split=args.test_split, classes=names)
        cfg = FinetuneConfig(frames=args.frames, crop_size=args.crop_size or 224, epochs=args.epochs or 20,
                             clips_per_video=args.clips_per_video, test_clips=args.test_windows or 10,
                             eval_each_epoch=args.eval_each_epoch, num_workers=args.num_workers,
                             max_steps=args.max_steps, seed=args.seed, **hp)
        res = run_finetune(enc, tr, te, len(names), cfg, device=dev, progress=prog)
        return _save(args, "finetune", ds, res, info)
    if args.protocol in ("linear-probe", "knn", "retrieval"):
        return _feature_protocols(args, dev, prog)
    raise SystemExit(f"unknown protocol {args.protocol!r}")


def _extract(args, items, modality, weights, dev, prog):
    from .features import (AudioFeatures, AudioSettings, VideoFeatures, VideoSettings, extract_features)
    enc, info = _encoder(args, modality, weights)
    feat = VideoFeatures(enc) if modality == "video" else AudioFeatures(enc, "pool")
    f = extract_features(feat, items, modality, windows=args.windows,
                         audio=AudioSettings(clip_duration=args.clip_duration or 2.0),
                         video=VideoSettings(frames=args.frames, crop_size=args.crop_size or 112),
                         batch_size=args.batch_size or 32, device=dev, seed=args.seed,
                         num_workers=args.num_workers, cache_dir=args.cache_dir,
                         cache_tag={"w": info.get("sha256") or f"random-{args.seed}"}, progress=prog)
    return f, info


def _feature_protocols(args, dev, prog) -> int:
    from .media import load_items
    need_audio = args.modality == "audio" or args.mode in ("audio", "cross")
    tr, names = load_items(args.data, args.root, split=args.train_split, require_audio=need_audio)
    te, _ = load_items(args.data, args.root, split=args.test_split, classes=names, require_audio=need_audio)
    ds = _dataset_name(args, "custom")
    if args.protocol in ("linear-probe", "knn"):
        from .probe import knn_probe, linear_probe
        ftr, info = _extract(args, tr, args.modality, None, dev, prog)
        fte, _ = _extract(args, te, args.modality, None, dev, prog)
        r = linear_probe(ftr, fte, seed=args.seed) if args.protocol == "linear-probe" else \
            knn_probe(ftr, fte, k=args.k)
        r["mean"] = r["top1"]
        return _save(args, args.protocol.replace("-", "_") + f"_{args.modality}", ds, r, info)
    from .retrieval import class_retrieval, cross_modal_retrieval
    if args.mode in ("video", "audio"):
        ftr, info = _extract(args, tr, args.mode, None, dev, prog)
        fte, _ = _extract(args, te, args.mode, None, dev, prog)
        r = class_retrieval(fte, ftr)
        r["mean"] = r["R@1"]
        return _save(args, f"retrieval_{args.mode}", ds, r, info, metric="R@1")
    fv, info = _extract(args, te, "video", None, dev, prog)
    fa, _ = _extract(args, te, "audio", args.audio_weights, dev, prog)
    r = {"audio_to_video": cross_modal_retrieval(fa, fv), "video_to_audio": cross_modal_retrieval(fv, fa)}
    r["mean"] = (r["audio_to_video"]["R@1"] + r["video_to_audio"]["R@1"]) / 2
    return _save(args, "retrieval_cross", ds, r, info, metric="R@1 (a→v, v→a mean)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="crisscross evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
