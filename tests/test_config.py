"""Configs: presets hold the release's values (docs/method.md §7), YAML round trip, overrides, errors that name the key."""
import pytest

from crisscross_core.config import PRESETS, Config, ConfigError, load_config, save_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_yaml_round_trip(name, tmp_path):
    cfg = load_config(name)
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_paper_preset_matches_release():
    c = load_config("paper_kinetics400")
    assert (c.optim.video_lr, c.optim.audio_lr, c.optim.video_pred_lr, c.optim.audio_pred_lr) == (
        2e-4, 2e-4, 2e-3, 2e-3)
    assert (c.optim.final_lr, c.optim.weight_decay, c.optim.larc_trust) == (1e-4, 1e-4, 1e-3)
    assert (c.optim.batch_size, c.optim.epochs, c.optim.warmup_epochs) == (2048, 100, 2.0)
    assert (c.data.relation, c.data.video_duration, c.data.audio_duration) == ("overlapped", 0.5, 2.0)
    assert (c.data.clips_per_video, c.aug.video.crop_size, c.aug.audio.n_mels) == (5, 112, 80)
    assert (c.model.proj_layers, c.model.proj_dim, c.model.pred_hidden) == (3, 2048, 512)
    assert c.optim.legacy_lr_offset is False and c.aug.video.legacy_blur is False


def test_overrides_are_typed():
    c = load_config("tiny_cpu", ["optim.video_lr=1e-3", "optim.epochs=3", "loss.sync=false",
                                 "data.decode_size=[64,80]", "train.run_dir=/tmp/x"])
    assert c.optim.video_lr == 1e-3 and c.optim.epochs == 3 and c.loss.sync is False
    assert c.data.decode_size == (64, 80) and c.train.run_dir == "/tmp/x"


@pytest.mark.parametrize("override,key", [
    ("optim.lrr=1", "optim.lrr"),
    ("nope.x=1", "nope"),
    ("optim.epochs=abc", "optim.epochs"),
    ("loss.sync=maybe", "loss.sync"),
    ("data.decode_size=[1,2,3]", "data.decode_size"),
    ("data.relation=sideways", "data.relation"),
])
def test_bad_override_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        load_config("tiny_cpu", [override])


def test_unknown_yaml_key_named(tmp_path):
    (tmp_path / "c.yaml").write_text("optim:\n  batch_size: 8\n  warmpu_epochs: 1\n")
    with pytest.raises(ConfigError, match=r"optim\.warmpu_epochs"):
        load_config(tmp_path / "c.yaml")


def test_missing_source_is_clear():
    with pytest.raises(ConfigError, match="neither a preset"):
        load_config("no_such_preset_or_file.yaml")


def test_all_groups_off_rejected():
    with pytest.raises(ConfigError, match="loss"):
        load_config("tiny_cpu", ["loss.intra=false", "loss.sync=false", "loss.asynchronous=false"])


def test_default_config_is_valid():
    assert Config().validate().name == "custom"
