"""`crisscross evaluate` end to end on the embedded demo data (crisscross_core.data.synthetic)."""
import pytest
import torch

from crisscross_core.evaluate.results import load_results

synthetic = pytest.importorskip("crisscross_core.data.synthetic")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    return synthetic.make_demo_dataset(d, n_train=16, n_test=8, num_classes=4, workers=1)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as the trainer leaves it: exported vid_/aud_ backbones (random, tiny)."""
    from crisscross_core.checkpoint import export_backbone
    from crisscross_core.models.audio import AudioResNet
    from crisscross_core.models.video import R2Plus1D
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("run")
    export_backbone(R2Plus1D(depth=10, width=0.25), d / "vid_crisscross_demo.pth.tar")
    export_backbone(AudioResNet(width=0.25), d / "aud_crisscross_demo.pth.tar")
    return d


@pytest.mark.slow
def test_cli_on_demo_data(demo, run_dir, tmp_path):
    from crisscross_core.evaluate.cli import main
    torch.set_num_threads(2)
    out = tmp_path / "res"
    common = ["--data", str(demo), "--out", str(out), "--no-progress", "--weights", str(run_dir),
              "--frames", "4", "--crop-size", "32", "--windows", "2", "--clip-duration", "1"]
    assert main(["retrieval", "--mode", "cross", "--test-split", "test"] + common) == 0
    rec = load_results(out)[-1]
    assert rec["weights"].endswith("vid_crisscross_demo.pth.tar")            # run dir → its exports
    assert rec["config"]["encoder"]["depth"] == 10 and len(rec["weights_sha256"]) == 64
    for d in ("audio_to_video", "video_to_audio"):
        r = rec["result"][d]
        assert r["n_queries"] == 8 and 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] <= 1 and r["R@20"] == 1.0
    assert main(["retrieval", "--mode", "audio"] + common) == 0
    assert load_results(out)[-1]["result"]["n_gallery"] == 16
    assert main(["knn", "--modality", "video", "--k", "5"] + common) == 0
    assert load_results(out)[-1]["result"]["n_test"] == 8
    ft_common = common[:common.index("--windows")]             # finetune takes no --windows / --clip-duration
    assert main(["finetune", "--epochs", "1", "--batch-size", "4", "--clips-per-video", "1",
                 "--test-windows", "2"] + ft_common) == 0
    ft = load_results(out)[-1]
    assert ft["protocol"] == "finetune" and ft["result"]["steps"] == 4 and ft["result"]["n_test"] == 8
    assert ft["pretrain"] is None                  # unknown pretraining: no paper number is claimed


@pytest.mark.parametrize("bad, message", [
    (["--test-split", "validation"], "no manifest rows with split tag 'validation'"),
    (["--data", "MISSING"], "MISSING"),
])
def test_cli_input_errors_are_one_line(demo, run_dir, tmp_path, capsys, bad, message):
    """A wrong split tag or a missing manifest ends `crisscross evaluate` with exit 2 and one line."""
    from crisscross_core.cli import main
    args = ["evaluate", "linear-probe", "--data", str(demo), "--out", str(tmp_path), "--no-progress",
            "--weights", str(run_dir), "--frames", "4", "--crop-size", "32", "--windows", "1"]
    if bad[0] == "--data":
        args[args.index("--data") + 1] = str(tmp_path / "MISSING.csv")
        bad = []
    assert main(args + bad) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
