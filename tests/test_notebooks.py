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


def _git_index_text(path: Path) -> str | None:
    """The file as staged in git's index (what a commit stores), None outside a git checkout."""
    import subprocess
    try:
        r = subprocess.run(["git", "show", f":{path.relative_to(REPO).as_posix()}"], cwd=REPO, capture_output=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.decode("utf-8") if r.returncode == 0 else None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_ipynb_in_sync_with_py_and_has_no_outputs(name):
    """The committed pair: the .ipynb as git stores it (the nbclean filter applied to the working file,
    which may carry outputs after a run in JupyterLab) has the .py's cells; what git's index holds has no
    outputs and is already clean."""
    from crisscross_core.viz.nbclean import clean
    path = NB_DIR / f"{name}.ipynb"
    from_py = jupytext.read(NB_DIR / f"{name}.py")
    stored = nbformat.reads(clean(path.read_text(encoding="utf-8"), str(path)), as_version=4)
    assert _cells(from_py) == _cells(stored), (
        f"notebooks/{name}.ipynb differs from {name}.py: regenerate with `jupytext --to ipynb notebooks/{name}.py`")
    staged = _git_index_text(path)
    if staged is not None:
        committed = nbformat.reads(staged, as_version=4)
        for c in committed.cells:
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None, \
                    f"git's index holds {name}.ipynb with outputs: run `make setup` (output filter), then `git add` it"
        assert clean(staged, str(path)) == staged, f"git's index holds {name}.ipynb unfiltered: `make setup`, `git add`"


def test_nbclean_undoes_a_jupyterlab_run():
    """What running a notebook in JupyterLab adds -- outputs, execution counts, language_info / widget state,
    cell execution metadata, a trailing empty cell, in the .py too -- is what the git filter removes,
    giving back the committed bytes."""
    import json
    from crisscross_core.viz.nbclean import clean
    path = NB_DIR / "03_embedding_explorer.ipynb"
    committed = path.read_text(encoding="utf-8")
    committed = clean(committed, str(path))          # (the working copy may itself carry a run's outputs)
    nb = json.loads(committed)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["48 clips\n"]}]
    code[1]["execution_count"] = 3
    code[1]["metadata"]["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00"}
    nb["metadata"]["language_info"] = {"name": "python"}
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "x1", "metadata": {}, "outputs": [],
                        "source": []})
    ran = json.dumps(nb, indent=1)
    assert ran != committed and clean(ran, str(path)) == committed
    py = (NB_DIR / "03_embedding_explorer.py").read_text(encoding="utf-8")
    assert clean(py, "x.py") == py                                  # the committed source is left alone
    assert clean(py + "\n# %%\n", "x.py") == py and clean(py + "\n# %%\n\n# %% [markdown]\n", "x.py") == py
    assert clean(py.replace("x = 1", "x = 1"), "x.txt") == py         # other files pass through


def test_gitattributes_name_the_filter_and_setup_installs_it():
    attrs = (REPO / ".gitattributes").read_text()
    assert "notebooks/*.ipynb filter=nbclean" in attrs and "notebooks/*.py filter=nbclean" in attrs
    assert "filter.nbclean.clean" in (REPO / "Makefile").read_text()


def test_py_headers_match_what_jupyterlab_writes():
    """JupyterLab saves the paired .py with its kernel's display name; a different one in the committed
    header would be rewritten by every save (a dirty `git status`)."""
    for name in NOTEBOOKS[:6]:
        head = (NB_DIR / f"{name}.py").read_text(encoding="utf-8").split("# ---", 2)[1]
        assert "display_name: Python 3 (ipykernel)" in head, name


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
    if name == "06_ablations":                    # a verdict per readout, each with its chance level
        text = "".join(o["data"]["text/markdown"] for o in _outputs(nb, "text/markdown"))
        for metric in ("knn_video", "knn_audio"):
            assert f"best {metric}" in text or f"no winner on {metric}" in text, text
        assert text.count("chance is") == 2 and "held-out clips" in text
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


