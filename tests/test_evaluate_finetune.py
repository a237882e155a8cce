"""Fine-tuning (UCF/HMDB) and fc-tuning (DCASE) end to end on small real data (docs/method.md §9, docs/evaluation.md)."""

import pytest
import torch

from crisscross_core.evaluate.finetune import (FT_TABLE, FinetuneConfig, VideoClassifier, finetune_hparams,
                                               run_finetune)

from shared_paths import SHARED
CLIPS = SHARED / "clips" / "manifest.csv"
ESC10 = SHARED / "esc10" / "esc10.csv"


def test_hyperparameter_table_matches_spec():
    assert len(FT_TABLE) == 8
    assert finetune_hparams("ucf101", "kinetics400", 8) == finetune_hparams("ucf101", "kinetics_sound", 8) == \
        dict(batch_size=64, lr=5e-4, gamma=0.3, milestones=(6, 10, 14), dropout=0.0)
    assert finetune_hparams("ucf101", "audioset", 8)["dropout"] == 0.1
    assert finetune_hparams("hmdb51", "audioset", 32) == dict(batch_size=32, lr=1e-4, gamma=0.1,
                                                              milestones=(6, 10, 14), dropout=0.5)
    assert finetune_hparams("hmdb51", "kinetics400", 32)["lr"] == 1e-4
    with pytest.raises(KeyError, match="frames=16"):
        finetune_hparams("ucf101", "kinetics400", 16)


def test_video_classifier_uses_max_pooled_conv5x():
    from crisscross_core.models.video import R2Plus1D
    torch.manual_seed(0)
    m = VideoClassifier(R2Plus1D(depth=10, width=0.25), 7).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    conv5 = m.backbone(x, return_embs=True)["conv5x"]
    expect = m.fc(conv5.amax(dim=(2, 3, 4)))
    assert torch.allclose(m(x), expect, atol=1e-5)
    w = m.fc.weight
    assert torch.allclose(w @ w.T, torch.eye(7), atol=1e-4) and m.fc.bias.abs().sum() == 0   # orthogonal rows


@pytest.mark.slow
@pytest.mark.skipif(not CLIPS.is_file(), reason="../shared/data/clips absent")
def test_finetune_end_to_end_on_clips():
    from crisscross_core.evaluate.media import load_items
    from crisscross_core.models.video import R2Plus1D
    torch.set_num_threads(2)
    items, names = load_items(CLIPS)
    tr, te = items[::2], items[1::2]
    bb = R2Plus1D(depth=10, width=0.25)
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    cfg = FinetuneConfig(frames=4, crop_size=32, epochs=2, batch_size=4, lr=1e-2, milestones=(1,), gamma=0.1,
                         clips_per_video=1, test_clips=3, eval_each_epoch=True)
    res = run_finetune(bb, tr, te, len(names), cfg, progress=False)
    assert res["steps"] == 2 * (len(tr) // 4)
    assert [e["lr"] for e in res["per_epoch"]] == pytest.approx([1e-3, 1e-3])   # MultiStepLR per epoch
    assert 0 <= res["mean"] <= res["best_over_epochs_test"] <= 1 and res["n_test"] == len(te)
    changed = [k for k, v in bb.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert any(k.startswith("conv1") for k in changed)          # full fine-tuning: the stem moved too


@pytest.mark.slow
@pytest.mark.skipif(not ESC10.is_file(), reason="../shared/data/esc10 absent")
def test_fctune_trains_head_only_with_dense_test():
    from crisscross_core.evaluate.fctune import FCTuneConfig, run_fctune
    from crisscross_core.evaluate.media import load_items
    from crisscross_core.models.audio import AudioResNet
    torch.set_num_threads(2)
    torch.manual_seed(0)
    items, names = load_items(ESC10)
    tr = [it for it in items if it.fold == "1"][:30]
    te = [it for it in items if it.fold == "2"][:10]
    bb = AudioResNet(width=0.25).eval()
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    cfg = FCTuneConfig(epochs=3, crops_per_epoch=4, distinct_epochs=2, batch_size=32, test_windows=6)
    res = run_fctune(bb, tr, te, len(names), cfg, progress=False)
    assert res["feature_dim"] == 128 * 3 * 1                 # 1 s clip: conv5x 3×4 → pool → 3×1
    assert len(res["per_epoch"]) == 3 and res["mean"] == res["per_epoch"][-1]["test_top1"]
    assert res["per_epoch"][0]["loss"] is not None
    for k, v in bb.state_dict().items():
        assert torch.equal(v, before[k]), f"frozen backbone changed: {k}"
    with pytest.raises(ValueError, match="both train and test"):
        run_fctune(bb, tr, tr[:2], len(names), cfg, progress=False)
