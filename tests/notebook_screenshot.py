"""JupyterLab in headless Chromium, for tests and benchmarks: serve a folder, open a notebook, capture it.

    with lab_server(folder) as url:                       # jupyter lab on 127.0.0.1, no token
        with browser_page() as page:                      # Playwright page in the system Chromium
            page.goto(f"{url}/lab/tree/03.ipynb")
    png = screenshot_notebook(Path("executed/00.ipynb"), Path("artifacts/notebook_00.png"))

`lab_server` starts `jupyter lab` on a free port with a fresh config/runtime dir (no announcements,
the environment's widget extensions visible) and stops it by its own process group afterwards.
`browser_page` drives /usr/bin/chromium (never a downloaded browser) with a fresh user-data-dir.
Also `python tests/notebook_screenshot.py NB.ipynb OUT.png`.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browser_missing() -> str | None:
    """Why a Playwright-driven browser test cannot run here (None when it can)."""
    if chromium() is None:
        return "chromium is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; the system chromium is used)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early (rc {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"jupyter lab did not answer at {url} within {timeout} s")


@contextlib.contextmanager
def lab_server(root: Path, timeout: float = 120.0, env: dict | None = None, args: tuple = ()):
    """Serve `root` with JupyterLab on 127.0.0.1 (no token); yields the base URL. `env`: extra variables
    for the server and its kernels; `args`: extra command-line options. The server (and its kernels) are
    stopped by process group at exit."""
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="nblab-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        e = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "cfg"), JUPYTER_DATA_DIR=str(tmp / "data"),
                 JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), HOME=str(tmp), **(env or {}))
        # keep the environment's data dirs (lab extensions such as ipywidgets, anywidget) visible
        e["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(Path(sys.prefix) / "share" / "jupyter"),
                                                        os.environ.get("JUPYTER_PATH", "")) if p)
        settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            '{"fetchNews": "false", "checkForUpdates": false}')
        for name in os.listdir(root):
            if name.endswith(".ipynb"):   # trusted: saved widget state and rich outputs render
                subprocess.run([sys.executable, "-m", "jupyter", "trust", str(root / name)], env=e,
                               capture_output=True, timeout=60)
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.token=",
               "--ServerApp.password=", "--ServerApp.ip=127.0.0.1", "--allow-root",
               f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={tmp / 'settings'}",
               f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--ServerApp.open_browser=False", *args]
        log = open(tmp / "lab.log", "w")
        proc = subprocess.Popen(cmd, cwd=root, env=e, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            _wait_http(f"http://127.0.0.1:{port}/api", timeout, proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)   # the server we started, and its kernels
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            log.close()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless system Chromium (software WebGL), fresh profile; closed at exit."""
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory(prefix="nbchrome-") as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=chromium(), headless=True,
                                                   args=CHROMIUM_FLAGS,
                                                   viewport={"width": width, "height": height})
        try:
            yield ctx.pages[0] if ctx.pages else ctx.new_page()
        finally:
            ctx.close()


# ----------------------------------------------------------------------------- driving a notebook in the lab

def open_notebook(page, url: str, name: str, timeout_ms: int = 120_000) -> None:
    """Open `name` in the lab and wait until its kernel is idle."""
    page.goto(f"{url}/lab/tree/{name}?reset")          # ?reset: a fresh workspace, this notebook alone
    page.wait_for_selector(f"{ACTIVE} .jp-Cell", timeout=timeout_ms)
    wait_kernel_idle(page, timeout_ms)


def wait_kernel_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the status bar says the kernel is connected and idle."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
        ".some(e => /\\| Idle/.test(e.textContent))", timeout=timeout_ms)


ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"


def cell(page, index: int):
    """The `index`-th cell (0-based) of the notebook in the active tab."""
    return page.locator(f"{ACTIVE} .jp-Cell").nth(index)