def test_embedding_explorer_click_lasso_and_linked_maps(clip_manifest):
    """A click (one selected point) shows that window's frames and audio; a lasso (several) gives the
    selection as a table and a strip of its clips; the other map selects the same clips; hover shows the
    clip; recolouring rebuilds the maps."""
    pytest.importorskip("jscatter")
    from crisscross_core.viz.embeddings import EmbeddingExplorer, PointSet
    items = _items(clip_manifest)
    n = len(items)
    rng = np.random.default_rng(0)
    item = np.repeat(np.arange(n), 2)
    video = PointSet(rng.normal(size=(2 * n, 2)), item, np.array(["video"] * 2 * n, dtype=object),
                     np.tile([0.0, 1.0], n).astype(np.float32), np.array([f"c{i % 2}" for i in item], dtype=object))
    order = rng.permutation(2 * n)                    # the other map lists its points in another order
    audio = PointSet(rng.normal(size=(2 * n, 2)), item[order], np.array(["audio"] * 2 * n, dtype=object),
                     video.offset[order], video.label[order])
    ex = EmbeddingExplorer({"video": video, "audio": audio}, items, clip_duration={"video": 0.5, "audio": 1.0})
    assert ex.frames.value == b"" and ex.clicked is None
    ex.select("left", [2 * n - 1])                               # click: the last clip's window at 1 s
    assert ex.clicked == ("left", 2 * n - 1)
    assert bytes(ex.frames.value)[:4] == b"\x89PNG" and bytes(ex.audio.value)[:4] == b"RIFF"
    assert Path(items[-1].path).name in ex.info.value and "1.00 s" in ex.info.value
    linked = ex.maps["right"].widget.selection
    assert sorted(audio.item[linked].tolist()) == [n - 1, n - 1]   # both audio windows of that clip
    lasso = [0, 1, 2, 5]                                           # clips 0, 1, 2
    ex.select("left", lasso)
    assert list(ex.selection.index) == lasso and set(ex.selection["item"]) == {0, 1, 2}
    assert ex.selected_items.tolist() == [0, 1, 2] and "4 points of 3 clips" in ex.table.value
    assert bytes(ex.strip.value)[:4] == b"\x89PNG"
    assert sorted(set(audio.item[ex.maps["right"].widget.selection].tolist())) == [0, 1, 2]
    ex.select("right", [0])                                        # linked the other way
    assert set(video.item[ex.maps["left"].widget.selection].tolist()) == {int(audio.item[0])}
    ex._on_hover("left", 3)
    assert Path(items[1].path).name in ex.hover.value and bytes(ex.hover_frames.value)[:4] == b"\x89PNG"
    before = ex.maps["left"]
    ex.colour.value = "time offset"
    assert ex.maps["left"] is not before and ex.maps["left"].color()["by"] == "start_s"
    ex.space["right"].value = "video"
    assert len(ex._dfs["right"]) == 2 * n and set(ex._dfs["right"]["modality"]) == {"video"}


def test_clicked_frames_keep_their_aspect(clip_manifest):
    """The frames a click shows are the decoded frames side by side at their own aspect (no resampling to
    a box), and every image widget of the explorers keeps its aspect in the page."""
    pytest.importorskip("jscatter")
    import io
    import matplotlib.image as mpimg
    from crisscross_core.viz.embeddings import EmbeddingExplorer, PointSet
    from crisscross_core.viz.media import load_preview
    items = _items(clip_manifest, 3)
    ps = PointSet(np.zeros((3, 2)), np.arange(3), np.array(["video"] * 3, dtype=object), np.zeros(3, np.float32),
                  np.array(["a"] * 3, dtype=object))
    ex = EmbeddingExplorer({"video": ps}, items, clip_duration=1.0)
    ex.select("left", [0])
    img = mpimg.imread(io.BytesIO(bytes(ex.frames.value)), format="png")
    frames, _ = load_preview(items[0].path, 0.0, 1.0, fps=8.0, short_side=64)
    assert img.shape[0] == frames.shape[1]                           # native height: not stretched
    assert ex.frames.layout.object_fit == "contain"


