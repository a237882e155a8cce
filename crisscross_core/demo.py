"""The main job on the embedded demo data: build it, pretrain `tiny_cpu`, evaluate, report.

    crisscross demo --out demo_out                 # what `make demo` runs
    crisscross demo --out demo_out optim.epochs=2  # any config override

Evaluation compares the pretrained encoders with the *same architecture at random init*, on
held-out demo clips: a linear probe per modality on pooled backbone features (several windows per
clip), and cross-modal retrieval in the shared head space (audio→video: the audio predictor's
output p_a queries the video projections z_v, which is what the loss aligns; video→audio
likewise). Writes `report.json`, `loss_curves.png`, `collapse.png`, `probe.png`, `retrieval.png`,
`umap.png`.

Reproducible on the same kind of machine (docs/demo.md): the data files are the same bytes
everywhere; training and evaluation run with one torch thread (`train.cpu_threads=1`, overridable)
and one BLAS thread, because the thread count changes floating-point summation order and with it
every number. `report.json` records what the numbers depend on ("reproducibility": threads, CPU
kernel level, library versions) and fingerprints of the data, the checkpoint and the features, so
two runs can be compared exactly.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_run_model
from .config import Config, load_config
from .data.synthetic import NUM_CLASSES, make_demo_dataset
from .distributed import usable_cores
from .models.crisscross import CrissCross

DEMO_CLIPS = {"n_train": 800, "n_test": 200}
# online evaluation of the held-out clips while pretraining (never changes the training stream);
# every 50 of the 600 steps costs ~1 % of the pretraining time (benchmarks/online_eval.py)
def online_eval_overrides(manifest) -> list[str]:
    return [f"eval.manifest={manifest}", "eval.split=test", "eval.every=50"]
PROBE_WINDOWS = 4
PINNED = ["train.cpu_threads=1"]   # before the user's overrides, which may change it


def _md5_files(paths) -> str:
    h = hashlib.md5()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def _md5_state(state: dict) -> str:
    h = hashlib.md5()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _load_thread_pools() -> None:
    """Import the libraries that bring BLAS/OpenMP thread pools to the evaluation, so that
    `threadpool_limits` (which limits the pools loaded when it is entered) reaches them all."""
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    try:
        import faiss  # noqa: F401
    except ImportError:
        pass


def environment() -> dict:
    """What the demo's numbers depend on besides the code: threads, CPU kernel level, versions."""
    import av
    import numpy as np
    import sklearn
    from threadpoolctl import threadpool_info
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "blas_threads": sorted({i["num_threads"] for i in threadpool_info()}),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "machine": platform.machine(),
            "cores": usable_cores(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "sklearn": sklearn.__version__,
            "av": av.__version__}


class _Embed(nn.Module):
    """One pass, three spaces: `[B, *] → [B, D_backbone + 2·D_head]` = [h | z | p]."""

    def __init__(self, backbone, projector, predictor):
        super().__init__()
        self.backbone, self.projector, self.predictor = backbone, projector, predictor

    def forward(self, x):
        h = self.backbone(x)
        z = self.projector(h)
        return torch.cat([h, z, self.predictor(z)], dim=1)


def _split(feats, widths: dict):
    """Features with x = [h | z | p] → {"h": Features, "z": ..., "p": ...}."""
    out, lo = {}, 0
    for name, w in widths.items():
        out[name] = dataclasses.replace(feats, x=feats.x[:, lo:lo + w])
        lo += w
    return out


def embed_split(model: CrissCross, cfg: Config, items, windows: int = PROBE_WINDOWS) -> dict:
    """{modality: {"h"|"z"|"p": Features}} for `items` (dense windows, eval transforms)."""
    from .evaluate.features import extract_features, settings_for
    v, a = settings_for(cfg)
    out = {}
    for modality, prefix in (("video", "video"), ("audio", "audio")):
        net = _Embed(getattr(model, f"{prefix}_backbone"), getattr(model, f"{prefix}_projector"),
                     getattr(model, f"{prefix}_predictor"))
        feats = extract_features(net, items, modality, windows=windows, audio=a, video=v,
                                 batch_size=64, progress=False)
        hd = getattr(model, f"{prefix}_backbone").output_dim
        out[modality] = _split(feats, {"h": hd, "z": cfg.model.proj_dim, "p": cfg.model.proj_dim})
    return out


