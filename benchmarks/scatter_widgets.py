"""Fluency of interactive scatter widgets in JupyterLab in headless Chromium (the embedding explorer's map).

For each candidate (jupyter-scatter; plotly FigureWidget with Scattergl) and each size, a notebook
builds the widget over N clustered 2-D points (12 labels) and a status line that Python observers
update on click / hover / selection. Playwright then drives the system Chromium (software WebGL:
SwiftShader, no GPU) through JupyterLab and times:

* render_s: Shift+Enter on the cell → the map's canvas shows points (polled by element screenshots,
  so ± ~0.1 s), kernel work and widget transfer included;
* pan_fps, pan_max_frame_ms: frames the page painted (requestAnimationFrame) while the mouse drags
  the view for ~1 s in 30 moves, and the longest gap between two frames;
* hover_s, click_s, lasso_s: mouse event → the Python observer's answer shown in the page (the
  browser → kernel → browser round trip a linked view or a clip preview needs).

    .venv/bin/python benchmarks/scatter_widgets.py --sizes 10000 100000

One JSON line per figure: {"bench": "scatter_widgets", "widget", "n", "figure", "value", "unit"}.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from notebook_screenshot import (browser_page, cell, coloured_pixels, lab_server, open_notebook,  # noqa: E402
                                 point_on, run_cell)

DATA = """
import numpy as np, pandas as pd, ipywidgets as W
from IPython.display import display
N = {n}
rng = np.random.default_rng(0)
centres = rng.normal(scale=8, size=(12, 2)); centres[0] = 0
lab = rng.integers(0, 12, N)
xy = (centres[lab] + rng.normal(size=(N, 2))).astype("float32")
status = W.HTML("ready"); status.add_class("bench-status")
def say(kind, n): status.value = f"{{kind}} {{n}} #{{time.time()}}"
import time
"""

WIDGETS = {
    "jupyter-scatter": (DATA + """
import jscatter
df = pd.DataFrame({{"x": xy[:, 0], "y": xy[:, 1], "label": pd.Categorical([f"c{{i}}" for i in lab])}})
sc = jscatter.Scatter(data=df, x="x", y="y", color_by="label", height=500, width=700, size=3)
sc.widget.observe(lambda c: say("selected", len(c["new"]) if c["new"] is not None else 0), names="selection")
sc.widget.observe(lambda c: c["new"] is not None and say("hover", c["new"]), names="hovering")
display(W.VBox([status, sc.show()]))
""", "sc.mouse(mode='lasso');", "canvas"),
    "plotly-FigureWidget-Scattergl": (DATA + """
import plotly.graph_objects as go
fig = go.FigureWidget(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers",
                                   marker=dict(color=lab, colorscale="Turbo", size=3)),
                      layout=dict(height=500, width=700, dragmode="pan", margin=dict(l=10, r=10, t=10, b=10)))
