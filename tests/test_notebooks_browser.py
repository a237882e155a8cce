"""The notebooks in a real browser: JupyterLab in headless Chromium (Playwright driving /usr/bin/chromium).

* 03: run it, click a point of the embedding map -> that clip's frames and audio appear beside the map;
  lasso a group -> the selection table appears; screenshots artifacts/notebook_03*.png;
* 04: run it, pick another query -> its neighbours change; screenshot artifacts/notebook_04.png;
* 02: submit a job on the local executor, press the panel's Cancel while a cell is busy in `await panel.wait_async()`
  -> the job ends CANCELLED, that cell returns, and no KeyboardInterrupt traceback reaches the page.

Skipped (with the reason) without Chromium or Playwright. The notebooks run in small mode on a run of a
few steps trained here (the weights notebook 00 would give), in a temporary work directory.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from notebook_screenshot import (ACTIVE, browser_missing, browser_page, cell, coloured_pixels, lab_server,
                                 open_notebook, point_on, run_cell, wait_cell_done)

pytestmark = pytest.mark.slow
jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("jscatter")

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(url, work dir, notebook dir): JupyterLab serving a notebook folder, a small demo dataset and a run of
    a few tiny_cpu steps (what notebook 00 writes in small mode), shared by this module's tests."""
    why = browser_missing()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("nbweb")
    from crisscross_core.train import train
    from crisscross_core.viz.notebook import demo_manifest
    manifest = demo_manifest(work / "demo_data", small=True)
    run = work / "nb_small"
    train("tiny_cpu", [f"data.manifest={manifest}", f"train.run_dir={run}", "train.tensorboard=false",
                       "optim.max_steps=2", "optim.batch_size=8", "data.num_workers=0", "data.clips_per_video=1",
                       "train.log_every=1", "train.checkpoint_every=2"])
    nbs = work / "nb"
    nbs.mkdir()
    env = {"CRISSCROSS_NB_SMALL": "1", "CRISSCROSS_NB_WORKDIR": str(work), "OMP_NUM_THREADS": "1"}
    with lab_server(nbs, env=env) as url:
        yield url, work, nbs


def notebook_with(name: str, folder: Path, stop_after: str = "", **params) -> str:
    """Write notebooks/<name>.py as an .ipynb into `folder` with parameters overridden (papermill style:
    assignments appended to the parameters cell), cut after the first cell containing `stop_after`;
    returns the file name."""
    nb = jupytext.read(NB_DIR / f"{name}.py")
    if stop_after:
        last = next(i for i, c in enumerate(nb.cells) if stop_after in c.source)
        nb.cells = nb.cells[:last + 1]
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    nbformat.write(nb, folder / f"{name}.ipynb")
    return f"{name}.ipynb"


def run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def code_cell_index(page, text: str) -> int:
    cells = page.locator(f"{ACTIVE} .jp-Cell")
    for i in range(cells.count()):
        if text in cells.nth(i).locator(".jp-InputArea").inner_text():
            return i
    raise AssertionError(f"no cell with {text!r}")


def outputs_text(page) -> str:
    return page.locator(f"{ACTIVE} .jp-OutputArea").all_inner_texts().__str__()


def map_canvas(out, side: int = 0, timeout_s: float = 120.0):
    """The `side`-th map (0 left, 1 right) of an explorer output: its largest canvases, left to right.
    The widgets draw their canvases after the cell has finished (later on a loaded machine): wait."""
    t0 = time.time()
    while True:
        boxes = []
        cs = out.locator("canvas")
        for i in range(cs.count()):
            b = cs.nth(i).bounding_box()
            if b and b["width"] > 150 and b["height"] > 150:
                boxes.append((b["x"], i))
        boxes.sort()
        if len(boxes) > side or time.time() - t0 > timeout_s:
            break
        out.page.wait_for_timeout(500)
    assert len(boxes) > side, f"{len(boxes)} map canvases in the output after {timeout_s:.0f} s"
    return cs.nth(boxes[side][1])


