"""Range checks for every config value, run when a config is loaded (before any work).

Types are checked by `config.from_dict` / `apply_overrides`; this module checks what types alone
cannot: ranges, choices and the few relations between keys. Each failure is a `ConfigError` whose
one line names the key, the value and the allowed range, e.g.

    config key 'train.log_every' = 0 is out of range: an integer ≥ 1 (steps between loss logs)

`RULES` is the one list of ranges (docs/configuration.md quotes it).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from .config import RELATIONS, ConfigError   # config imports this module only inside Config.validate


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def at_least(lo: float, what: str = "") -> tuple[Callable[[Any], bool], str]:
    kind = "an integer" if isinstance(lo, int) else "a number"
    return (lambda v: _num(v) and v >= lo), f"{kind} ≥ {lo}" + (f" ({what})" if what else "")


def above(lo: float, what: str = "") -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _num(v) and v > lo), f"a number > {lo}" + (f" ({what})" if what else "")


def between(lo: float, hi: float, what: str = "") -> tuple[Callable[[Any], bool], str]:
    kind = "an integer" if isinstance(lo, int) and isinstance(hi, int) else "a number"
    return (lambda v: _num(v) and lo <= v <= hi), f"{kind} in [{lo}, {hi}]" + (f" ({what})" if what else "")


def one_of(*choices: Any) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices)


def interval(lo: float, hi: float, what: str = "") -> tuple[Callable[[Any], bool], str]:
    """A pair (a, b) with lo <= a <= b <= hi."""
    return ((lambda v: len(v) == 2 and all(_num(x) for x in v) and lo <= v[0] <= v[1] <= hi),
            f"a pair [a, b] with {lo} ≤ a ≤ b ≤ {hi}" + (f" ({what})" if what else ""))


def positive_pair(what: str = "") -> tuple[Callable[[Any], bool], str]:
    return ((lambda v: len(v) == 2 and all(_num(x) for x in v) and 0 < v[0] <= v[1]),
            "a pair [a, b] with 0 < a ≤ b" + (f" ({what})" if what else ""))


PROB = between(0.0, 1.0, "a probability")

# key -> (predicate, allowed range in words). Keys missing from a config (e.g. a section another
# version of the kit has) are skipped, so the table may name keys a preset does not use.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model.video_depth": one_of(10, 18, 34),
    "model.video_width": between(1 / 64, 8.0, "channel multiplier; 1/64 keeps one channel per stage"),
    "model.audio_depth": (lambda v: v == 18, "18 (the original allows only 18)"),
    "model.audio_width": between(1 / 64, 8.0, "channel multiplier"),
    "model.proj_dim": at_least(1),
    "model.proj_layers": one_of(2, 3),
    "model.pred_hidden": at_least(1),
    "loss.vid_coeff": at_least(0.0, "a negative weight would maximise the loss"),
    "loss.aud_coeff": at_least(0.0, "a negative weight would maximise the loss"),
    "loss.cm_coeff": at_least(0.0, "a negative weight would maximise the loss"),
    "loss.ct_coeff": at_least(0.0, "a negative weight would maximise the loss"),
    "data.relation": one_of(*RELATIONS),
    "data.frame_mode": one_of("full", "centre_crop"),
    "data.video_fps": between(1.0, 240.0, "output frames per second"),
    "data.video_duration": between(0.01, 60.0, "seconds of video per view"),
    "data.audio_duration": between(0.05, 60.0, "seconds of audio per view"),
    "data.audio_rate": between(1000, 192000, "Hz"),
    "data.clips_per_video": at_least(1),
    "data.short_clip_policy": one_of("pad", "skip"),
    "data.no_audio_policy": one_of("skip", "silence"),
    "data.max_retries": at_least(0, "other items tried after an unreadable one"),
    "data.num_workers": between(0, 256, "DataLoader worker processes; 0 = decode in the main process"),
    "data.prefetch_factor": at_least(1, "batches each worker prepares ahead"),
    "data.decode_short_side": at_least(0, "pixels; 0 = native resolution"),
    "aug.video.crop_size": between(8, 1024, "pixels"),
    "aug.video.crop_scale": interval(0.0, 1.0, "area fraction; a must be > 0"),
    "aug.video.crop_ratio": positive_pair("aspect ratios"),
    "aug.video.flip_p": PROB, "aug.video.jitter_p": PROB, "aug.video.gray_p": PROB,
    "aug.video.blur_p": PROB, "aug.video.cutout_p": PROB,
    "aug.video.jitter": ((lambda v: len(v) == 4 and all(_num(x) and x >= 0 for x in v) and v[3] <= 0.5),
                         "[brightness, contrast, saturation, hue], each ≥ 0, hue ≤ 0.5"),
    "aug.video.blur_sigma": positive_pair("pixels"),
    "aug.video.cutout_max": between(1, 1024, "pixels"),
    "aug.video.std": ((lambda v: all(_num(x) and x > 0 for x in v)), "three numbers > 0"),
    "aug.audio.n_fft": between(16, 65536, "STFT size"),
    "aug.audio.hop": at_least(1, "samples"),
    "aug.audio.n_mels": at_least(1),
    "aug.audio.volume": between(0.0, 0.99, "gain jitter: U(1-v, 1+v)"),
    "aug.audio.freq_masks": at_least(0), "aug.audio.time_masks": at_least(0),
    "aug.audio.freq_mask_width": at_least(1, "widths are drawn from [0, width)"),
    "aug.audio.time_mask_width": at_least(1, "widths are drawn from [0, width)"),
    "aug.audio.resize_crop_scale": positive_pair(),
    "aug.audio.time_warp_window": at_least(1, "frames"),
    "optim.name": one_of("larc_adam", "adamw"),
    "optim.batch_size": at_least(1, "global batch over all ranks"),
    "optim.epochs": at_least(1, "0 would train nothing and export the random initialisation"),
    "optim.max_steps": at_least(0, "0 = the epochs decide"),
    "optim.warmup_epochs": at_least(0.0),
    "optim.video_lr": at_least(0.0), "optim.audio_lr": at_least(0.0),
    "optim.video_pred_lr": at_least(0.0), "optim.audio_pred_lr": at_least(0.0),
    "optim.final_lr": at_least(0.0),
    "optim.weight_decay": at_least(0.0),
    "optim.betas": ((lambda v: len(v) == 2 and all(_num(x) and 0 <= x < 1 for x in v)), "two numbers in [0, 1)"),
    "optim.larc_trust": above(0.0),
    "train.run_dir": ((lambda v: isinstance(v, str) and v.strip() != ""), "a non-empty directory path"),
    "train.seed": between(0, 2**32 - 1, "numpy and torch seeds must be non-negative"),
    "train.device": one_of("auto", "cpu", "cuda"),
    "train.amp": one_of("auto", "bf16", "fp16", "none"),
    "train.cpu_threads": between(0, 1024, "0 = cores minus data workers"),
    "train.checkpoint_every": at_least(1, "steps; a checkpoint is also written at every epoch end"),
    "train.log_every": at_least(1, "steps between loss logs"),
    "eval.every": at_least(0, "steps between online evaluations; 0 = only at the end"),
    "eval.max_items": between(2, 100_000, "clips evaluated online"),
    "eval.knn_k": at_least(1),
    "wandb.mode": one_of("online", "offline", "disabled"),
}


def _get(cfg: Any, key: str) -> tuple[bool, Any]:
    node = cfg
    for part in key.split("."):
        if not hasattr(node, part):
            return False, None
        node = getattr(node, part)
    return True, node


def _fail(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"config key '{key}' = {value!r} is out of range: {expected}")


def check_ranges(cfg: Any) -> None:
    """Raise ConfigError for the first value out of its range (RULES), then for relations between keys."""
    for key, (ok, expected) in RULES.items():
        present, value = _get(cfg, key)
        if present and not ok(value):
            raise _fail(key, value, expected)
    if not (cfg.loss.intra or cfg.loss.sync or cfg.loss.asynchronous):
        raise ConfigError("config keys 'loss.intra', 'loss.sync', 'loss.asynchronous' are all false: "
                          "at least one group of loss terms must be on")
    d, a = cfg.data, cfg.aug.audio
    if round(d.video_duration * d.video_fps) < 1:
        raise ConfigError(f"config keys 'data.video_duration' = {d.video_duration} and 'data.video_fps' = "
                          f"{d.video_fps} give no frame per view; their product must be ≥ 1")
    if a.n_mels > a.n_fft // 2 + 1:
        raise ConfigError(f"config key 'aug.audio.n_mels' = {a.n_mels} is out of range: at most "
                          f"n_fft/2 + 1 = {a.n_fft // 2 + 1} frequency bins (aug.audio.n_fft = {a.n_fft})")
    if d.audio_duration * d.audio_rate <= a.n_fft // 2:
        raise ConfigError(f"config key 'data.audio_duration' = {d.audio_duration} is too short for "
                          f"aug.audio.n_fft = {a.n_fft} at {d.audio_rate} Hz (needs > {a.n_fft / 2 / d.audio_rate:.3f} s)")
    short = decoded_short_side(d)
    crop = cfg.aug.video.crop_size
    if short and crop > short:
        raise ConfigError(f"config key 'aug.video.crop_size' = {crop} is out of range: at most the decoded "
                          f"frame's short side ({short} px, from data.decode_short_side / data.decode_size); "
                          "a crop larger than the frame only upsamples at great cost. Lower the crop or "
                          "raise data.decode_short_side")


def decoded_short_side(data_cfg: Any) -> int:
    """The short side (px) of the frames the workers hand over, when the config fixes it (else 0)."""
    size = getattr(data_cfg, "decode_size", None)
    if size and all(_num(s) and s > 0 for s in size):
        return int(min(size))
    return int(getattr(data_cfg, "decode_short_side", 0) or 0)
