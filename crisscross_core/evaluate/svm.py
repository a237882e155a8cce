"""ESC-50 / ESC-10 linear SVM on frozen audio features, k-fold (docs/evaluation.md, "ESC linear SVM").

    res = run_svm(AudioFeatures(enc), items, SVMConfig(clip_duration=2.0), augment=audio_train_transform(...))

Per test fold: the training folds' recordings give `train_crops` augmented random crops each; the test
fold's recordings give `test_windows` evenly spaced windows over the whole recording. A one-vs-rest
squared-hinge linear SVM (LinearSVC's objective) is fitted for every C of the grid; decision scores are
averaged over a recording's windows. The reported number selects C on a held-out training fold
(`selection="heldout"`, default), then refits on all training folds. The release's "best C on the test
fold" is reported beside it as `acc_best_c_on_test` (test-set selection, optimistic).

Solvers: `solver="torch"` (default; linear_svm.SquaredHingeSVM, batched over classes, warm-started along
the C grid, CPU or CUDA) or `solver="liblinear"` (scikit-learn's LinearSVC(max_iter=1000) as released).
Both minimise the same objective; benchmarks/svm_solvers.py compares their time and accuracy.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..config import ConfigError
from ..data.manifest import ManifestError
from .features import AudioSettings, Features, extract_features
from .media import Item
from .progress import Ticker, say

C_GRID = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 1.0)   # the release's grid
SOLVERS = ("torch", "liblinear")


@dataclass
class SVMConfig:
    clip_duration: float = 2.0          # 2 or 5 (s)
    train_crops: int = 100              # augmented random crops per training recording (release: 100)
    test_windows: Optional[int] = None  # None: 10 for clips shorter than 5 s, else 1 (as released)
    recording_duration: Optional[float] = 5.0   # trim/pad every file to this (ESC: 5 s); None = as is
    legacy_test_crop: bool = False      # the release's 2 s test bug: first 2 s only
    c_grid: tuple = C_GRID
    selection: str = "heldout"          # "heldout" (C chosen on a held-out training fold), "test", "fixed"
    fixed_c: float = 1e-4               # used by selection="fixed"; esc50 readme's recommendation
    solver: str = "torch"               # "torch" (batched squared-hinge Newton) or "liblinear" (LinearSVC)
    tol: float = 1e-4                   # torch solver: stop at ||grad|| <= tol * ||grad at w=0|| per class
    max_iter: int = 1000                # liblinear: the release's LinearSVC(max_iter=1000)
    extend_grid: int = 0                # held-out C at an edge of the grid: try up to this many more C (×10)
    sweep_test: bool = True             # also fit every C on all training folds → best-C-on-test report
    scale_features: bool = False        # standardise with the training features' mean/std (release: off)
    folds: Optional[tuple] = None       # test folds to run (None = all)
    batch_size: int = 64
    seed: int = 0

    def windows(self) -> int:
        return self.test_windows or (10 if self.clip_duration < 5 else 1)

    def check(self) -> None:
        if self.solver not in SOLVERS:
            raise ConfigError(f"SVMConfig.solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.selection not in ("heldout", "fixed", "test"):
            raise ConfigError(f"SVMConfig.selection must be 'heldout', 'fixed' or 'test', got {self.selection!r}")
        if not self.c_grid or min(self.c_grid) <= 0:
            raise ConfigError(f"SVMConfig.c_grid must hold positive values, got {self.c_grid}")


def recording_accuracy(scores: np.ndarray, classes: np.ndarray, rid: np.ndarray, label: np.ndarray) -> float:
    """Average `scores [M, K]` over each recording's windows, argmax, compare with its label."""
    if scores.ndim == 1:                          # binary: one column, positive = classes[1]
        scores = np.stack([-scores, scores], 1)
    rids, inv = np.unique(rid, return_inverse=True)
    s = np.zeros((len(rids), scores.shape[1]))
    np.add.at(s, inv, scores)
    lab = np.zeros(len(rids), np.int64)
    lab[inv] = label
    return float((classes[s.argmax(1)] == lab).mean())