def test_03_click_a_point_shows_its_frames_and_audio(lab):
    url, work, nbs = lab
    name = notebook_with("03_embedding_explorer", nbs, stop_after="explorer = EmbeddingExplorer(")
    with browser_page(1500, 1100) as page:
        open_notebook(page, url, name)
        run_all(page)
        i = code_cell_index(page, "explorer = EmbeddingExplorer(")
        wait_cell_done(page, i, timeout_ms=600_000)
        out = cell(page, i).locator(".jp-OutputArea")
        left = map_canvas(out, 0)
        left.scroll_into_view_if_needed()
        t0 = time.time()
        while len(coloured_pixels(left.screenshot())[0]) < 20:       # the map has drawn its points
            assert time.time() - t0 < 120, "the map never showed points"
            page.wait_for_timeout(300)
        page.wait_for_timeout(2000)
        info = out.locator(".cc-clip-info")
        assert ".mp4" not in info.inner_text()
        px, py = point_on(left)
        page.mouse.move(px, py)
        page.wait_for_timeout(300)
        page.mouse.click(px, py)
        page.wait_for_function("e => /\\.mp4/.test(e.innerText)", arg=info.element_handle(), timeout=60_000)
        text = info.inner_text()
        assert "window at" in text
        frames = out.locator(".cc-clip-frames img, img.cc-clip-frames").first
        page.wait_for_function("e => e.naturalWidth > 0", arg=frames.element_handle(), timeout=30_000)
        size = frames.evaluate("e => [e.naturalWidth, e.naturalHeight, e.clientWidth, e.clientHeight]")
        assert size[0] > 0 and abs(size[0] / size[1] - size[2] / size[3]) < 0.02 * size[0] / size[1], size
        audio = out.locator(".cc-clip-audio audio, audio.cc-clip-audio").first
        assert audio.get_attribute("src"), "no audio for the clicked clip"
        ARTIFACTS.mkdir(exist_ok=True)
        out.screenshot(path=str(ARTIFACTS / "notebook_03_click.png"))
        # lasso: the toolbar's lasso button, then a drag around the clicked point
        lasso = out.locator("button[title*='asso'], [title*='asso']").first
        if lasso.count():
            lasso.click()
            page.wait_for_timeout(500)
            r = 90
            pts = [(px - r, py - r), (px + r, py - r), (px + r, py + r), (px - r, py + r), (px - r, py - r + 4)]
            page.mouse.move(*pts[0])
            page.mouse.down()
            for (x0, y0), (x1, y1) in zip(pts, pts[1:]):              # at a hand's pace
                for k in range(1, 9):
                    page.mouse.move(x0 + (x1 - x0) * k / 8, y0 + (y1 - y0) * k / 8)
                    page.wait_for_timeout(20)
            page.mouse.up()
            table = out.locator(".cc-selection-table")
            page.wait_for_function("e => /points of/.test(e.innerText)", arg=table.element_handle(), timeout=60_000)
            page.wait_for_timeout(1000)
        out.screenshot(path=str(ARTIFACTS / "notebook_03.png"))


def test_04_pick_a_query_shows_its_neighbours(lab):
    url, work, nbs = lab
    name = notebook_with("04_retrieval_browser", nbs)
    with browser_page(1500, 1100) as page:
        open_notebook(page, url, name)
        run_all(page)
        i = code_cell_index(page, "browser_same = RetrievalBrowser(")
        wait_cell_done(page, i, timeout_ms=600_000)
        out = cell(page, i).locator(".jp-OutputArea")
        select = out.locator("select").first
        select.wait_for(timeout=60_000)
        before = out.inner_text()
        options = select.locator("option")
        pick = min(5, options.count() - 1)
        clip = options.nth(pick).inner_text().split("—")[-1].strip()
        select.select_option(index=pick)
        page.wait_for_function(   # the query panel (an HTML widget, not the dropdown) shows the new query
            "([e, c]) => [...e.querySelectorAll('.widget-html-content')].some("
            "h => h.innerText.includes(c) && /first hit|no hit/.test(h.innerText))",
            arg=[out.element_handle(), clip], timeout=120_000)
        shown = out.inner_text()
        assert shown != before and "cos" in shown and clip in shown
        j = code_cell_index(page, "table = recall_table(")
        wait_cell_done(page, j, timeout_ms=300_000)
        assert "leave-one-out" in cell(page, j).inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        out.screenshot(path=str(ARTIFACTS / "notebook_04.png"))