tr = fig.data[0]
tr.on_click(lambda t, p, s: say("clicked", len(p.point_inds)))
tr.on_hover(lambda t, p, s: say("hover", len(p.point_inds)))
tr.on_selection(lambda t, p, s: say("selected", len(p.point_inds)))
display(W.VBox([status, fig]))
""", "fig.layout.dragmode = 'lasso';", ".js-plotly-plot canvas"),
}


def status_after(page, prefix: str, before: str, timeout_ms: int = 60_000, jiggle=None) -> float:
    """Poll (every ~10 ms) until the status line changes from `before` to a text starting with `prefix`;
    return the time it was seen. `jiggle`: (x, y) to nudge the pointer by a sub-pixel every 100 ms."""
    t0 = time.perf_counter()
    i = 0
    while (time.perf_counter() - t0) * 1000 < timeout_ms:
        txt = status_text(page)
        if txt != before and txt.startswith(prefix):
            return time.perf_counter()
        page.wait_for_timeout(10)
        i += 1
        if jiggle and i % 10 == 0:
            page.mouse.move(jiggle[0] + 0.3 * (i // 10 % 2), jiggle[1])
    raise TimeoutError(f"no {prefix!r} answer within {timeout_ms} ms")


def status_text(page) -> str:
    return page.locator(".bench-status").inner_text()


STAGE = [""]


def measure(page, url: str, nb_name: str, canvas_sel: str) -> dict:
    open_notebook(page, url, nb_name)
    out = cell(page, 0).locator(".jp-OutputArea")
    t0 = time.perf_counter()
    run_cell(page, 0)
    canvas = out.locator(canvas_sel).first
    canvas.wait_for(state="visible", timeout=300_000)
    while len(coloured_pixels(canvas.screenshot())[0]) < 500:
        if time.perf_counter() - t0 > 300:
            raise TimeoutError("the map never showed points")
    res = {"render_s": time.perf_counter() - t0}
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.wait_for_timeout(3000)         # let the widget settle (spatial index for picking)
    # hover: onto a drawn point near the centre (from an empty corner)
    px, py = point_on(canvas)
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.wait_for_timeout(500)
    before = status_text(page)
    t = time.perf_counter()
    STAGE[0] = "hover"
    page.mouse.move(px, py)
    res["hover_s"] = status_after(page, "hover", before, 20_000, jiggle=(px, py)) - t
    STAGE[0] = "click"
    # click on that point
    page.wait_for_timeout(500)
    before = status_text(page)
    t = time.perf_counter()
    page.mouse.click(px, py)
    res["click_s"] = status_after(page, ("selected" if "scatter" in nb_name else "clicked"), before) - t
    # pan: ~1 s of dragging, frames counted in the page
    page.evaluate("() => { window.__f = []; const tick = (t) => { window.__f.push(t);"
                  " if (window.__f.length < 100000) window.__raf = requestAnimationFrame(tick); };"
                  " window.__raf = requestAnimationFrame(tick); }")
    page.mouse.move(cx, cy)
    page.mouse.down()
    t = time.perf_counter()
    for i in range(30):
        page.mouse.move(cx + 4 * (i + 1), cy + 2 * (i + 1))
        page.wait_for_timeout(33)
    page.mouse.up()
    dt = time.perf_counter() - t
    frames = page.evaluate("() => { cancelAnimationFrame(window.__raf); return window.__f; }")
    gaps = [b - a for a, b in zip(frames, frames[1:])]
    res["pan_fps"] = len(frames) / dt
    res["pan_max_frame_ms"] = max(gaps) if gaps else float("nan")
    # lasso: switch mode from Python, draw a polygon around the centre
    run_cell(page, 1)
    page.wait_for_timeout(1500)
    STAGE[0] = "lasso"
    cx, cy = point_on(canvas)           # around drawn points (the pan moved the view)
    before = status_text(page)
    r = 80
    pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r), (cx - r, cy - r + 5)]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):      # at a hand's pace: a move every 20 ms
        for k in range(1, 9):
            page.mouse.move(x0 + (x1 - x0) * k / 8, y0 + (y1 - y0) * k / 8)
            page.wait_for_timeout(20)
    t = time.perf_counter()
    page.mouse.up()
    res["lasso_s"] = status_after(page, "selected", before) - t
    res["lasso_points"] = int(status_text(page).split()[1])
    return res


def notebook(code: str, lasso: str) -> dict:
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell(lasso)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--widgets", nargs="+", default=list(WIDGETS))
    args = ap.parse_args()
    import nbformat
    with tempfile.TemporaryDirectory(prefix="scatterbench-") as tmp:
        tmp = Path(tmp)
        for name in args.widgets:
            code, lasso, canvas_sel = WIDGETS[name]
            for n in args.sizes:
                nbformat.write(notebook(code.format(n=n), lasso), tmp / f"{name}_{n}.ipynb")
        with lab_server(tmp, env={"OMP_NUM_THREADS": "1"}) as url:
            for name in args.widgets:
                for n in args.sizes:
                    with browser_page() as page:
                        try:
                            res = measure(page, url, f"{name}_{n}.ipynb", WIDGETS[name][2])
                        except Exception as e:  # noqa: BLE001 - report and go on with the next
                            res = {"error": f"{STAGE[0]}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"}
                        page.screenshot(path=str(Path("artifacts") / f"scatter_bench_{name}_{n}.png"))
                    for fig, v in res.items():
                        unit = ("s" if fig.endswith("_s") else "fps" if fig.endswith("fps")
                                else "ms" if fig.endswith("_ms") else "")
                        print(json.dumps({"bench": "scatter_widgets", "widget": name, "n": n, "figure": fig,
                                          "value": round(v, 3) if isinstance(v, float) else v, "unit": unit,
                                          "browser": "headless chromium, software WebGL (SwiftShader)"}),
                              flush=True)


if __name__ == "__main__":
    main()
