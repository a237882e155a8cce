"""Result JSONs, tables beside the paper, and `crisscross evaluate` on released-format weights."""
import csv
import hashlib
import json
import zipfile

import pytest
import torch

from crisscross_core.evaluate.results import (PAPER, guess_pretrain, load_results, render_markdown,
                                              render_plain, write_result)

from shared_paths import SHARED
ESC = SHARED / "esc10"


def test_write_load_render(tmp_path):
    res = {"mean": 0.8, "std": 0.02, "per_fold": [{"fold": "1", "acc": 0.78}, {"fold": "2", "acc": 0.82}]}
    run = {"folds": "5/5", "crops": 100, "windows": 10, "seed": 3, "solver": "torch", "partial": False}
    p = write_result("esc_svm", res, tmp_path, dataset="esc50", weights="/w/aud_crisscross_audioset.pth.tar",
                     weights_sha256="ab" * 32, seed=3, config={"crops": 100}, run=run)
    rec = json.loads(p.read_text())
    for key in ("config", "weights_sha256", "seed", "timestamp", "mean", "std", "result", "run", "partial"):
        assert key in rec
    assert rec["pretrain"] == "audioset" and rec["result"]["per_fold"][1]["acc"] == 0.82
    recs = load_results(tmp_path)
    md, plain = render_markdown(recs), render_plain(recs)
    assert ("| esc50 | esc_svm | top1 | AudioSet (1.8M) | aud_crisscross_audioset.pth.tar | folds 5/5 · crops 100 · "
            "windows 10 · seed 3 · torch | 80.0 ± 2.0 | 90.5 | -10.5 |") in md
    assert "80.0 ± 2.0" in plain and "|" not in plain.splitlines()[0]


def test_partial_runs_are_marked_and_not_compared(tmp_path):
    """A 1-fold, 2-crop run is shown as PARTIAL, with no difference to the paper's number."""
    write_result("esc_svm", {"mean": 0.5, "std": 0.0}, tmp_path, dataset="esc50",
                 weights="aud_crisscross_kinetics_400.pth.tar", seed=0,
                 run={"folds": "1/5", "crops": 2, "windows": 10, "seed": 0, "partial": True})
    md = render_markdown(load_results(tmp_path))
    row = next(line for line in md.splitlines() if line.startswith("| esc50"))
    assert "folds 1/5 · crops 2 · windows 10 · seed 0 · PARTIAL" in row
    assert row.endswith("| 50.0 ± 0.0 | 86.8 | — (partial) |")
    with pytest.raises(ValueError, match="no 'mean'"):
        write_result("x", {}, tmp_path, dataset="d")


def test_guess_pretrain_from_released_names():
    assert guess_pretrain("vid_crisscross_kinetics_sound.pth.tar") == "kinetics_sound"
    assert guess_pretrain("aud_crisscross_kinetics_400.pth.tar.zip") == "kinetics400"
    assert guess_pretrain("runs/x/aud_crisscross_tiny.pth.tar") is None
    assert PAPER["kinetics400"]["esc50"] == 86.8


@pytest.mark.slow
@pytest.mark.skipif(not (ESC / "esc10.csv").is_file(), reason="../shared/data/esc10 absent")
def test_cli_esc_svm_and_knn_on_released_format_weights(tmp_path, capsys):
    from crisscross_core.checkpoint import export_backbone
    from crisscross_core.evaluate.cli import main
    from crisscross_core.models.audio import AudioResNet
    torch.manual_seed(0)
    rows = list(csv.DictReader(open(ESC / "esc10.csv")))
    sub = [r for f in ("1", "2", "3") for r in [r for r in rows if r["fold"] == f][:8]]
    man = tmp_path / "esc50_subset.csv"
    with open(man, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(sub)
    inner = export_backbone(AudioResNet(width=0.25), tmp_path / "aud_crisscross_kinetics_400.pth.tar")
    zipped = tmp_path / "aud_crisscross_kinetics_400.pth.tar.zip"          # the release's .zip wrapping
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(inner, inner.name)
    out = tmp_path / "res"
    common = ["--data", str(man), "--root", str(ESC), "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(["esc-svm", "--weights", str(zipped), "--crops", "1", "--c-grid", "0.01,1",
                 "--folds", "1"] + common) == 0
    rec = load_results(out)[-1]
    assert rec["protocol"] == "esc_svm" and rec["dataset"] == "esc50" and rec["pretrain"] == "kinetics400"
    assert rec["weights_sha256"] == hashlib.sha256(zipped.read_bytes()).hexdigest()
    assert rec["config"]["encoder"]["width"] == 0.25 and len(rec["result"]["per_fold"]) == 1
    assert main(["knn", "--modality", "audio", "--weights", str(inner), "--train-split", "train-1",
                 "--test-split", "test-1", "--windows", "2", "--clip-duration", "1", "--k", "3"] + common) == 0
    knn = load_results(out)[-1]
    assert knn["protocol"] == "knn_audio" and knn["result"]["n_test"] == 8 and knn["result"]["n_train"] == 16
    capsys.readouterr()
    assert main(["table", "--results", str(out)]) == 0
    table = capsys.readouterr().out
    assert "86.8" in table and "knn_audio" in table


def test_run_settings_are_taken_from_the_result_when_not_given(tmp_path):
    """A protocol result written from Python (e.g. a notebook) still shows folds, crops, seed, partial."""
    res = {"mean": 0.6, "std": 0.1, "folds_run": ["1", "2"], "folds_total": 5, "crops": 3, "windows": 10,
           "seed": 4, "solver": "torch", "partial": True}
    rec = json.loads(write_result("esc_svm", res, tmp_path, dataset="esc10").read_text())
    assert rec["run"] == {"folds": "2/5", "crops": 3, "windows": 10, "seed": 4, "solver": "torch", "partial": True}
    assert rec["partial"] is True
