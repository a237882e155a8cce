"""The README's quickstart for your own folder of videos runs as written, from the repository root."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shared_paths import SHARED

REPO = Path(__file__).resolve().parents[1]


def quickstart_block(name: str) -> list[str]:
    """The shell commands of the fenced block after `<!-- quickstart: name -->` (continuations joined)."""
    text = (REPO / "README.md").read_text()
    m = re.search(rf"<!-- quickstart: {name} -->\s*```bash\n(.*?)```", text, re.S)
    assert m, f"README.md has no quickstart block {name!r}"
    return [c.strip() for c in m.group(1).replace("\\\n", " ").splitlines() if c.strip()]


@pytest.mark.slow
def test_own_videos_quickstart_runs_as_written():
    if not (SHARED / "clips").is_dir():
        pytest.skip(f"{SHARED / 'clips'} is absent")
    if not (REPO / ".venv" / "bin" / "crisscross").exists():
        pytest.skip("the commands call .venv/bin/crisscross (make setup)")
    out = REPO / "runs" / "quickstart"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    commands = quickstart_block("own-videos")
    assert len(commands) == 4
    for cmd in commands:
        r = subprocess.run(cmd, shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{cmd}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"
        assert "Traceback" not in r.stderr, r.stderr[-1500:]
    report = json.loads((out / "run" / "data_report.json").read_text())
    assert report["dropped_counts"].get("no_audio") == 6                     # what the README says
    assert (out / "run" / "vid_crisscross_tiny_cpu.safetensors").is_file()
    emb = json.loads((out / "emb" / "embeddings.json").read_text())
    assert emb["complete"]
    result = json.loads(next((out / "results").glob("*.json")).read_text())
    assert result["protocol"].startswith("retrieval") and 0.0 <= result["mean"] <= 1.0
