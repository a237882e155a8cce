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

import math
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


def nb_paths(small: Optional[bool] = None) -> dict:
    """Where notebooks read and write: repo, shared data (`../shared/data` beside the repo), a work dir.

    work dir: `$CRISSCROSS_NB_WORKDIR`, else `<repo>/runs/notebooks` (gitignored). Notebooks 03-05
    look for the checkpoint 00 writes at `work/"nb_small"` (small mode) or `work/"quickstart"`.
    small: the notebook's SMALL (None = from `$CRISSCROSS_NB_SMALL`), so SMALL=False in a notebook
    means the full run even where the variable is set.
    """
    small = small_mode() if small is None else bool(small)
    repo = repo_root()
    work = Path(os.environ.get(WORKDIR_ENV) or repo / "runs" / "notebooks").resolve()   # created by writers
    return {"repo": repo, "shared": repo.parent / "shared" / "data", "work": work,
            "demo": work / "demo_data", "run": work / ("nb_small" if small else "quickstart")}


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

def local_parallelism(n_runs: int, gb_per_run: float = 2.0, cores: Optional[int] = None,
                      avail_gb: Optional[float] = None) -> tuple[int, str]:
    """(runs at once, why) for runs of one torch thread and no data worker each on this machine: one
    per core this process may use, no more than the available memory holds at `gb_per_run` (a
    `tiny_cpu` run peaks at ~1 GB resident), no more than there are runs. cores / avail_gb: this
    machine's when None (/proc/meminfo's MemAvailable; elsewhere the cores decide)."""
    if cores is None:
        from crisscross_core.distributed import usable_cores
        cores = usable_cores()
    if avail_gb is None:
        try:
            with open("/proc/meminfo") as f:
                avail_gb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable")) / 2 ** 20
        except (OSError, StopIteration, ValueError):
            avail_gb = math.inf
    by_memory = cores if math.isinf(avail_gb) else int(avail_gb // gb_per_run)
    n = max(1, min(cores, by_memory, n_runs))
    mem = "memory not known" if math.isinf(avail_gb) else f"{avail_gb:.0f} GB available"
    return n, f"{n} at once, one core each: {cores} cores, {mem}, {gb_per_run:g} GB per run"


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
    """(CrissCross in eval mode, note): `<run_dir>/checkpoint.pt`, or -- only for run_dir None / "random" --
    a seeded random init of cfg.model's size (a baseline), with a note saying which, for the notebooks
    to print. A run directory without a checkpoint is an error (never a silent random model).

    Embed items with `crisscross_core.demo.embed_split(model, cfg, items, windows)`: per modality the
    backbone features "h", projections "z" and predictions "p" from one pass.
    """
    from crisscross_core.checkpoint import load_run_model
    if run_dir in (None, "", "random"):
        model, _ = load_run_model(cfg.model, None, seed=seed)
        return model.eval(), f"random init (seed {seed}, the run's architecture)"
    if not (Path(run_dir) / "checkpoint.pt").is_file():
        raise FileNotFoundError(f"no checkpoint.pt in {run_dir}: run notebook 00 (or train) first, or pass "
                                "another run directory")
    model, step = load_run_model(cfg.model, run_dir, seed=seed)
    return model.eval(), f"pretrained `{Path(run_dir) / 'checkpoint.pt'}` (step {step})"


# ----------------------------------------------------------------------------- any weights, any media

WEIGHTS_HELP = ("a run directory, a checkpoint.pt, a released or exported vid_/aud_ file (.pth.tar, .zip, "
                ".safetensors), an embeddings directory of `crisscross embed`, or 'random'")


def media_source(media: str | Path = "", small: bool = False) -> tuple[Path, str]:
    """(source, description) for `crisscross embed`: MEDIA as given -- a folder of media files (labels
    from class folders), a manifest (.csv) or one media file -- else the demo data (built on first use)."""
    if media:
        p = Path(media).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"MEDIA {p} does not exist (a folder of videos, a manifest .csv or a media "
                                    "file; leave it empty for the demo data)")
        kind = "folder" if p.is_dir() else "manifest" if p.suffix.lower() in (".csv", ".tsv", ".txt") else "file"
        return p, f"your {kind} `{p}`"
    return Path(demo_manifest(nb_paths()["demo"], small=small)), "the demo data"


