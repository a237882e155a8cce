"""Sweeps (crisscross_core.sweep): a grid of runs, each in its own run directory, re-attachable, with
only the missing or failed runs resubmitted; the table, verdict and figure over their readouts.
(The Slurm job-array version of the same flow is in tests/test_slurm.py.)"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from crisscross_core.config import ConfigError  # noqa: E402
from crisscross_core.sweep import READOUTS, Sweep, attach_sweep, expand, run_name, sweep  # noqa: E402

TESTS = Path(__file__).resolve().parent
FAKE = "launch_helpers:fake_train"


def test_grid_expands_to_named_runs_per_seed():
    sets = expand({"data.relation": ["overlapped", "far_apart"], "loss.asynchronous": [True, False]}, seeds=[0, 1])
    assert len(sets) == 8 and sets[0] == ["data.relation=overlapped", "loss.asynchronous=true", "train.seed=0"]
    assert run_name(sets[0]) == "relation=overlapped__asynchronous=true__seed=0"
    assert len({run_name(s) for s in sets}) == 8
    with pytest.raises(ConfigError, match="either grid"):
        expand()


def test_a_bad_value_is_refused_before_anything_is_submitted(tmp_path):
    with pytest.raises(ConfigError, match=r"sweep run 'relation=nowhere'.*data\.relation"):
        sweep("tiny_cpu", grid={"data.relation": ["overlapped", "nowhere"]}, sweep_dir=tmp_path / "s",
              target=FAKE, python_path=[str(TESTS)])
    assert not list((tmp_path / "s").glob("*/"))


def test_local_sweep_shows_failures_and_resubmits_only_them(tmp_path, demo_manifest):
    later = tmp_path / "later.csv"                       # missing at first: that run fails
    runs = [["train.seed=0"], ["train.seed=1"], [f"data.manifest={later}"]]
    kw = dict(runs=runs, overrides=["optim.max_steps=2"], sweep_dir=tmp_path / "s", target=FAKE,
              python_path=[str(TESTS)], max_parallel=2, time_min=5)
    s = sweep("tiny_cpu", **kw)
    assert s.wait(timeout=300) == {"seed=0": "COMPLETED", "seed=1": "COMPLETED", "manifest=later": "FAILED"}
    assert "data.manifest" in s.errors()["manifest=later"]
    done = {r["name"]: (Path(r["run_dir"]) / "sweep_task.json").stat().st_mtime_ns for r in s.runs}
    shutil.copy(demo_manifest, later)                    # the cause is removed
    again = sweep("tiny_cpu", **kw)                      # the same cell, run again
    assert again.status()["seed=0"] == "COMPLETED"
    assert again.wait(timeout=300) == {"seed=0": "COMPLETED", "seed=1": "COMPLETED", "manifest=later": "COMPLETED"}
    after = {r["name"]: (Path(r["run_dir"]) / "sweep_task.json").stat().st_mtime_ns for r in again.runs}
    assert after["seed=0"] == done["seed=0"] and after["seed=1"] == done["seed=1"]   # not rerun
    assert after["manifest=later"] != done["manifest=later"]
    rows = attach_sweep(tmp_path / "s").rows()
    assert len(rows) == 3 and all(r["state"] == "COMPLETED" and r["step"] == 2 for r in rows)


def _fake_run(root: Path, name: str, overrides: list, metric: float, **readout) -> dict:
    d = root / name
    d.mkdir(parents=True)
    (d / "sweep_task.json").write_text(json.dumps({"state": "COMPLETED", "time": 1, "started": 0, "ended": 5,
                                                   "readout": {"knn_video": metric, **readout}}))
    (d / "metrics.jsonl").write_text(json.dumps({"kind": "step", "step": 10, "loss": -0.5}) + "\n")
    return {"name": name, "overrides": overrides, "run_dir": str(d)}


def test_summary_verdict_and_figure_rank_settings_over_seeds(tmp_path):
    runs = [_fake_run(tmp_path, f"{rel}{seed}", [f"data.relation={rel}", f"train.seed={seed}"], v)
            for rel, seed, v in [("overlapped", 0, 0.80), ("overlapped", 1, 0.84), ("far_apart", 0, 0.60),
                                 ("far_apart", 1, 0.64)]]
    s = Sweep(tmp_path, {"runs": runs})
    ranked = s.summary("knn_video", ["data.relation"])
    assert [r["data.relation"] for r in ranked] == ["overlapped", "far_apart"]
    assert ranked[0]["mean"] == pytest.approx(0.82) and ranked[0]["n"] == 2
    assert ranked[0]["std"] == pytest.approx(0.0283, abs=1e-3)
    v = s.verdict("knn_video", ["data.relation"])
    assert "data.relation=overlapped" in v and "by 0.2000" in v and "more than two standard deviations" in v
    fig = s.plot("knn_video", x="data.relation")
    heights = sorted(round(p.get_height(), 3) for p in fig.axes[0].patches)
    assert heights == [0.62, 0.82]
    fig = s.plot("knn_video", x="data.relation", chance=1 / 12)
    (line,) = fig.axes[0].lines[-1:]
    assert list(line.get_ydata()) == pytest.approx([1 / 12] * 2) and "chance" in line.get_label()


def test_one_seed_verdict_weighs_the_difference_against_the_readouts_sampling_error(tmp_path):
    """With one seed there is no spread: a kNN difference is then compared with its binomial standard
    error over the held-out clips, so 0.05 on 200 clips is not announced as a clear win."""
    def verdict(a, b, n):
        root = tmp_path / f"{a}-{b}-{n}"
        runs = [_fake_run(root, rel, [f"data.relation={rel}"], v, n_items=n, knn_audio=v / 2)
                for rel, v in [("overlapped", a), ("far_apart", b)]]
        return Sweep(root, {"runs": runs}).verdict("knn_video", ["data.relation"])
    close = verdict(0.20, 0.15, 200)             # s.e. = sqrt(.2*.8/200 + .15*.85/200) = 0.0379
    assert "within two binomial standard errors of the difference, 0.0379, over 200 held-out clips" in close
    far = verdict(0.60, 0.30, 200)               # s.e. = sqrt(.6*.4/200 + .3*.7/200) = 0.0474
    assert "more than two binomial standard errors" in far and "0.0474" in far
    runs = [_fake_run(tmp_path / "gap", rel, [f"data.relation={rel}"], v, sync_gap=v)
            for rel, v in [("overlapped", 0.2), ("far_apart", 0.1)]]
    assert "no spread to compare with" in Sweep(tmp_path / "gap", {"runs": runs}).verdict("sync_gap", ["data.relation"])


def test_figure_draws_one_panel_per_readout_with_its_chance(tmp_path):
    runs = [_fake_run(tmp_path, f"{rel}{a}", [f"data.relation={rel}", f"loss.asynchronous={a}"], v, knn_audio=2 * v)
            for rel, a, v in [("overlapped", "true", 0.3), ("overlapped", "false", 0.2), ("far_apart", "true", 0.1),
                              ("far_apart", "false", 0.1)]]
    fig = Sweep(tmp_path, {"runs": runs}).plot(["knn_video", "knn_audio"], x="data.relation",
                                                hue="loss.asynchronous", chance={"knn_video": 0.25, "knn_audio": 0.5})
    assert [ax.get_title() for ax in fig.axes] == ["knn_video", "knn_audio"]
    for ax, scale, level in zip(fig.axes, (1, 2), (0.25, 0.5)):
        assert sorted(round(p.get_height(), 3) for p in ax.patches) == [round(scale * v, 3) for v in (0.1, 0.1, 0.2, 0.3)]
        assert list(ax.lines[-1].get_ydata()) == pytest.approx([level] * 2)


def test_cli_sweep_runs_a_grid_and_prints_the_verdict(tmp_path, demo_manifest, capsys):
    from crisscross_core.cli import main
    sets = [f"--set=data.manifest={demo_manifest}", "--set=optim.batch_size=8", "--set=data.num_workers=0",
            "--set=data.clips_per_video=1", "--set=optim.max_steps=2", "--set=train.progress=false"]
    assert main(["sweep", "-c", "tiny_cpu", "--grid", "data.relation=overlapped,nowhere", *sets,
                 "--sweep-dir", str(tmp_path / "bad")]) == 2
    assert "relation=nowhere" in capsys.readouterr().err
    code = main(["sweep", "-c", "tiny_cpu", "--grid", "loss.asynchronous=true,false", *sets,
                 "--readout-manifest", str(demo_manifest), "--readout-split", "test", "--max-parallel", "1",
                 "--metric", "sync_gap", "--sweep-dir", str(tmp_path / "s"), "--wait"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("COMPLETED") == 2 and "sync_gap" in out and "asynchronous=" in out
    readout = json.loads(next((tmp_path / "s").glob("*/sweep_task.json")).read_text())["readout"]
    assert set(READOUTS) <= set(readout)                  # --metric's choices are what runs record
    with pytest.raises(SystemExit) as e:                  # a misspelt readout: refused before any work
        main(["sweep", "-c", "tiny_cpu", "--grid", "loss.asynchronous=true", *sets, "--metric", "knn_vido",
              "--sweep-dir", str(tmp_path / "typo")])
    assert e.value.code == 2 and "knn_vido" in capsys.readouterr().err and not (tmp_path / "typo").exists()


def test_misspelt_key_or_readout_is_named_not_pooled(tmp_path):
    """Grouping by a key no run sweeps would pool every run into one "setting"; ranking by a readout no
    run reports would say nothing. Both are errors naming the word and what there is instead."""
    runs = [_fake_run(tmp_path, f"{rel}{a}", [f"data.relation={rel}", f"loss.asynchronous={a}"], v)
            for rel, a, v in [("overlapped", "true", 0.3), ("overlapped", "false", 0.2), ("far_apart", "true", 0.1),
                              ("far_apart", "false", 0.1)]]
    s = Sweep(tmp_path, {"runs": runs})
    with pytest.raises(ConfigError, match=r"'data.relaton' is not a swept key; swept: data.relation, loss.asynchronous"):
        s.verdict("knn_video", ["data.relaton"])
    with pytest.raises(ConfigError, match=r"no completed run reports 'knn_vido'; they report: .*knn_video"):
        s.summary("knn_vido", ["data.relation"])
    v = s.verdict("knn_video", ["data.relation"])          # std over the loss groups, not over seeds
    assert "over the runs pooled across loss.asynchronous" in v and "seeds" not in v


@pytest.mark.parametrize("n_runs, cores, avail_gb, expected", [
    (8, 2, 23.0, 2),        # the project's 2-core box: one run per core
    (8, 16, 9.0, 4),        # many cores, little memory: memory caps it (2 GB per run)
    (3, 16, 100.0, 3),      # never more than there are runs
    (8, 1, 0.5, 1),         # always at least one
])
def test_local_sweeps_run_one_per_core_within_memory(n_runs, cores, avail_gb, expected):
    from crisscross_core.viz.notebook import local_parallelism
    n, why = local_parallelism(n_runs, cores=cores, avail_gb=avail_gb)
    assert n == expected and f"{cores} cores" in why and f"{avail_gb:.0f} GB available" in why
