"""The main job's plumbing at a tiny size: data → pretrain → evaluate vs random init → report."""
import json

import pytest

from crisscross_core.config import load_config


@pytest.mark.slow
def test_demo_writes_report_and_figures(tmp_path):
    from crisscross_core.demo import run_demo
    report = run_demo(tmp_path, ["optim.epochs=1", "optim.batch_size=16", "train.progress=false"],
                      n_train=32, n_test=16)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    steps_per_epoch = 32 * load_config("tiny_cpu").data.clips_per_video // 16
    assert on_disk["n_train"] == 32 and on_disk["n_test"] == 16 and on_disk["steps"] == steps_per_epoch
    for name in ("loss_curves.png", "collapse.png", "probe.png", "retrieval.png", "umap.png", "online_eval.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    online = on_disk["online_eval"]                        # evaluated every 50 steps and at the end
    assert online["n_items"] == 16 and [e["step"] for e in online["trajectory"]] == [steps_per_epoch]
    assert 0 < online["fraction_of_pretraining"] < 1 and "sync_gap" in online["trajectory"][0]
    for side in ("random_init", "pretrained"):
        r = on_disk[side]
        assert 0 <= r["probe_video"] <= 1 and 0 <= r["probe_audio"] <= 1
        assert 0 <= r["a2v_R@1"] <= r["a2v_R@5"] <= r["a2v_R@10"] <= 1
    assert on_disk["pretrained"]["retrieval_chance_r1"] == pytest.approx(1 / 16)
    gain = on_disk["pretrained"]["probe_audio"] - on_disk["random_init"]["probe_audio"]
    assert on_disk["probe_gain_points"]["audio"] == pytest.approx(round(100 * gain, 1))
    assert set(report["targets_met"]) == {"probe_gain_ge_15_points_each_modality",
                                          "retrieval_r1_ge_5x_chance", "total_le_10_min"}
    rep = on_disk["reproducibility"]
    assert rep["torch_threads"] == 1 and rep["blas_threads"] == [1]
    # a second run elsewhere: the same bytes of data, the same weights, features and numbers
    again = run_demo(tmp_path / "again", ["optim.epochs=1", "optim.batch_size=16", "train.progress=false"],
                     n_train=32, n_test=16)
    for key in ("data_md5", "checkpoint_model_md5", "test_features_md5"):
        assert again["reproducibility"][key] == rep[key], key
    assert again["pretrained"] == report["pretrained"] and again["random_init"] == report["random_init"]