def _scaled(xtr: np.ndarray, xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardise both with the training mean/std (StandardScaler; zero std → 1)."""
    mu, sd = xtr.mean(0), xtr.std(0)
    sd[sd == 0] = 1.0
    return ((xtr - mu) / sd).astype(np.float32), ((xte - mu) / sd).astype(np.float32)


def _liblinear_fit(x, y, c, cfg: SVMConfig):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LinearSVC(C=c, max_iter=cfg.max_iter, random_state=cfg.seed).fit(x, y)
    return clf, any(issubclass(i.category, ConvergenceWarning) for i in w)


def sweep(tr: Features, te: Features, cfg: SVMConfig, grid, device="cpu",
          on_fit: Optional[Callable] = None) -> tuple[dict, int]:
    """Test-recording accuracy for each C in `grid`, fitted on `tr`. Returns ({C: acc}, fits not converged).

    `on_fit(c, acc)` is called after each fit (progress). The torch solver visits the grid in increasing
    C, each fit warm-started from the previous one.
    """
    xtr, xte = tr.x, te.x
    if cfg.scale_features:
        xtr, xte = _scaled(xtr, xte)
    accs, nc = {}, 0
    if not len(grid):
        return accs, nc
    if cfg.solver == "liblinear":
        for c in grid:
            clf, warned = _liblinear_fit(xtr, tr.label, c, cfg)
            nc += warned
            accs[c] = recording_accuracy(clf.decision_function(xte), clf.classes_, te.rid, te.label)
            if on_fit:
                on_fit(c, accs[c])
        return accs, nc
    from .linear_svm import as_tensor, fit_path
    dev = _solver_device(device)
    Xte = as_tensor(xte, dev)
    for c, svm in fit_path(xtr, tr.label, grid, device=dev, tol=cfg.tol):
        nc += svm.info.not_converged > 0
        accs[c] = recording_accuracy(svm.decision_function(Xte), svm.classes_, te.rid, te.label)
        if on_fit:
            on_fit(c, accs[c])
    return accs, nc


def _solver_device(device) -> str:
    import torch
    d = str(device or "cpu")
    return "cuda" if d == "auto" and torch.cuda.is_available() else ("cpu" if d == "auto" else d)


def fold_of(items: Sequence[Item]) -> dict:
    return {it.rid: it.fold for it in items}


def fold_split(train: Features, test: Features, items: Sequence[Item], fold: str) -> tuple[Features, Features]:
    """(training-fold crops, test-fold windows) for one test fold, selected by recording id.

    Raises if any test-fold recording id appears among the training features.
    """
    f = fold_of(items)
    tr = train.select(np.array([f[r] != fold for r in train.rid], bool))
    te = test.select(np.array([f[r] == fold for r in test.rid], bool))
    leak = set(tr.rid.tolist()) & set(te.rid.tolist())
    if leak:
        raise AssertionError(f"fold {fold}: test recordings {sorted(leak)[:5]} are in the training features")
    return tr, te


def grid_edge(c: float, acc_by_c: dict) -> Optional[str]:
    """'lowest' / 'highest' when `c` is at that end of the grid and scores strictly better than its
    neighbour (the best C may lie beyond the grid); None otherwise (inside, or a plateau reaching the edge)."""
    g = sorted(acc_by_c)
    if len(g) < 2 or c not in (g[0], g[-1]):
        return None
    nb = g[1] if c == g[0] else g[-2]
    if acc_by_c[c] <= acc_by_c[nb]:
        return None
    return "lowest" if c == g[0] else "highest"


def _select(acc_by_c: dict) -> float:
    """The C with the best accuracy; ties go to the smaller C."""
    return max(sorted(acc_by_c), key=lambda c: acc_by_c[c])


def svm_folds(train: Features, test: Features, items: Sequence[Item], cfg: SVMConfig,
              progress: bool = True, device="cpu") -> list[dict]:
    """Run the k-fold SVM on precomputed features (train crops and test windows of every recording)."""
    cfg.check()
    fold = fold_of(items)
    folds = sorted({f for f in fold.values()}, key=lambda f: (len(f), f))
    if len(folds) < 2:
        raise ManifestError(f"SVM protocol needs ≥ 2 folds in the manifest's 'fold' column, got {folds}")
    if cfg.selection == "heldout" and len(folds) < 3:
        raise ConfigError(f"held-out C selection needs at least 3 folds (one to test, one to choose C, the rest "
                          f"to train), the manifest has {len(folds)}; use --selection fixed (or test)")
    run = [str(f) for f in (cfg.folds or folds)]
    for f in run:
        if f not in folds:
            raise ManifestError(f"test fold {f!r} not in the manifest's folds {folds}")
    te_fold = np.array([fold[r] for r in test.rid])
    grid = sorted(cfg.c_grid)
    sweep_test = cfg.sweep_test or cfg.selection == "test"
    per_fold = len(grid) * (cfg.selection == "heldout") + (len(grid) if sweep_test else 1)
    tick = Ticker("svm", per_fold * len(run), progress)
    out = []
    for n, f in enumerate(run, 1):
        t0 = time.time()
        tr, te = fold_split(train, test, items, f)
        rec = {"fold": f, "n_train_recordings": int(len(np.unique(tr.rid))), "n_train_vectors": len(tr.x),
               "n_test_recordings": int(len(np.unique(te.rid))), "n_test_vectors": len(te.x),
               "solver": cfg.solver}
        nc, chosen, used = 0, cfg.fixed_c, list(grid)
        where = f"fold {f} ({n}/{len(run)})"
        if cfg.selection == "heldout":
            others = [g for g in folds if g != f]
            val = next((g for g in others if (len(g), g) > (len(f), f)), others[0])
            trf = np.array([fold[r] for r in tr.rid])
            tr_val, te_val = tr.select(trf != val), test.select(te_fold == val)
            # held-out training fold: fitted without it, scored on its clean test-style windows
            val_acc, nc = sweep(tr_val, te_val, cfg, used, device,
                                lambda c, a: tick.step(f"{where} held-out fold {val}: C={c:g} val acc {a:.3f}"))
            chosen = _select(val_acc)
            for _ in range(cfg.extend_grid):     # chosen C at an edge: look one decade further
                edge = grid_edge(chosen, val_acc)
                if edge is None:
                    break
                new = used[-1] * 10 if edge == "highest" else used[0] / 10
                tick.add(1 + sweep_test)
                more, nc2 = sweep(tr_val, te_val, cfg, [new], device,
                                  lambda c, a: tick.step(f"{where} extended grid: C={c:g} val acc {a:.3f}"))
                val_acc.update(more)
                nc += nc2
                used = sorted(used + [new])
                chosen = _select(val_acc)
            rec.update(val_fold=val, val_acc_by_c={str(c): a for c, a in sorted(val_acc.items())})
        fit_grid = list(used) if sweep_test else []
        if cfg.selection != "test" and chosen not in fit_grid:
            tick.add(len(fit_grid) + 1 - (len(grid) if sweep_test else 1))
            fit_grid = sorted(fit_grid + [chosen])
        by_c, nc2 = sweep(tr, te, cfg, fit_grid, device,
                          lambda c, a: tick.step(f"{where} all training folds: C={c:g} test acc {a:.3f}"))
        nc += nc2
        if sweep_test:
            rec["test_acc_by_c"] = {str(c): by_c[c] for c in used}
            best_c = _select(by_c)
            rec["acc_best_c_on_test"], rec["best_c_on_test"] = by_c[best_c], best_c
            if cfg.selection == "test":
                chosen = best_c
        rec.update(c=chosen, acc=by_c[chosen], not_converged_fits=nc, c_grid_used=used,
                   seconds=round(time.time() - t0, 2))
        scores = rec.get("val_acc_by_c") if cfg.selection == "heldout" else rec.get("test_acc_by_c")
        edge = grid_edge(chosen, {float(c): a for c, a in scores.items()}) if scores else None
        if edge:
            rec["c_at_grid_edge"] = edge
            say("svm", f"warning: fold {f}: the chosen C={chosen:g} is the {edge} value of the grid "
                       f"{[float(f'{c:g}') for c in used]}; a {'larger' if edge == 'highest' else 'smaller'} C "
                       f"may be better (--extend-grid N tries up to N more values beyond the edge)")
        out.append(rec)
        say("svm", f"fold {f}: acc {rec['acc']:.4f} (C={chosen:g}, {cfg.selection})"
            + (f"; best-C-on-test {rec['acc_best_c_on_test']:.4f} (C={rec['best_c_on_test']:g})"
               if sweep_test else ""))          # a result, not progress: printed with --no-progress too
    return out


def run_svm(featurizer: Callable, items: Sequence[Item], cfg: SVMConfig, augment: Optional[Callable] = None,
            audio: Optional[AudioSettings] = None, device="cpu", cache_dir=None, cache_tag=None,
            num_workers: int = 0, progress: bool = True, keep_features: bool = False,
            on_error: str = "skip") -> dict:
    """Whole protocol: extract train crops + test windows once per recording, then the per-fold SVMs.

    A recording's features do not depend on which fold is tested (frozen encoder), so each recording is
    featurised once; fold membership is applied by recording id afterwards (and asserted leak-free).
    Recordings that fail to decode are skipped (`on_error="skip"`) and listed in `failed`.
    Returns {"config", "per_fold", "mean", "std", "mean_best_c_on_test", "std_best_c_on_test", "folds_run",
    "folds_total", "partial", "failed", "timing"} (+ "features": (train, test) when keep_features).
    """
    cfg.check()
    a = audio or AudioSettings()
    a = AudioSettings(**{**asdict(a), "clip_duration": cfg.clip_duration})
    t0, c0 = time.time(), time.process_time()
    common = dict(audio=a, batch_size=cfg.batch_size, device=device, seed=cfg.seed, cache_dir=cache_dir,
                  cache_tag=cache_tag, num_workers=num_workers, progress=progress,
                  pad_to=cfg.recording_duration, on_error=on_error)
    train = extract_features(featurizer, items, "audio", crops=cfg.train_crops, augment=augment, **common)
    test = extract_features(featurizer, items, "audio", windows=cfg.windows(),
                            legacy_test_crop=cfg.legacy_test_crop, **common)
    failed = {f["rid"]: f for f in train.meta.get("failed", []) + test.meta.get("failed", [])}
    if failed:   # a recording must have both its training crops and its test windows
        keep = np.array(sorted(set(train.rid.tolist()) & set(test.rid.tolist())))
        train, test = train.select(np.isin(train.rid, keep)), test.select(np.isin(test.rid, keep))
        items = [it for it in items if it.rid not in failed]
    t1, c1 = time.time(), time.process_time()
    per_fold = svm_folds(train, test, items, cfg, progress, device)
    acc = np.array([r["acc"] for r in per_fold])
    orc = np.array([r.get("acc_best_c_on_test", np.nan) for r in per_fold])
    folds_total = len({it.fold for it in items})
    edges = [r["fold"] for r in per_fold if r.get("c_at_grid_edge")]
    res = {"config": asdict(cfg), "per_fold": per_fold, "mean": float(acc.mean()), "std": float(acc.std()),
           "mean_best_c_on_test": None if np.isnan(orc).any() else float(orc.mean()),
           "std_best_c_on_test": None if np.isnan(orc).any() else float(orc.std()),
           "feature_dim": int(train.x.shape[1]), "folds_run": [r["fold"] for r in per_fold],
           "folds_total": folds_total, "partial": len(per_fold) < folds_total,
           "crops": cfg.train_crops, "windows": cfg.windows(), "seed": cfg.seed, "solver": cfg.solver,
           "failed": sorted(failed.values(), key=lambda f: f["rid"]),
           "warnings": [f"chosen C at an edge of the grid in fold(s) {', '.join(edges)}"] if edges else [],
           "timing": {"features_s": round(t1 - t0, 2), "svm_s": round(time.time() - t1, 2),
                      "features_cpu_s": round(c1 - c0, 2), "svm_cpu_s": round(time.process_time() - c1, 2)}}
    if keep_features:
        res["features"] = (train, test)
    return res