def evaluate_model(model: CrissCross, cfg: Config, train_items, test_items) -> dict:
    """Linear probes per modality (train→test clips) and cross-modal retrieval on the test clips."""
    from .evaluate.probe import linear_probe
    from .evaluate.retrieval import cross_modal_retrieval
    model.eval()
    tr, te = embed_split(model, cfg, train_items), embed_split(model, cfg, test_items)
    res = {f"probe_{m}": linear_probe(tr[m]["h"], te[m]["h"])["top1"] for m in ("video", "audio")}
    a2v = cross_modal_retrieval(te["audio"]["p"], te["video"]["z"], ks=(1, 5, 10))
    v2a = cross_modal_retrieval(te["video"]["p"], te["audio"]["z"], ks=(1, 5, 10))
    res.update({f"a2v_{k}": a2v[k] for k in ("R@1", "R@5", "R@10")})
    res.update({f"v2a_{k}": v2a[k] for k in ("R@1", "R@5", "R@10")})
    res["retrieval_chance_r1"] = a2v["chance_r1"]
    res.update({"a2v_class@1": a2v["class_at_1"], "v2a_class@1": v2a["class_at_1"]})
    res["_test_backbone"] = {m: te[m]["h"].per_item() for m in ("video", "audio")}
    return res


def write_figures(out: Path, run_dir: Path, results: dict, classes: list[str]) -> list[str]:
    num_classes = len(classes)
    from .runlog import read_metrics
    from .viz import plots
    records = read_metrics(run_dir)
    evals = read_metrics(run_dir, kind="eval")
    figs = {
        "loss_curves.png": plots.loss_curves(records, title="demo pretraining (tiny_cpu)"),
        "collapse.png": plots.collapse_curves(records, title="demo pretraining: collapse monitors"),
        "probe.png": plots.grouped_bars(
            {m: {k: results[k][f"probe_{m}"] for k in ("random init", "pretrained")} for m in ("video", "audio")},
            "linear-probe top-1 (held-out clips)", "linear probe per modality", chance=1 / num_classes),
        "retrieval.png": plots.grouped_bars(
            {d: {k: results[k][f"{d}_R@1"] for k in ("random init", "pretrained")} for d in ("a2v", "v2a")},
            "Recall@1 (held-out clips)", "cross-modal retrieval",
            chance=results["pretrained"]["retrieval_chance_r1"]),
    }
    if evals:
        figs["online_eval.png"] = plots.online_curves(evals, title="demo: online evaluation")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, m in zip(axes, ("video", "audio")):
        f = results["_backbone"][m]
        names = [classes[i] for i in f.label]
        plots.scatter_2d(plots.umap_2d(f.x), names, f"UMAP of pretrained {m} features (test clips)", ax=ax)
    figs["umap.png"] = fig
    for name, fig in figs.items():
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    return list(figs)


def summary_table(results: dict, num_classes: int) -> str:
    rows = [("linear probe, video", "probe_video", 1 / num_classes),
            ("linear probe, audio", "probe_audio", 1 / num_classes),
            ("retrieval a→v R@1", "a2v_R@1", results["pretrained"]["retrieval_chance_r1"]),
            ("retrieval v→a R@1", "v2a_R@1", results["pretrained"]["retrieval_chance_r1"]),
            ("retrieval a→v R@5", "a2v_R@5", None), ("retrieval v→a R@5", "v2a_R@5", None),
            ("a→v top-1 same class", "a2v_class@1", 1 / num_classes),
            ("v→a top-1 same class", "v2a_class@1", 1 / num_classes)]
    lines = [f"{'measure':<22}{'random init':>12}{'pretrained':>12}{'gain':>9}{'chance':>9}"]
    for label, key, chance in rows:
        r, p = results["random init"][key], results["pretrained"][key]
        lines.append(f"{label:<22}{r:>12.3f}{p:>12.3f}{p - r:>+9.3f}"
                     + (f"{chance:>9.3f}" if chance else f"{'':>9}"))
    return "\n".join(lines)