def weights_source(weights: str | Path = "", small: Optional[bool] = None) -> str:
    """WEIGHTS as given (checked to exist), "random", or "" = the run notebook 00 wrote -- an error naming
    what to do when that run does not exist."""
    if str(weights) == "random":
        return "random"
    if weights:
        p = Path(weights).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"WEIGHTS {p} does not exist ({WEIGHTS_HELP})")
        return str(p)
    run = nb_paths(small)["run"]
    if not (run / "checkpoint.pt").is_file():
        raise FileNotFoundError(f"no run at {run}: run notebook 00 first, or set WEIGHTS ({WEIGHTS_HELP})")
    return str(run)


def is_embeddings_dir(path) -> bool:
    return str(path) != "random" and (Path(path) / "embeddings.json").is_file()


def _stamp(path: Path) -> list:
    """What changes when a weights file or a run's checkpoint / exports / a manifest is rewritten."""
    if not path.exists():
        return []
    files = [path] if path.is_file() else sorted([*path.glob("checkpoint.pt"), *path.glob("*_crisscross_*")])
    return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def notebook_embeddings(media: str | Path = "", weights: str | Path = "", windows: int = 4,
                        audio_weights: str | Path = "", config: Optional[str] = None, seed: int = 0,
                        small: bool = False, progress: bool = True):
    """(Embeddings, description) for the explorer notebooks, via `crisscross embed` (evaluate.embed).

    weights: see weights_source (an embeddings directory is opened as it is, `media` ignored); media: see
    media_source. One row per window (`windows` evenly spaced per clip). Cached under
    `<work dir>/embeddings/<source>-<key>` (key: source, weights and their file stamps, settings), so a
    second notebook -- or a rerun -- reuses it, and retraining the run gives a new one.
    """
    import hashlib
    import json
    from crisscross_core.evaluate.embed import embed, load_embeddings
    w = weights_source(weights, small)
    if is_embeddings_dir(w):
        e = load_embeddings(w)
        return e, f"embeddings `{w}`" + (" (MEDIA ignored: the embeddings name their own files)" if media else "")
    source, desc = media_source(media, small=small)
    key = hashlib.sha256(json.dumps([str(source.resolve()), _stamp(source), w, _stamp(Path(w)),
                                     str(audio_weights), _stamp(Path(audio_weights)) if audio_weights else [],
                                     windows, config, seed], default=str).encode()).hexdigest()[:12]
    out = nb_paths()["work"] / "embeddings" / f"{source.stem}-{key}"
    embed(source, w, out, audio_weights=audio_weights or None, windows=windows, per_window=True,
          config=config, seed=seed, progress=progress)
    return load_embeddings(out), desc


def weights_note(e) -> str:
    """One markdown line: what the weights of an Embeddings are (kind, file, sha256, seed), and whether
    the embeddings are complete."""
    w = (e.meta.get("weights") or {})
    kind = w.get("kind", "?")
    if kind == "random":
        what = f"**random init** (seed {w.get('seed')}, architecture of `{w.get('config') or 'the preset'}`)"
    elif kind == "checkpoint":
        what = (f"pretraining checkpoint `{w.get('weights')}`" + (f" (step {w['step']})" if w.get("step") is not None
                                                                   else "")
                + (f", sha256 {str(w.get('sha256'))[:12]}…" if w.get("sha256") else ""))
    else:
        files = {m: w[m] for m in ("video", "audio") if isinstance(w.get(m), dict)}
        what = "backbones " + ", ".join(f"{m} `{Path(str(f.get('weights'))).name}` (sha256 "
                                        f"{str(f.get('sha256'))[:12]}…)" for m, f in files.items())
    c = e.meta.get("counts", {})
    state = "complete" if e.meta.get("complete") else "**PARTIAL**"
    return f"**weights:** {what} · {len(e.rows)} rows of {e.meta.get('n_items')} clips, {state}; counts {c}"


def explorer_inputs(manifest: str = "", run_dir: str = "", max_items: int | None = None,
                    small: bool = False) -> tuple:
    """(run_dir, manifest, cfg, items, classes): the given manifest and run, else the demo data and the
    run notebook 00 wrote; clips with audio, the first `max_items`."""
    from crisscross_core.evaluate.media import load_items
    paths = nb_paths(small)
    run_dir = run_dir or paths["run"]
    manifest = manifest or demo_manifest(paths["demo"], small=small)
    items, classes = load_items(manifest, require_audio=True)
    return run_dir, manifest, run_config(run_dir), items[:max_items], classes
