"""Render an executed notebook in JupyterLab and capture it with headless Chromium (a test helper).

    png = screenshot_notebook(Path("executed/00_quickstart.ipynb"), Path("artifacts/notebook_00.png"))

Starts `jupyter lab` on a free 127.0.0.1 port with no token in a temporary directory holding a copy of
the notebook, waits until it answers, runs Chromium headless on `/lab/tree/<nb>.ipynb`, then stops the
server (by its own process id). Also `python tests/notebook_screenshot.py NB.ipynb OUT.png`.
"""
from __future__ import annotations

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


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
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


def screenshot_notebook(notebook: Path, out_png: Path, width: int = 1400, height: int = 1800,
                        budget_ms: int = 20000, timeout: float = 120.0) -> Path:
    """Capture `notebook` as rendered by JupyterLab into `out_png`; returns the PNG path."""
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install -y chromium)")
    out_png = Path(out_png).resolve()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nbshot-") as tmp:
        tmp = Path(tmp)
        (tmp / "nb").mkdir()
        shutil.copy(notebook, tmp / "nb" / notebook.name)
        port = free_port()
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "cfg"), JUPYTER_DATA_DIR=str(tmp / "data"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), HOME=str(tmp))
        # keep the system's data dirs (lab extensions such as ipywidgets) visible
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (os.environ.get("JUPYTER_PATH", ""),
                                                          str(Path(sys.prefix) / "share" / "jupyter")) if p)
        # workspace/settings: open the notebook alone, no announcement popups
        settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            '{"fetchNews": "false", "checkForUpdates": false}')
        # trusted, so that saved widget state and rich outputs render as they would for the author
        subprocess.run([sys.executable, "-m", "jupyter", "trust", str(tmp / "nb" / notebook.name)], env=env,
                       capture_output=True, timeout=60)
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.token=",
               "--ServerApp.password=", "--ServerApp.ip=127.0.0.1", "--allow-root",
               f"--ServerApp.root_dir={tmp / 'nb'}", f"--LabApp.user_settings_dir={tmp / 'settings'}",
               f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--ServerApp.open_browser=False"]
        log = open(tmp / "lab.log", "w")
        proc = subprocess.Popen(cmd, cwd=tmp / "nb", env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            _wait_http(f"http://127.0.0.1:{port}/api", timeout, proc)
            shot = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                    f"--user-data-dir={tmp / 'chrome'}", f"--window-size={width},{height}",
                    f"--virtual-time-budget={budget_ms}", f"--screenshot={out_png}",
                    f"http://127.0.0.1:{port}/lab/tree/{notebook.name}"]
            r = subprocess.run(shot, capture_output=True, text=True, timeout=timeout, env=env)
            if not out_png.is_file():
                raise RuntimeError(f"chromium wrote no screenshot (rc {r.returncode}): {r.stderr[-1500:]}")
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
