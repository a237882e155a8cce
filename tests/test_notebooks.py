"""The notebooks: paired sources in sync, every notebook executes headless in small mode, the explorers
the notebooks show work when driven from code, and one executed notebook renders in JupyterLab.

Execution: nbclient, kernel env CRISSCROSS_NB_SMALL=1 and a shared temporary work dir (demo data,
the run of 00 that 03-05 reuse). Executed copies go to artifacts/notebooks/ (gitignored), and the
screenshot of 00 to artifacts/notebook_00.png.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")
pytest.importorskip("ipywidgets")

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
ARTIFACTS = REPO / "artifacts"
NOTEBOOKS = sorted(p.stem for p in NB_DIR.glob("[0-9][0-9]_*.py"))
TIMINGS: dict = {}
EXECUTED: dict = {}


# ----------------------------------------------------------------------------- pairing / hygiene

def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_six_notebooks_each_paired():
    assert NOTEBOOKS[:6] == ["00_quickstart", "01_asynchronous_pairings", "02_pretrain_on_slurm",
                             "03_embedding_explorer", "04_retrieval_browser", "05_downstream_tables"]
    for name in NOTEBOOKS:
        assert (NB_DIR / f"{name}.ipynb").is_file(), f"{name}.ipynb missing: run `make notebooks`"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_ipynb_in_sync_with_py_and_has_no_outputs(name):
    from_py = jupytext.read(NB_DIR / f"{name}.py")
    committed = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    assert _cells(from_py) == _cells(committed), (
        f"notebooks/{name}.ipynb differs from {name}.py: regenerate with `jupytext --to ipynb notebooks/{name}.py`")
    for c in committed.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, f"{name}.ipynb has outputs: strip them"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_one_parameters_cell_first_code_cell(name):
    nb = jupytext.read(NB_DIR / f"{name}.py")
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and code[0] is tagged[0], f"{name}: one 'parameters'-tagged cell, first"
    assert "SMALL" in tagged[0].source


# ----------------------------------------------------------------------------- execution

@pytest.fixture(scope="session")
def nb_workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("nbwork")


def execute(name: str, workdir: Path, monkeypatch) -> "nbformat.NotebookNode":
    from nbclient import NotebookClient
    monkeypatch.setenv("CRISSCROSS_NB_SMALL", "1")
    monkeypatch.setenv("CRISSCROSS_NB_WORKDIR", str(workdir))
    monkeypatch.delenv("MPLBACKEND", raising=False)      # the kernel's inline backend draws the figures
    monkeypatch.setenv("OMP_NUM_THREADS", "1")             # kernels and jobs: 1 thread (2 shared cores)
    # the "python3" kernel of this interpreter's environment wins over any user-level kernelspec
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(
        p for p in (str(Path(sys.prefix) / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")) if p))
    nb = jupytext.read(NB_DIR / f"{name}.py")
    t0 = time.time()
    try:
        NotebookClient(nb, timeout=400, kernel_name="python3", allow_errors=False,
                       resources={"metadata": {"path": str(NB_DIR)}}).execute()
    finally:
        TIMINGS[name] = round(time.time() - t0, 1)
        out = ARTIFACTS / "notebooks"
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / f"{name}.ipynb")
    EXECUTED[name] = out / f"{name}.ipynb"
    return nb


def _outputs(nb, kind):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if kind in o.get("data", {})]


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_in_small_mode(name, nb_workdir, monkeypatch):
    nb = execute(name, nb_workdir, monkeypatch)   # raises CellExecutionError naming the failing cell
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert _outputs(nb, "image/png") or _outputs(nb, "application/vnd.jupyter.widget-view+json"), \
        f"{name} showed no figure and no widget"
    if name == "00_quickstart":
        assert (nb_workdir / "nb_small" / "metrics.jsonl").is_file()
        assert list((nb_workdir / "nb_small").glob("vid_crisscross_*.pth.tar"))
    if name == "05_downstream_tables":
        assert list((nb_workdir / "results").glob("*.json"))
    print(f"{name}: {TIMINGS[name]} s")


# ----------------------------------------------------------------------------- explorers, driven from code

@pytest.fixture(scope="module")
def clip_manifest(tmp_path_factory):
    """A kit manifest of real media: ../shared/data/clips, else the demo data (small)."""
    from crisscross_core.viz.notebook import demo_manifest, pick_pairing_source
    work = tmp_path_factory.mktemp("clips")
    try:
        path, _src = pick_pairing_source(None, demo_manifest=lambda: demo_manifest(work / "demo", small=True),
                                         work=work)
    except (FileNotFoundError, ImportError) as e:
        pytest.skip(f"no media for the explorers: {e}")
    return path


def test_pairing_explorer_follows_relation_and_resample(clip_manifest):
    from crisscross_core.config import load_config
    from crisscross_core.viz.pairings import PairingExplorer
    cfg = load_config("tiny_cpu")
    ex = PairingExplorer(clip_manifest, cfg.data, cfg.aug, relation="same_timestamp")
    w = ex.windows
    assert w.v1 == w.v2 and w.a1 == w.a2                       # same_timestamp: one snippet
    assert np.allclose(ex.plotted, [w.v1, w.a1, w.v2, w.a2])   # the figure shows these windows
    png, draws = ex.timeline.value, ex.draws
    ex.relation.value = "adjacent"                             # observer redraws
    w2 = ex.windows
    assert ex.draws == draws + 1 and ex.timeline.value != png
    assert w2.v2[0] == pytest.approx(w2.v1[0] + w2.v1[1], abs=1e-6)   # adjacent: v2 starts where v1 ends
    assert np.allclose(ex.plotted, [w2.v1, w2.a1, w2.v2, w2.a2])
    assert ex.audio_a1.value[:4] == b"RIFF"
    ex.relation.value = "v_far_a_same"
    assert ex.windows.share_audio and ex.windows.a1 == ex.windows.a2
    seen = {ex.windows}
    for _ in range(3):
        ex.resample.click()                                    # next epoch's draw
        seen.add(ex.windows)
    assert ex.epoch == 3 and ex.draws == draws + 5
    row = ex.dataset.rows[ex.clip.value]
    if row.duration > 3 * cfg.data.audio_duration:             # room to move: the draws differ
        assert len(seen) > 1
    assert ex.views.value[:4] == b"\x89PNG"
    if len(ex.clip.options) > 1:
        ex.clip.value = ex.clip.options[1][1]
        assert ex.item["video"].shape[0] == 2 and ex.windows is not None


def _items(manifest, n=6):
    from crisscross_core.evaluate.media import load_items
    items, _ = load_items(manifest, require_label=False, require_audio=True)
    if len(items) < 3:
        pytest.skip("need at least 3 clips with audio")
    return items[:n]


def test_embedding_explorer_selection_updates_media(clip_manifest):
    from crisscross_core.viz.embeddings import EmbeddingExplorer, PointSet
    items = _items(clip_manifest)
    n = len(items)
    rng = np.random.default_rng(0)
    item = np.repeat(np.arange(n), 2)
    ps = PointSet(rng.normal(size=(2 * n, 2)), item, np.array(["video", "audio"] * n, dtype=object),
                  np.tile([0.0, 1.0], n).astype(np.float32), np.array([f"c{i % 2}" for i in item], dtype=object))
    ex = EmbeddingExplorer({"joint": ps, "video": ps}, items, clip_duration=1.0)
    img, snd, scat = ex.frames.value, ex.audio.value, ex.scatter.value
    ex.point.value = 2 * n - 1                                  # last clip, its window at 1 s
    assert ex.selected == 2 * n - 1
    assert ex.frames.value != img and ex.audio.value != snd and ex.scatter.value != scat
    assert Path(items[-1].path).name in ex.info.value and "1.00 s" in ex.info.value
    for colour in ("modality", "time offset"):
        before = ex.scatter.value
        ex.colour.value = colour
        assert ex.scatter.value != before


def test_embedding_points_maps_every_window(clip_manifest):
    from crisscross_core.evaluate.features import Features
    from crisscross_core.viz.embeddings import embedding_points
    items = _items(clip_manifest, 4)
    rid = np.repeat([it.rid for it in items], 2)
    f = Features(np.random.default_rng(1).normal(size=(len(rid), 8)).astype(np.float32), rid,
                 np.zeros(len(rid), np.int64), np.tile([0, 1], len(items)))
    pca = lambda x: (x - x.mean(0)) @ np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:2].T
    pts = embedding_points({"video": f, "audio": f}, items, {"video": 0.5, "audio": 2.0}, 2, reducer=pca)
    assert set(pts) == {"video", "audio", "joint"}
    assert len(pts["joint"].xy) == 2 * len(rid) and set(pts["joint"].modality) == {"video", "audio"}
    assert pts["video"].offset[0] == 0.0 and pts["video"].offset[1] > 0.0      # window 1 starts later
    wide = Features(np.hstack([f.x, f.x]), f.rid, f.label, f.window)             # another space, 16-d
    pts = embedding_points({"video": f, "audio": f}, items, {"video": 0.5, "audio": 2.0}, 2, reducer=pca,
                           joint={"video": wide, "audio": wide})
    assert len(pts["joint"].xy) == 2 * len(rid)


def test_retrieval_browser_cross_modal_queries_with_predictions(clip_manifest):
    from crisscross_core.evaluate.features import Features
    from crisscross_core.viz.retrieval_browser import RetrievalBrowser, neighbours
    items = _items(clip_manifest)
    n = len(items)
    rng = np.random.default_rng(2)
    rid, lab, win = np.array([it.rid for it in items]), np.zeros(n, np.int64), np.zeros(n, np.int64)
    zv = rng.normal(size=(n, 8)).astype(np.float32)
    z = {"video": Features(zv, rid, lab, win), "audio": Features(rng.normal(size=(n, 8)).astype(np.float32), rid, lab, win)}
    p = {"audio": Features(zv + 0.01, rid, lab, win), "video": Features(zv, rid, lab, win)}  # p_a ≈ z_v
    hits = [neighbours(z, "audio → video", i, 1, queries=p)[0][0] for i in range(n)]
    assert hits == list(range(n))                               # every audio finds its own video
    rb = RetrievalBrowser(z, items, k=2, clip_duration=1.0, queries=p)
    rb.direction.value = "audio → video"
    rb.query.value = n - 1
    assert rb.hits[0] == n - 1 and "✔" in rb.results.children[0].children[0].value


def test_retrieval_browser_ranks_planted_neighbours(clip_manifest):
    from crisscross_core.evaluate.features import Features
    from crisscross_core.viz.retrieval_browser import RetrievalBrowser
    items = _items(clip_manifest)
    n = len(items)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(n, 16)).astype(np.float32)
    near = base.copy()
    near[1] = base[0] + 0.01 * rng.normal(size=16)             # item 1 is item 0's twin
    rid = np.array([it.rid for it in items])
    lab = np.zeros(n, np.int64)
    feats = {"video": Features(near, rid, lab, np.zeros(n, np.int64)),
             "audio": Features(base + 0.05 * rng.normal(size=base.shape).astype(np.float32), rid, lab,
                               np.zeros(n, np.int64))}
    rb = RetrievalBrowser(feats, items, k=2, clip_duration=1.0)
    assert rb.direction.value == "video → video"
    assert rb.hits[0] == 1 and 0 not in rb.hits                 # the twin first, never the query itself
    assert len(rb.results.children) == 2
    rb.direction.value = "audio → video"
    assert rb.hits[0] in (0, 1)                                  # its own clip (or the twin) across modalities
    rb.query.value = 3
    assert rb.hits[0] == 3 and len(rb.results.children) == 2
    rb.k.value = 3
    assert len(rb.results.children) == 3 and rb.query_audio.value[:4] == b"RIFF"


def test_pick_cluster_without_slurm_is_local(monkeypatch, tmp_path):
    from crisscross_core.viz.notebook import pick_cluster
    monkeypatch.setenv("PATH", str(tmp_path))
    cluster, why = pick_cluster("auto")
    assert cluster == "local" and "sbatch" in why
    assert pick_cluster("example_university") == ("example_university", "chosen")


def test_results_figure_shows_spread_and_paper():
    from crisscross_core.viz.result_figures import results_figure, spread_values
    rec = {"protocol": "esc_svm", "dataset": "esc50", "pretrain": "kinetics400", "label": "", "mean": 0.8,
           "std": 0.02, "result": {"per_fold": [{"fold": str(i), "acc": a} for i, a in
                                                enumerate([0.78, 0.8, 0.82], 1)]}}
    assert spread_values(rec) == [0.78, 0.8, 0.82]
    fig = results_figure([rec])
    ax = fig.axes[0]
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    assert {78.0, 80.0, 82.0} <= set(np.round(offsets[:, 1], 3)) and 86.8 in np.round(offsets[:, 1], 3)


def test_media_helpers_roundtrip():
    import io
    import wave
    from crisscross_core.viz.media import denormalise, frame_strip, wav_bytes
    w = np.sin(np.linspace(0, 100, 1600)).astype(np.float32)
    with wave.open(io.BytesIO(wav_bytes(w, 16000))) as f:
        assert (f.getframerate(), f.getnchannels(), f.getnframes()) == (16000, 1, 1600)
    frames = np.arange(10 * 4 * 5 * 3, dtype=np.uint8).reshape(10, 4, 5, 3)
    s = frame_strip(frames, n=3, gap=1)
    assert s.shape == (4, 3 * 5 + 2, 3) and (s[:, :5] == frames[0]).all() and (s[:, -5:] == frames[-1]).all()
    x = np.random.default_rng(0).random((3, 4, 5, 6))             # [3, T, H, W] in [0, 1]
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    norm = (x - np.array(mean)[:, None, None, None]) / np.array(std)[:, None, None, None]
    back = denormalise(norm, mean, std)
    assert back.shape == (4, 5, 6, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(float) - x.transpose(1, 2, 3, 0) * 255).max() <= 1.0

# ----------------------------------------------------------------------------- JupyterLab screenshot

@pytest.mark.slow
def test_executed_notebook_renders_in_jupyterlab(nb_workdir, monkeypatch):
    from notebook_screenshot import chromium, pixel_stats, screenshot_notebook
    if chromium() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    src = EXECUTED.get("00_quickstart")
    if src is None or not Path(src).is_file():
        execute("00_quickstart", nb_workdir, monkeypatch)
        src = EXECUTED["00_quickstart"]
    png = screenshot_notebook(Path(src), ARTIFACTS / "notebook_00.png")
    assert png.is_file() and png.stat().st_size > 20_000
    std, levels = pixel_stats(png)
    assert std > 0.05 and levels > 32, f"screenshot looks blank (std {std:.3f}, {levels} grey levels)"

