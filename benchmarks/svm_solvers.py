"""The ESC protocol's SVM stage: the torch squared-hinge solver vs scikit-learn's LinearSVC, same features.

    python benchmarks/svm_solvers.py --features random --width 1 --crops 10 --threads 1 --cache-dir cache
    python benchmarks/svm_solvers.py --features logmel --crops 10 --threads 1
    python benchmarks/svm_solvers.py --features random --crops 100 --folds 1 --solvers torch --device cuda

Features are extracted once per setting exactly as `crisscross evaluate esc-svm` does (same cache keys, so a
CLI run with the same `--cache-dir` shares them): training crops with the training augmentation, 10 dense
test windows. Then, for each solver, the whole per-fold SVM stage (held-out C selection over the release's
grid, refit, best-C-on-test sweep) runs on the same features. One JSON line per figure: features (shapes,
seconds), one line per solver (mean accuracy, per fold, SVM seconds), and the comparison (speed-up, accuracy
difference in points). Speed-ups compare process CPU time (both solvers on the same number of threads,
one by default; liblinear is single-threaded): wall times on a shared machine depend on its load, which is
printed with each line (`loadavg`).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def emit(**kw):
    kw.setdefault("loadavg", round(os.getloadavg()[0], 2))
    print(json.dumps(kw), flush=True)


def main(argv=None) -> int:
    from crisscross_core.evaluate.features import (AudioFeatures, AudioSettings, LogMelStats, audio_train_transform,
                                                   extract_features, load_encoder)
    from crisscross_core.evaluate.media import load_items
    from crisscross_core.evaluate.svm import C_GRID, SVMConfig, svm_folds
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED / "esc10" / "esc10.csv"))
    p.add_argument("--features", default="random", choices=("random", "logmel"),
                   help="random: a random-init AudioResNet-18 (conv5x SVM features); logmel: log-mel mean/std")
    p.add_argument("--width", type=float, default=1.0, help="random encoder width (1 = paper size, 4608-d)")
    p.add_argument("--crops", type=int, default=10, help="training crops per recording (release: 100)")
    p.add_argument("--folds", default=None, help="comma-separated test folds (default: all)")
    p.add_argument("--solvers", default="torch,liblinear")
    p.add_argument("--tol", type=float, default=1e-4, help="torch solver tolerance")
    p.add_argument("--threads", type=int, default=1, help="torch threads (liblinear is single-threaded)")
    p.add_argument("--device", default="cpu", help="torch solver / feature device")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    items, _ = load_items(args.data)
    if args.features == "logmel":
        feat, scale = LogMelStats(), True
    else:
        enc, _ = load_encoder("random", "audio", width=args.width, seed=args.seed, device=args.device)
        feat, scale = AudioFeatures(enc, "conv5x"), False
    a = AudioSettings(clip_duration=2.0)
    common = dict(audio=a, batch_size=64, device=args.device, seed=args.seed, cache_dir=args.cache_dir,
                  cache_tag={"weights": "logmel-stats" if args.features == "logmel" else "random"},
                  progress=False, pad_to=5.0)
    t0 = time.perf_counter()
    train = extract_features(feat, items, "audio", crops=args.crops,
                             augment=audio_train_transform(a, device=args.device), **common)
    test = extract_features(feat, items, "audio", windows=10, **common)
    emit(bench="svm_solvers", figure="features", features=args.features, width=args.width, crops=args.crops,
         train_vectors=len(train.x), test_vectors=len(test.x), dim=int(train.x.shape[1]),
         seconds=round(time.perf_counter() - t0, 2), device=args.device)
    folds = tuple(args.folds.split(",")) if args.folds else None
    out = {}
    for solver in args.solvers.split(","):
        cfg = SVMConfig(clip_duration=2.0, train_crops=args.crops, c_grid=C_GRID, solver=solver, tol=args.tol,
                        scale_features=scale, folds=folds, seed=args.seed)
        t, c0 = time.perf_counter(), time.process_time()
        per = svm_folds(train, test, items, cfg, progress=False, device=args.device)
        dt, cpu = time.perf_counter() - t, time.process_time() - c0
        acc = [r["acc"] for r in per]
        out[solver] = (cpu, acc, per)
        emit(bench="svm_solvers", figure="svm_stage", solver=solver, features=args.features, width=args.width,
             crops=args.crops, dim=int(train.x.shape[1]), folds=[r["fold"] for r in per],
             mean_acc=round(100 * float(np.mean(acc)), 2), per_fold_acc=[round(100 * x, 2) for x in acc],
             mean_best_c_on_test=round(100 * float(np.mean([r["acc_best_c_on_test"] for r in per])), 2),
             chosen_c=[r["c"] for r in per], fits=sum(len(r.get("val_acc_by_c", {})) + len(r["test_acc_by_c"])
                                                     for r in per),
             not_converged_fits=sum(r["not_converged_fits"] for r in per), seconds=round(dt, 2),
             cpu_seconds=round(cpu, 2),
             threads=args.threads, device=args.device if solver == "torch" else "cpu")
    if "torch" in out and "liblinear" in out:
        (tt, at, _), (tl, al, _) = out["torch"], out["liblinear"]
        emit(bench="svm_solvers", figure="comparison", features=args.features, crops=args.crops,
             speedup_cpu_time=round(tl / tt, 1), torch_cpu_s=round(tt, 2), liblinear_cpu_s=round(tl, 2),
             accuracy_diff_points=round(100 * (float(np.mean(at)) - float(np.mean(al))), 2),
             per_fold_diff_points=[round(100 * (x - y), 2) for x, y in zip(at, al)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
