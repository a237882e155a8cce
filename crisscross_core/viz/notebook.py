"""Notebook plumbing: small mode, work paths, data sources, cluster choice, a run's config and model.

    SMALL = small_mode()                       # $CRISSCROSS_NB_SMALL (CI's tiny mode)
    paths = nb_paths()                         # repo, ../shared/data, work dir, demo dir, run dir
    manifest = demo_manifest(paths["demo"], small=SMALL)
    model, note = load_model(run_dir, run_config(run_dir))   # random init (with a note) without a run
    cluster, why = pick_cluster("auto")        # loopback Slurm when it answers, else submitit "local"

Everything here composes core functions (data.synthetic, data.manifest, checkpoint, evaluate, launch);
the widgets the notebooks show are in viz/pairings.py, viz/embeddings.py and viz/retrieval_browser.py.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

SMALL_ENV = "CRISSCROSS_NB_SMALL"
WORKDIR_ENV = "CRISSCROSS_NB_WORKDIR"

# ----------------------------------------------------------------------------- notebook environment

def small_mode() -> bool:
    """True when `CRISSCROSS_NB_SMALL` is set to anything but "", "0", "false" (CI's tiny mode)."""
    return os.environ.get(SMALL_ENV, "").strip().lower() not in ("", "0", "false", "no")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def nb_paths() -> dict:
    """Where notebooks read and write: repo, shared data (`../shared/data` beside the repo), a work dir.

    work dir: `$CRISSCROSS_NB_WORKDIR`, else `<repo>/runs/notebooks` (gitignored). Notebooks 03-05
    look for the checkpoint 00 writes at `work/"nb_small"` (small mode) or `work/"quickstart"`.
    """
    repo = repo_root()
    work = Path(os.environ.get(WORKDIR_ENV) or repo / "runs" / "notebooks").resolve()   # created by writers
    return {"repo": repo, "shared": repo.parent / "shared" / "data", "work": work,
            "demo": work / "demo_data", "run": work / ("nb_small" if small_mode() else "quickstart")}


DEMO_ENV = "CRISSCROSS_NB_DEMO_MANIFEST"
SMALL_DEMO = (32, 16)              # train / test clips of the small-mode demo data


def demo_manifest(out_dir: str | Path, small: bool = False) -> Path:
    """The embedded demo dataset's manifest (crisscross_core.data.synthetic.make_demo_dataset), written
    into `out_dir/{full,small}` on first use and reused afterwards.

    small=True: the few-clip variant CI uses (32 train / 16 test clips). `$CRISSCROSS_NB_DEMO_MANIFEST`
    names an existing manifest to use instead.
    """
    if os.environ.get(DEMO_ENV):
        return Path(os.environ[DEMO_ENV])
    from crisscross_core.data.synthetic import make_demo_dataset
    if small:
        return make_demo_dataset(Path(out_dir) / "small", n_train=SMALL_DEMO[0], n_test=SMALL_DEMO[1], workers=2)
    return make_demo_dataset(Path(out_dir) / "full", workers=min(8, os.cpu_count() or 1), progress=True)


def folder_manifest(root: str | Path, out: str | Path, workers: int = 1) -> Path:
    """A kit manifest (crisscross_core.data.manifest) for a plain folder of media files; cached at `out`."""
    from crisscross_core.data.builders import folder
    from crisscross_core.data.manifest import build_manifest, write_manifest
    out = Path(out)
    if out.is_file():
        return out
    rows, _health = build_manifest(folder(root), root, workers=workers, progress=False, use_threads=True)
    return write_manifest(rows, out, meta={"dataset": "folder", "root": str(Path(root).resolve())})


def pick_pairing_source(manifest: str | Path | None = None, demo_manifest: Optional[Callable[[], Path]] = None,
                        work: Optional[Path] = None) -> tuple[Path, str]:
    """(manifest path, where it came from): the user's manifest, else `../shared/data/clips`, else demo data.

    `demo_manifest`: a callable building the demo data and returning its manifest (only called when needed).
    """
    if manifest:
        p = Path(manifest)
        if not p.is_file():
            raise FileNotFoundError(f"manifest {p} does not exist (leave MANIFEST empty to use the shared "
                                    "clips or the demo data)")
        return p, "your manifest"
    paths = nb_paths()
    clips = paths["shared"] / "clips"
    if clips.is_dir() and any(clips.iterdir()):
        kit = paths["repo"] / "data_manifests" / "shared_clips.csv"     # labelled, versioned with the kit
        if kit.is_file():
            return kit, str(clips)
        return folder_manifest(clips, (work or paths["work"]) / "shared_clips_manifest.csv"), str(clips)
    if demo_manifest is None:
        raise FileNotFoundError(f"no manifest given, no {clips}, and no demo builder passed")
    return Path(demo_manifest()), "demo data"


# ----------------------------------------------------------------------------- clusters

def pick_cluster(profile: str = "auto", loopback: str = "loopback", timeout: float = 5.0) -> tuple[str, str]:
    """(cluster for launch.submit, why). "auto": the `loopback` Slurm profile when `sbatch` is on PATH
    and `sinfo` answers with that profile's environment (SLURM_CONF), else "local" (submitit's
    LocalExecutor: subprocesses on this machine). Any other value is returned as given.
    """
    import shutil
    import subprocess
    if profile != "auto":
        return profile, "chosen"
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "local", "no Slurm on PATH (sbatch/sinfo missing): submitit LocalExecutor"
    env = dict(os.environ)
    try:
        from crisscross_core.launch import load_profile
        for k, v in (load_profile(loopback).get("env") or {}).items():
            env.setdefault(str(k), str(v))
    except Exception as e:  # noqa: BLE001 - a missing profile just means "use local"
        return "local", f"profile {loopback!r} unusable ({e}): submitit LocalExecutor"
    conf = env.get("SLURM_CONF")
    if conf and not Path(conf).is_file():   # sinfo would retry for a minute
        return "local", f"SLURM_CONF {conf} does not exist (cluster not started): submitit LocalExecutor"
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "local", f"sinfo did not answer ({e}): submitit LocalExecutor"
    states = r.stdout.split()
    if r.returncode != 0 or not any(s.startswith("idle") or s.startswith("mix") or s.startswith("alloc")
                                    for s in states):
        return "local", f"sinfo: no usable nodes ({(r.stderr or r.stdout).strip()[:120]}): submitit LocalExecutor"
    return loopback, f"Slurm answers (nodes: {' '.join(states)})"


# ----------------------------------------------------------------------------- a run's config and model

def run_config(run_dir: str | Path | None, preset: str = "tiny_cpu"):
    """The Config a run was trained with (`<run_dir>/config.yaml`), else the preset's."""
    from crisscross_core.config import load_config
    p = Path(run_dir) / "config.yaml" if run_dir else None
    return load_config(p if p is not None and p.is_file() else preset)


def exported_weights(run_dir: str | Path | None) -> dict:
    """{"video": path | None, "audio": path | None}: a run's exported `vid_/aud_crisscross_*` backbones."""
    from crisscross_core.evaluate.features import resolve_weights
    out = {}
    for m in ("video", "audio"):
        try:
            out[m] = str(resolve_weights(run_dir, m)) if run_dir and Path(run_dir).is_dir() else None
        except FileNotFoundError:
            out[m] = None
    return out


def load_model(run_dir: str | Path | None, cfg, seed: int = 0):
    """(CrissCross in eval mode, note): the run's `<run_dir>/checkpoint.pt`, else random init of
    cfg.model's size (seeded), with a note saying which, for the notebooks to print.

    Embed items with `crisscross_core.demo.embed_split(model, cfg, items, windows)`: per modality the
    backbone features "h", projections "z" and predictions "p" from one pass.
    """
    from crisscross_core.checkpoint import load_run_model
    model, step = load_run_model(cfg.model, run_dir, seed=seed)
    if step is not None:
        note = f"pretrained: `{Path(run_dir) / 'checkpoint.pt'}` (step {step})"
    else:
        note = (f"**random init** — no checkpoint in {run_dir or '(no run dir)'}; "
                "run notebook 00 first for pretrained encoders")
    return model.eval(), note


def explorer_inputs(manifest: str = "", run_dir: str = "", max_items: int | None = None,
                    small: bool = False) -> tuple:
    """(run_dir, manifest, cfg, items, classes) for the explorer notebooks: the given manifest and
    run, else the demo data and the run notebook 00 wrote; clips with audio, the first `max_items`."""
    from crisscross_core.evaluate.media import load_items
    paths = nb_paths()
    run_dir = run_dir or paths["run"]
    manifest = manifest or demo_manifest(paths["demo"], small=small)
    items, classes = load_items(manifest, require_audio=True)
    return run_dir, manifest, run_config(run_dir), items[:max_items], classes


def query_gallery(items) -> tuple[list, list]:
    """Split labelled items into (queries, gallery): the "test" split queries the rest (spec §9.4);
    without split tags, every other item (by row id) is a query."""
    test = [i for i, it in enumerate(items) if "test" in it.split.split()]
    if not test or len(test) == len(items):
        test = list(range(1, len(items), 2))
    ts = set(test)
    return test, [i for i in range(len(items)) if i not in ts]
