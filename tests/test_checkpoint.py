"""Atomic save, safe load, released-format import/export (docs/method.md §3)."""
import os
import pickle
import zipfile
from collections import OrderedDict

import pytest
import torch

from crisscross_core.checkpoint import (CheckpointError, atomic_save, export_backbone, load_backbone,
                                        load_released, safe_load)
from crisscross_core.models import AudioResNet, CrissCross, R2Plus1D

torch.set_num_threads(1)


def randomised(module, seed=0):
    """Fill every parameter and buffer (BN running stats, counters) with random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dtype.is_floating_point:
                t.copy_(torch.rand(t.shape, generator=g) + 0.1)
            else:
                t.fill_(int(torch.randint(1, 1000, (), generator=g)))
    return module


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


def wrap_zip(src, dst, compression=zipfile.ZIP_STORED, extra=()):
    with zipfile.ZipFile(dst, "w", compression) as zf:
        for name in extra:
            zf.writestr(name, b"")
        zf.write(src, arcname=os.path.basename(src))
    return dst


class Evil:
    """Unpickling this would create a marker file."""
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ----------------------------------------------------------------------------- atomic save

def test_atomic_save_round_trip_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "ck.pt"
    atomic_save({"a": torch.arange(5), "step": 3}, path)
    atomic_save({"a": torch.arange(7), "step": 4}, path)
    obj = safe_load(path)
    assert obj["step"] == 4 and torch.equal(obj["a"], torch.arange(7))
    assert sorted(p.name for p in path.parent.iterdir()) == ["ck.pt"]


def test_atomic_save_failure_keeps_previous_file(tmp_path):
    path = tmp_path / "ck.pt"
    atomic_save({"step": 1}, path)
    with pytest.raises(Exception):
        atomic_save({"step": 2, "bad": lambda: 0}, path)  # lambdas cannot be pickled
    assert safe_load(path) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


# ----------------------------------------------------------------------------- refusing unsafe / broken files

@pytest.mark.parametrize("how", ["pickle", "torch_save", "zip_wrapped"])
def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path, how):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth.tar"
    if how == "pickle":
        with open(path, "wb") as f:
            pickle.dump({"conv1.0.weight": Evil(marker)}, f, protocol=2)
    else:
        torch.save({"conv1.0.weight": Evil(marker)}, path)
    if how == "zip_wrapped":
        path = wrap_zip(path, tmp_path / "evil.pth.tar.zip")
    with pytest.raises(CheckpointError, match="refused") as info:
        load_released(path, "video")
    assert str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["text", "truncated", "empty", "missing", "bad_zip_member"])
def test_unreadable_files_raise_checkpoint_error_naming_the_path(tmp_path, kind):
    path = tmp_path / f"{kind}.pth.tar"
    if kind == "text":
        path.write_text("this is not a checkpoint\n" * 10)
    elif kind == "truncated":
        atomic_save(OrderedDict(w=torch.randn(1000)), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "bad_zip_member":
        inner = tmp_path / "inner.pth.tar"
        inner.write_text("garbage")
        path = wrap_zip(inner, tmp_path / "w.zip")
    with pytest.raises(CheckpointError) as info:
        safe_load(path)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- released-format import / export

def test_export_matches_release_format_and_round_trips_bit_exact(tmp_path):
    src = randomised(R2Plus1D(18))
    path = export_backbone(src, tmp_path / "vid_crisscross_test.pth.tar")
    raw = safe_load(path)
    assert type(raw) is OrderedDict and len(raw) == 201
    assert list(raw) == list(src.state_dict())  # no prefix
    assert all(t.device.type == "cpu" for t in raw.values())
    dst = R2Plus1D(18)
    report = load_backbone(dst, path, "video")
    assert report.ok and len(report.loaded) == 201
    assert_same_state(src, dst)


def test_import_from_real_zip_bit_exact(tmp_path):
    src = randomised(AudioResNet(18, 0.25), seed=1)
    path = export_backbone(src, tmp_path / "aud_crisscross_x.pth.tar")
    zipped = wrap_zip(path, tmp_path / "aud_crisscross_x.pth.tar.zip", zipfile.ZIP_DEFLATED,
                      extra=("__MACOSX/", "__MACOSX/._aud_crisscross_x.pth.tar"))
    path.unlink()
    dst = AudioResNet(18, 0.25)
    load_backbone(dst, zipped, "audio")
    assert_same_state(src, dst)


@pytest.mark.parametrize("prefix", ["module.", "backbone.", "video_backbone.", "video_encoder.0.",
                                    "module.video_backbone.", "module.backbone."])
def test_import_strips_prefixes(tmp_path, prefix):
    src = randomised(R2Plus1D(10, 0.125), seed=2)
    state = OrderedDict((prefix + k, v) for k, v in src.state_dict().items())
    if "backbone." in prefix and "video" not in prefix:  # a fine-tuned model also has a classifier
        state[prefix.replace("backbone.", "classifier.") + "classifier.weight"] = torch.zeros(3, 64)
    path = atomic_save(state, tmp_path / "prefixed.pth.tar")
    dst = R2Plus1D(10, 0.125)
    assert load_backbone(dst, path, "video").ok
    assert_same_state(src, dst)


def test_import_from_full_training_checkpoint_with_aliases(tmp_path):
    model = randomised(CrissCross(video_depth=10, video_width=0.125, audio_width=0.125, proj_dim=32,
                                  proj_layers=2, pred_hidden=8), seed=3)
    state = OrderedDict()
    for k, v in model.state_dict().items():  # the release's DDP layout: module. + encoder aliases
        state["module." + k] = v
        for mod in ("video", "audio"):
            if k.startswith(f"{mod}_backbone."):
                state[f"module.{mod}_encoder.0." + k[len(mod) + 10:]] = v
    path = tmp_path / "checkpoint.pth.tar"
    atomic_save({"model": state, "epoch": 3, "optimizer": {"state": {}}}, path)
    vid, aud = R2Plus1D(10, 0.125), AudioResNet(18, 0.125)
    load_backbone(vid, path, "video")
    load_backbone(aud, path, "audio")
    assert_same_state(model.video_backbone, vid)
    assert_same_state(model.audio_backbone, aud)
    video_only = tmp_path / "video_only.pt"
    atomic_save({k: v for k, v in state.items() if "video" in k}, video_only)
    with pytest.raises(CheckpointError, match="no audio backbone keys"):
        load_released(video_only, "audio")


def test_mismatch_report_names_keys_and_file(tmp_path):
    vid_path = export_backbone(R2Plus1D(10, 0.125), tmp_path / "vid.pth.tar")
    aud = AudioResNet(18, 0.125)
    before = {k: v.clone() for k, v in aud.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_backbone(aud, vid_path, "audio")
    msg = str(info.value)
    assert str(vid_path) in msg and "missing" in msg and "block1.0.conv1.weight" in msg
    assert "unexpected" in msg and "conv2x.0.spt_conv1.weight" in msg
    assert all(torch.equal(before[k], v) for k, v in aud.state_dict().items())  # nothing loaded

    wide = R2Plus1D(10, 0.25)
    with pytest.raises(CheckpointError, match=r"wrong shape: conv1\.0\.weight: file \(8, 3, 3, 7, 7\)"):
        load_backbone(wide, vid_path, "video")
    report = load_backbone(wide, vid_path, "video", strict=False)
    assert not report.ok and ("conv1.0.weight", (8, 3, 3, 7, 7), (16, 3, 3, 7, 7)) in report.wrong_shape
    assert "conv1.1.num_batches_tracked" in report.loaded


def test_non_state_dict_content_is_rejected(tmp_path):
    path = atomic_save({"epoch": 3, "note": "no tensors"}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="state dict"):
        load_released(path, "video")