def test_02_cancel_while_a_cell_is_busy_ends_the_job(lab):
    url, work, nbs = lab
    name = notebook_with("02_pretrain_on_slurm", nbs, PROFILE="local", STEPS=4000, OVERRIDES=["optim.epochs=1000"])
    with browser_page(1500, 1100) as page:
        open_notebook(page, url, name)
        submit = code_cell_index(page, "job = launch(STEPS // 2)")
        waiting = code_cell_index(page, "state = await panel.wait_async(timeout=WATCH_S)")
        for i in range(submit + 1):
            if cell(page, i).locator(".jp-InputPrompt").count() and "jp-CodeCell" in (cell(page, i).get_attribute("class") or ""):
                run_cell(page, i)
                wait_cell_done(page, i, timeout_ms=300_000)
        panel_out = cell(page, submit).locator(".jp-OutputArea")
        run_cell(page, waiting)                                        # the kernel is now busy in wait_async()
        step = panel_out.locator("text=/step: \\d+/").first
        step.wait_for(timeout=240_000)                                 # the job has logged a step
        prompt = cell(page, waiting).locator(".jp-InputPrompt").first
        assert "*" in prompt.inner_text(), "the waiting cell should still be busy"
        panel_out.get_by_role("button", name=re.compile("Cancel job")).click()
        t0 = time.time()
        wait_cell_done(page, waiting, timeout_ms=120_000)              # wait() saw the job end
        elapsed = time.time() - t0
        text = cell(page, waiting).locator(".jp-OutputArea").inner_text()
        assert "-> CANCELLED" in text, text[-800:]
        assert "state: CANCELLED" in panel_out.inner_text()
        assert "KeyboardInterrupt" not in outputs_text(page) and "Traceback" not in outputs_text(page)
        metrics = [json.loads(l) for l in (work / "slurm_run" / "metrics.jsonl").read_text().splitlines() if l.strip()]
        last = max(r.get("step", 0) for r in metrics)
        assert last < 2000, f"the job ran to step {last}: the click was not handled while the cell was busy"
        ARTIFACTS.mkdir(exist_ok=True)
        panel_out.screenshot(path=str(ARTIFACTS / "notebook_02_cancelled.png"))
        print(f"cancel -> cell returned in {elapsed:.1f} s, job stopped at step {last}")


def test_running_a_notebook_in_jupyterlab_leaves_git_status_clean(lab, tmp_path):
    """A clone set up as `make setup` does (the nbclean git filter, the server's pre-save hook): run 01 in
    JupyterLab, add an empty cell at the end (Shift+Enter on the last cell), save, and `git status` stays
    clean -- while the open notebook keeps its outputs."""
    import subprocess
    import sys
    _url, work, _nbs = lab
    repo = tmp_path / "clone"
    (repo / "notebooks").mkdir(parents=True)
    for f in ("01_asynchronous_pairings.py", "01_asynchronous_pairings.ipynb", "jupytext.toml"):
        shutil.copy(NB_DIR / f, repo / "notebooks" / f)
    for f in (".gitattributes", ".gitignore"):
        shutil.copy(REPO / f, repo / f)
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, capture_output=True, text=True, check=True).stdout
    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    git("config", "filter.nbclean.clean", f"{sys.executable} -m crisscross_core.viz.nbclean %f")
    git("add", ".")
    git("commit", "-q", "-m", "pair")
    before = (repo / "notebooks" / "01_asynchronous_pairings.ipynb").read_text()
    env = {"CRISSCROSS_NB_SMALL": "1", "CRISSCROSS_NB_WORKDIR": str(work), "OMP_NUM_THREADS": "1"}
    hook = "--ContentsManager.pre_save_hook=crisscross_core.viz.nbclean.pre_save_hook"
    with lab_server(repo / "notebooks", env=env, args=(hook,)) as url, browser_page() as page:
        open_notebook(page, url, "01_asynchronous_pairings.ipynb")
        run_all(page)
        last = code_cell_index(page, "display(Image(ex.views.value))")
        wait_cell_done(page, last, timeout_ms=300_000)
        run_cell(page, last)                                  # Shift+Enter on the last cell adds an empty one
        wait_cell_done(page, last, timeout_ms=120_000)
        page.keyboard.press("Control+s")
        page.wait_for_timeout(3000)
        shown = page.locator(f"{ACTIVE} .jp-OutputArea-output").count()
    after = (repo / "notebooks" / "01_asynchronous_pairings.ipynb").read_text()
    assert shown > 3                                          # the open notebook has its outputs
    assert "Python 3 (ipykernel)" in after                     # it was saved by JupyterLab
    diff = git("diff")
    (ARTIFACTS / "git_status_after_run.diff").write_text(diff)
    assert git("status", "--porcelain") == "", diff[:3000]
    assert "filter.nbclean.clean" in (REPO / "Makefile").read_text() and "pre_save_hook" in (REPO / "Makefile").read_text()