def test_strip_on_a_time_axis_keeps_the_frame_aspect():
    """clip_figure / pairing_figure: the frames drawn over the time axis keep their own aspect (the strip
    has as many frames as fit), where a fixed count stretched them (298x48 shown at 298x114)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from crisscross_core.viz.media import clip_figure
    frames = np.zeros((40, 48, 64, 3), np.uint8)                      # 4:3 frames
    fig = clip_figure(frames, np.zeros(16000 * 4, np.float32), 16000, n_frames=32)
    ax = fig.axes[0]
    im = ax.get_images()[0]
    box = ax.get_position()
    w_px, h_px = box.width * fig.get_figwidth(), box.height * fig.get_figheight()
    strip_h, strip_w = im.get_array().shape[:2]
    n = strip_w // 64
    frame_aspect_shown = (w_px / n) / h_px
    assert abs(frame_aspect_shown / (64 / 48) - 1) < 0.25, frame_aspect_shown
    plt.close(fig)


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
                           joint={"video": wide, "audio": wide}, aligned={"audio": wide, "video": wide})
    assert len(pts["joint"].xy) == 2 * len(rid)
    assert set(pts["aligned"].modality) == {"audio (p)", "video (z)"}
    starts = np.linspace(0, 3, len(rid)).astype(np.float32)                      # embed's own window starts win
    f2 = Features(f.x, f.rid, f.label, f.window, {"start_s": starts})
    assert np.allclose(embedding_points({"video": f2}, items, reducer=pca)["video"].offset, starts)


def test_alignment_numbers_tell_a_learnt_pairing_from_a_gap():
    """alignment(): two clouds apart (a large gap) whose clips still find their partner (cos_own > cos_other),
    against unrelated pairs (cos_own ~ cos_other)."""
    from crisscross_core.evaluate.features import Features
    from crisscross_core.viz.embeddings import alignment
    rng = np.random.default_rng(0)
    n, d = 200, 32
    base = rng.normal(size=(n, d))
    shift = np.zeros(d)
    shift[0] = 6.0
    meta = (np.arange(n), np.zeros(n, np.int64), np.zeros(n, np.int64))
    a = Features((base + shift).astype(np.float32), *meta)
    b = Features((base - shift + 0.3 * rng.normal(size=(n, d))).astype(np.float32), *meta)
    r = alignment(a, b)
    assert r["gap"] > 1.0 and r["cos_own"] > r["cos_other"] + 0.05
    c = Features(rng.normal(size=(n, d)).astype(np.float32), *meta)
    r2 = alignment(a, c)
    assert abs(r2["cos_own"] - r2["cos_other"]) < 0.05


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


def _labelled_items(n, n_classes=12, split="train"):
    from crisscross_core.evaluate.media import Item
    return [Item(f"/nonexistent/clip_{i}.mp4", i % n_classes, f"c{i % n_classes}", "", split, 1.0, i)
            for i in range(n)]


def test_recall_table_within_modality_agrees_with_the_browser():
    """04's Recall@K: the demo's layout -- every first row a training clip, labels i % 12 -- with features
    that cluster by class must give R@1 near 1, as the browser's same-class neighbours show. The former
    split (every other clip a query) put only odd classes among the queries and even ones in the gallery:
    0.0 at every K."""
    from crisscross_core.evaluate.features import Features
    from crisscross_core.viz.retrieval_browser import neighbours, recall_table
    n, classes = 48, 12
    items = _labelled_items(n, classes)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(classes, 16))
    lab = np.array([it.label for it in items])
    x = (centres[lab] + 0.1 * rng.normal(size=(n, 16))).astype(np.float32)
    f = Features(x, np.arange(n), lab, np.zeros(n, np.int64))
    h = {"video": f, "audio": f}
    table = recall_table(h, ks=(1, 5))
    assert table["video → video"]["R@1"] == 1.0 and table["video → video"]["n_queries"] == n
    top1 = [lab[neighbours(h, "video → video", q, 1)[0][0]] == lab[q] for q in range(n)]
    assert np.mean(top1) == table["video → video"]["R@1"]          # the table is what the browser shows
    noisy = Features((centres[lab] + 3.0 * rng.normal(size=(n, 16))).astype(np.float32), f.rid, lab, f.window)
    t2 = recall_table({"video": noisy}, ks=(1,))
    top1 = [lab[neighbours({"video": noisy}, "video → video", q, 1)[0][0]] == lab[q] for q in range(n)]
    assert abs(np.mean(top1) - t2["video → video"]["R@1"]) < 1e-9 and 0 < np.mean(top1) < 1


def test_recall_table_cross_modal_uses_predictions_against_projections():
    from crisscross_core.evaluate.features import Features
    from crisscross_core.viz.retrieval_browser import recall_table
    n = 20
    rng = np.random.default_rng(1)
    meta = (np.arange(n), np.arange(n) % 4, np.zeros(n, np.int64))
    zv, za = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    z = {"video": Features(zv.astype(np.float32), *meta), "audio": Features(za.astype(np.float32), *meta)}
    p = {"audio": Features((zv + 0.01).astype(np.float32), *meta), "video": Features(rng.normal(size=(n, 8)).astype(np.float32), *meta)}
    t = recall_table(z, z, p, ks=(1,))
    assert t["audio → video"]["R@1"] == 1.0 and t["video → audio"]["R@1"] < 0.5


def test_retrieval_browser_frames_keep_their_aspect(clip_manifest):
    from crisscross_core.evaluate.features import Features
    from crisscross_core.viz.retrieval_browser import RetrievalBrowser
    items = _items(clip_manifest, 4)
    n = len(items)
    f = Features(np.eye(n, 8, dtype=np.float32), np.array([it.rid for it in items]), np.zeros(n, np.int64),
                 np.zeros(n, np.int64))
    rb = RetrievalBrowser({"video": f}, items, k=2, clip_duration=1.0)
    images = [rb.query_view] + [row.children[1] for row in rb.results.children]
    assert all(w.layout.object_fit == "contain" and w.layout.align_self == "flex-start" for w in images)
    assert "first hit" in rb.query_info.value or "no hit" in rb.query_info.value


def test_weights_and_media_errors_are_errors_not_random_models(monkeypatch, tmp_path):
    """A wrong WEIGHTS / MEDIA / run directory is an error naming the path, never a silent random model;
    "random" is the explicit baseline."""
    from crisscross_core.config import load_config
    from crisscross_core.viz.notebook import load_model, media_source, weights_source
    monkeypatch.setenv("CRISSCROSS_NB_WORKDIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no-such-run"):
        weights_source(str(tmp_path / "no-such-run"))
    with pytest.raises(FileNotFoundError, match="run notebook 00 first"):
        weights_source("", small=True)                               # no run of notebook 00 yet
    assert weights_source("random") == "random"
    with pytest.raises(FileNotFoundError, match="MEDIA"):
        media_source(str(tmp_path / "no-videos"))
    cfg = load_config("tiny_cpu")
    with pytest.raises(FileNotFoundError, match="checkpoint.pt"):
        load_model(tmp_path, cfg)                                    # a run dir without a checkpoint
    model, note = load_model(None, cfg)
    assert "random init" in note and "run notebook 00" not in note


def test_nb_paths_follow_the_notebooks_small_flag(monkeypatch, tmp_path):
    from crisscross_core.viz.notebook import nb_paths
    monkeypatch.setenv("CRISSCROSS_NB_SMALL", "1")
    monkeypatch.setenv("CRISSCROSS_NB_WORKDIR", str(tmp_path))
    assert nb_paths()["run"].name == "nb_small" and nb_paths(False)["run"].name == "quickstart"


def test_notebook_embeddings_from_any_weights(clip_manifest, monkeypatch, tmp_path):
    """The explorers' data path: `crisscross embed` of a manifest with random weights (heads: z and p), then
    the same directory opened as WEIGHTS; a second call reuses the cache."""
    from crisscross_core.viz.notebook import notebook_embeddings, weights_note
    monkeypatch.setenv("CRISSCROSS_NB_WORKDIR", str(tmp_path))
    e, desc = notebook_embeddings(clip_manifest, "random", windows=2, config="tiny_cpu", small=True, progress=False)
    assert "your manifest" in desc and set(e.modalities) <= {"video", "audio"} and e.meta["complete"]
    assert "random init" in weights_note(e)
    f = e.features(e.modalities[0], "h")
    assert "start_s" in f.meta and len(f.x) == 2 * len(set(f.rid.tolist()))
    e2, desc2 = notebook_embeddings("", str(e.path), small=True)
    assert e2.path == e.path and "embeddings" in desc2
    e3, _ = notebook_embeddings(clip_manifest, "random", windows=2, config="tiny_cpu", small=True, progress=False)
    assert e3.path == e.path                                         # same inputs: the cached directory
    e4, _ = notebook_embeddings(clip_manifest, "random", windows=2, config="tiny_cpu", seed=1, small=True,
                                progress=False)
    assert e4.path != e.path                                         # other weights: another directory


# ----------------------------------------------------------------------------- job panel

class _FakeJob:
    """A handle whose job runs until cancelled or `steps` pass (one step per status() call)."""

    def __init__(self, steps=10_000):
        self.job_id, self.run_dir, self.steps, self.state, self.rows = "fake1", "/tmp/x", steps, "RUNNING", []
        self.cancels = 0

    def status(self):
        if self.state == "RUNNING":
            self.rows.append({"step": len(self.rows) + 1, "loss": -0.5, "samples_per_s": 3.0})
            if len(self.rows) >= self.steps:
                self.state = "COMPLETED"
        return self.state

    def metrics(self):
        return list(self.rows)

    def tail(self, n):
        return "line\n" * 2

    def cancel(self):
        self.cancels += 1
        self.state = "CANCELLED"


def test_job_panel_watch_returns_at_once_and_refreshes_in_the_background():
    import time
    from crisscross_core.viz.job_panel import JobPanel
    job = _FakeJob()
    panel = JobPanel(job)
    t0 = time.time()
    assert panel.watch(interval=0.05) is panel and time.time() - t0 < 1.0      # never holds the kernel
    for _ in range(100):
        if len(job.rows) >= 3:
            break
        time.sleep(0.05)
    assert panel.watching and len(job.rows) >= 3 and panel.step.value != "step: -"
    panel.cancel_button.click()                                                   # what the button does
    for _ in range(100):
        if not panel.watching:
            break
        time.sleep(0.05)
    assert job.cancels == 1 and not panel.watching and "CANCELLED" in panel.state.value
    assert panel.cancel_button.disabled and "metrics.jsonl" in panel.recent.value and "line" in panel.log.value


def test_job_panel_wait_ends_with_the_job_and_plots_one_point():
    import io
    import matplotlib.image as mpimg
    from crisscross_core.viz.job_panel import JobPanel, loss_png
    job = _FakeJob(steps=3)
    panel = JobPanel(job).watch(interval=0.05)
    assert panel.wait(poll=0.05, timeout=30) == "COMPLETED" and not panel.watching
    import asyncio
    job2 = _FakeJob()
    panel2 = JobPanel(job2).watch(interval=0.05)

    async def cell():                         # a notebook cell awaiting the job while the user clicks
        async def click_later():
            await asyncio.sleep(0.3)
            panel2.cancel_button.click()
        clicker = asyncio.ensure_future(click_later())
        state = await panel2.wait_async(poll=0.05, timeout=30)
        await clicker
        return state
    assert asyncio.run(cell()) == "CANCELLED" and job2.cancels == 1 and len(job2.rows) < 100
    one = mpimg.imread(io.BytesIO(loss_png([{"step": 1, "loss": -0.4}])), format="png")
    none = mpimg.imread(io.BytesIO(loss_png([{"step": 1}])), format="png")
    assert (np.abs(one - none) > 0.1).any()                                      # a single point is drawn


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