def coloured_pixels(png: bytes, min_chroma: float = 0.15):
    """(y, x) of the saturated (coloured, not grey/white/black) pixels of a PNG, as two arrays."""
    import io
    import matplotlib.image as mpimg
    import numpy as np
    img = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    return np.nonzero((img.max(-1) - img.min(-1)) > min_chroma)


def point_on(locator, near: tuple[float, float] | None = None) -> tuple[float, float] | None:
    """Page coordinates of the coloured pixel of `locator`'s screenshot closest to `near` (default: its
    centre) -- a drawn point of a scatter canvas to hover or click; None when nothing is drawn."""
    import numpy as np
    box = locator.bounding_box()
    ys, xs = coloured_pixels(locator.screenshot())
    if len(xs) == 0:
        return None
    nx, ny = near if near else (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    d = (xs + box["x"] - nx) ** 2 + (ys + box["y"] - ny) ** 2
    i = int(np.argmin(d))
    return float(xs[i] + box["x"] + 0.5), float(ys[i] + box["y"] + 0.5)


def run_cell(page, index: int, tries: int = 3) -> None:
    """Select cell `index` (command mode) and run it with Shift+Enter; returns once the kernel has taken
    it (the prompt shows [*] or a number), not when it is done. Retried when a key press is lost."""
    c = cell(page, index)
    prompt = c.locator(".jp-InputPrompt").first
    before = prompt.inner_text()
    for _ in range(tries):
        c.scroll_into_view_if_needed()
        prompt.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function("([e, b]) => e.innerText !== b && /\\[(\\*|\\d+)\\]/.test(e.innerText)",
                                   arg=[prompt.element_handle(), before], timeout=10_000)
            return
        except Exception:  # noqa: BLE001 - a key press before the kernel connected: press again
            continue
    raise TimeoutError(f"cell {index} did not start running")


def wait_cell_done(page, index: int, timeout_ms: int = 300_000) -> None:
    """Wait until cell `index` has finished (its prompt shows a number)."""
    prompt = cell(page, index).locator(".jp-InputPrompt").first
    page.wait_for_function("e => /\\[\\d+\\]/.test(e.innerText)", arg=prompt.element_handle(),
                           timeout=timeout_ms)


def screenshot_notebook(notebook: Path, out_png: Path, width: int = 1400, height: int = 1800,
                        budget_ms: int = 20000, timeout: float = 120.0) -> Path:
    """Capture `notebook` as rendered by JupyterLab into `out_png` (chromium --screenshot); returns the PNG."""
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install -y chromium)")
    out_png = Path(out_png).resolve()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nbshot-") as tmp:
        tmp = Path(tmp)
        (tmp / "nb").mkdir()
        shutil.copy(notebook, tmp / "nb" / notebook.name)
        with lab_server(tmp / "nb", timeout) as url:
            shot = [browser, "--headless", *CHROMIUM_FLAGS, "--hide-scrollbars",
                    f"--user-data-dir={tmp / 'chrome'}", f"--window-size={width},{height}",
                    f"--virtual-time-budget={budget_ms}", f"--screenshot={out_png}",
                    f"{url}/lab/tree/{notebook.name}"]
            r = subprocess.run(shot, capture_output=True, text=True, timeout=timeout,
                               env=dict(os.environ, HOME=str(tmp)))
            if not out_png.is_file():
                raise RuntimeError(f"chromium wrote no screenshot (rc {r.returncode}): {r.stderr[-1500:]}")
    return out_png


def pixel_stats(png: Path) -> tuple[float, int]:
    """(pixel standard deviation, number of distinct grey levels) of a PNG: ~0 / 1 for a blank page."""
    import matplotlib.image as mpimg
    import numpy as np
    img = mpimg.imread(str(png))[..., :3]
    grey = (img.mean(-1) * 255).round().astype(int)
    return float(img.std()), int(len(np.unique(grey)))


if __name__ == "__main__":
    path = screenshot_notebook(Path(sys.argv[1]).resolve(), Path(sys.argv[2]))
    print(path, pixel_stats(path))