def run_demo(out: str | Path = "demo_out", overrides: list[str] | None = None,
             n_train: int = DEMO_CLIPS["n_train"], n_test: int = DEMO_CLIPS["n_test"],
             num_classes: int = NUM_CLASSES) -> dict:
    """Build the demo data, pretrain `tiny_cpu`, evaluate against random init; returns the report."""
    from .evaluate.media import load_items
    from .train import train
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    t0 = time.perf_counter()
    manifest = make_demo_dataset(out / "data", n_train=n_train, n_test=n_test, seed=0,
                                 num_classes=num_classes, progress=True)
    timings["data_s"] = time.perf_counter() - t0

    run_dir = out / "run"
    cfg = load_config("tiny_cpu", [f"data.manifest={manifest}", f"train.run_dir={run_dir}", *PINNED,
                                   *online_eval_overrides(manifest), *(overrides or [])])
    t1 = time.perf_counter()
    summary = train(cfg)                 # sets the torch threads (train.cpu_threads) for the whole run
    timings["pretrain_s"] = time.perf_counter() - t1

    from threadpoolctl import threadpool_limits
    t2 = time.perf_counter()
    train_items, classes = load_items(manifest, split="train")
    test_items, _ = load_items(manifest, split="test", classes=classes)
    random_init, _ = load_run_model(cfg.model, None, seed=cfg.train.seed)
    pretrained, _ = load_run_model(cfg.model, run_dir)
    _load_thread_pools()
    with threadpool_limits(limits=1):    # BLAS / OpenMP of the probes and the search: one thread
        results = {"random init": evaluate_model(random_init, cfg, train_items, test_items),
                   "pretrained": evaluate_model(pretrained, cfg, train_items, test_items)}
        env = environment()              # the pools as they were during the evaluation
    results["_backbone"] = results["pretrained"].pop("_test_backbone")
    results["random init"].pop("_test_backbone")
    timings["evaluate_s"] = time.perf_counter() - t2
    figures = write_figures(out, run_dir, results, classes)
    timings["total_s"] = time.perf_counter() - t0

    from .runlog import read_metrics
    evals = read_metrics(run_dir, kind="eval")
    online = {"every": cfg.eval.every, "n_items": evals[-1]["n_items"] if evals else 0,
              "trajectory": [{k: e[k] for k in ("step", "knn_video", "knn_audio", "r1_a2v", "r1_v2a", "chance_r1",
                                                "sync_cos", "async_cos", "sync_gap") if k in e} for e in evals],
              "seconds": round(sum(e["seconds"] for e in evals), 2),
              "fraction_of_pretraining": round(sum(e["seconds"] for e in evals) / max(timings["pretrain_s"], 1e-9), 4)}
    gains = {m: results["pretrained"][f"probe_{m}"] - results["random init"][f"probe_{m}"]
             for m in ("video", "audio")}
    chance = results["pretrained"]["retrieval_chance_r1"]
    report = {
        "config": "tiny_cpu", "overrides": overrides or [], "manifest": str(manifest),
        "n_train": len(train_items), "n_test": len(test_items), "classes": classes,
        "random_init": results["random init"], "pretrained": results["pretrained"],
        "probe_gain_points": {m: round(100 * g, 1) for m, g in gains.items()},
        "retrieval_r1_over_chance": {d: results["pretrained"][f"{d}_R@1"] / chance for d in ("a2v", "v2a")},
        "online_eval": online,
        "steps": summary["step"], "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "figures": figures, "run_dir": str(run_dir),
        "reproducibility": {
            **env,
            "data_md5": _md5_files([manifest] + sorted((out / "data").glob("*/*.mp4"))),
            "checkpoint_model_md5": _md5_state(pretrained.state_dict()),
            "test_features_md5": hashlib.md5(b"".join(results["_backbone"][m].x.tobytes()
                                                      for m in ("video", "audio"))).hexdigest(),
        },
    }
    report["targets_met"] = {
        "probe_gain_ge_15_points_each_modality": all(g >= 0.15 for g in gains.values()),
        "retrieval_r1_ge_5x_chance": all(v >= 5 for v in report["retrieval_r1_over_chance"].values()),
        "total_le_10_min": timings["total_s"] <= 600,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if cfg.wandb.enabled:                # the figures join the run's W&B run
        from .tracking import log_figures
        log_figures(cfg, run_dir, {f: out / f for f in figures}, summary["step"])
    print("\n" + summary_table(results, len(classes)))
    print(f"\nprobe gain (points): {report['probe_gain_points']}   "
          f"R@1 / chance: { {k: round(v, 1) for k, v in report['retrieval_r1_over_chance'].items()} }")
    if evals:
        print(f"\nonline evaluation of the {online['n_items']} held-out clips every {online['every']} steps "
              f"(kNN top-1 video / audio, R@1 a→v / v→a, sync − async cosine):")
        for e in online["trajectory"]:
            print(f"  step {e['step']:>4}: kNN {100 * e.get('knn_video', float('nan')):5.1f} / "
                  f"{100 * e.get('knn_audio', float('nan')):5.1f} %   R@1 {100 * e['r1_a2v']:4.1f} / "
                  f"{100 * e['r1_v2a']:4.1f} % (chance {100 * e['chance_r1']:.1f})   gap {e['sync_gap']:+.3f}")
        print(f"  cost: {online['seconds']} s, {100 * online['fraction_of_pretraining']:.1f} % of the pretraining time")
    print(f"time: {report['timings_s']}   targets met: {report['targets_met']}")
    print(f"report: {out / 'report.json'}; figures: {', '.join(figures)}")
    return report


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="demo_out", help="output folder (data, run, report)")
    parser.add_argument("--n-train", type=int, default=DEMO_CLIPS["n_train"])
    parser.add_argument("--n-test", type=int, default=DEMO_CLIPS["n_test"])
    parser.add_argument("--num-classes", type=int, default=NUM_CLASSES, help="demo classes (2..12)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a demo target is missed (the report says which)")
    parser.add_argument("overrides", nargs="*", help="config overrides for tiny_cpu, e.g. optim.epochs=2")


def run(args) -> int:
    report = run_demo(args.out, args.overrides, args.n_train, args.n_test, args.num_classes)
    return 1 if args.strict and not all(report["targets_met"].values()) else 0
