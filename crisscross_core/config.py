"""Typed configuration: dataclasses, presets, YAML round trip and dotted overrides.

A `Config` is a tree of small dataclasses. It is built from a preset name or a YAML file,
then adjusted with `key.sub=value` overrides. Unknown keys and values of the wrong type are
errors that name the key, raised before any work starts.

    cfg = load_config("tiny_cpu", ["optim.lr_video=1e-3", "train.run_dir=runs/x"])
    save_config(cfg, "runs/x/config.yaml"); assert load_config("runs/x/config.yaml") == cfg
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

RELATIONS = ("same_timestamp", "overlapped", "adjacent", "random", "far_apart",
             "v_far_a_same", "v_same_a_far")


class ConfigError(ValueError):
    """A config key or value is wrong; the message names the key and says what would fix it."""


@dataclass
class ModelConfig:
    video_depth: int = 18            # R(2+1)D depth: 10, 18 or 34
    video_width: float = 1.0         # channel multiplier on (64, 128, 256, 512)
    audio_depth: int = 18            # 2D ResNet depth (the original asserts 18)
    audio_width: float = 1.0
    proj_dim: int = 2048             # projector hidden and output width (z dim)
    proj_layers: int = 3             # 2 or 3 (docs/method.md §2.3)
    pred_hidden: int = 512           # predictor bottleneck (docs/method.md §2.4)
    pre_norm: bool = False           # L2-normalise z before the predictor and as target (docs/method.md §4)
    proj_out_affine: bool = True     # the projector's last BN is affine as released; False = SimSiam's


@dataclass
class LossConfig:
    intra: bool = True               # "joint": Lv1v2, La1a2
    sync: bool = True                # "cm":    Lv1a1, Lv2a2
    asynchronous: bool = True        # "ctcm":  Lv1a2, La1v2
    vid_coeff: float = 1.0
    aud_coeff: float = 1.0
    cm_coeff: float = 1.0
    ct_coeff: float = 1.0


@dataclass
class DataConfig:
    manifest: str = ""               # CSV manifest (data_manifests/README.md); "" = none
    root: str = ""                   # media root; "" = the manifest's directory
    split: str = "train"             # manifest rows whose split equals this ("" = all rows)
    relation: str = "overlapped"     # one of RELATIONS (docs/method.md §5.2)
    centred: bool = False            # centre the video window in the audio window (docs/deviations.md)
    video_fps: float = 16.0
    video_duration: float = 0.5      # seconds per view (8 frames at 16 fps)
    audio_duration: float = 2.0      # seconds per view
    audio_rate: int = 16000
    frame_mode: str = "full"         # "full": the whole frame, resized onto the decode_size canvas;
                                     # the random crop is drawn in the source frame's geometry (the
                                     # release); "centre_crop": short side -> decode_short_side, then a
                                     # centre crop to decode_size (faster; a smaller field of view)
    decode_short_side: int = 128     # centre_crop: frames resized so the short side is this (0 = native)
    decode_size: tuple = (256, 456)  # (H, W) every frame is decoded to, so batches stack (full: the
                                     # canvas; centre_crop: the crop)
    clips_per_video: int = 5         # an epoch visits every video this many times (docs/method.md §5)
    short_clip_policy: str = "pad"   # "pad" (repeat last frame / zero audio) or "skip"
    no_audio_policy: str = "skip"    # "skip" or "silence"
    max_retries: int = 10            # corrupt file: try up to this many other items, then raise
    num_workers: int = 2
    prefetch_factor: int = 2


@dataclass
class VideoAugConfig:
    crop_size: int = 112
    crop_scale: tuple = (0.08, 1.0)
    crop_ratio: tuple = (0.75, 4.0 / 3.0)
    flip_p: float = 0.5
    jitter: tuple = (0.4, 0.4, 0.4, 0.2)   # brightness, contrast, saturation, hue
    jitter_p: float = 1.0            # the release always jitters (docs/deviations.md)
    gray_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple = (0.1, 2.0)
    legacy_blur: bool = False        # the release's fixed anisotropic sigma (0.1, 2.0) (docs/deviations.md)
    cutout_p: float = 1.0
    cutout_max: int = 20             # side L ~ 1..cutout_max inclusive; square 2·floor(L/2) px
    legacy_cutout: bool = False      # the release's multiply-by-mean cutout (docs/deviations.md)
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)


@dataclass
class AudioAugConfig:
    n_fft: int = 1024
    hop: int = 160
    n_mels: int = 80
    volume: float = 0.2              # waveform gain ~ U(1-v, 1+v)
    freq_masks: int = 2
    freq_mask_width: int = 10        # widths drawn from [0, width)
    time_masks: int = 2
    time_mask_width: int = 20
    resize_crop: bool = True         # BYOL-A random resize-crop
    resize_crop_scale: tuple = (0.6, 1.5)
    time_warp: bool = False
    time_warp_window: int = 20


@dataclass
class AugConfig:
    video: VideoAugConfig = field(default_factory=VideoAugConfig)
    audio: AudioAugConfig = field(default_factory=AudioAugConfig)


@dataclass
class OptimConfig:
    name: str = "larc_adam"          # "larc_adam" (the release) or "adamw" (BN/bias excluded)
    batch_size: int = 2048           # global, over all ranks
    epochs: int = 100
    max_steps: int = 0               # stop after this many steps (0 = epochs decide)
    warmup_epochs: float = 2.0
    video_lr: float = 2e-4
    audio_lr: float = 2e-4
    video_pred_lr: float = 2e-3
    audio_pred_lr: float = 2e-3
    final_lr: float = 1e-4           # cosine ends here, not at 0 (docs/deviations.md)
    weight_decay: float = 1e-4
    betas: tuple = (0.9, 0.999)
    larc_trust: float = 1e-3
    larc_clip: bool = True
    legacy_lr_offset: bool = False   # the release's off-by-one schedule (docs/deviations.md)


@dataclass
class TrainConfig:
    run_dir: str = "runs/default"
    seed: int = 0
    device: str = "auto"             # "auto", "cpu", "cuda"
    amp: str = "auto"                # "auto" (bf16 on GPU, off on CPU), "bf16", "fp16", "none"
    sync_bn: bool = True
    channels_last: bool = True       # channels_last_3d for the video encoder on GPU
    compile: bool = False
    cpu_threads: int = 0             # CPU runs: torch threads; 0 = cores minus data workers (no
                                     # oversubscription: spinning OpenMP threads are ~10x slower)
    checkpoint_every: int = 200      # steps; also at every epoch end
    log_every: int = 10              # steps between host syncs for loss logging
    export_at_end: bool = True       # vid_/aud_ backbones in the released format
    progress: bool = True            # tqdm bar on rank 0
    tensorboard: bool = True         # when tensorboard is installed
    accept_config_changes: bool = False  # resume although keys that change what is learned differ
                                         # from the checkpoint's (recorded in config_history.jsonl)


@dataclass
class EvalConfig:
    """Online evaluation during pretraining (online_eval.py); off while `manifest` is empty."""
    manifest: str = ""               # held-out manifest (labels for kNN; audio + video for the rest)
    root: str = ""                   # its media root ("" = from the manifest)
    split: str = ""                  # its rows with this split tag ("" = all rows)
    every: int = 0                   # steps between evaluations (0 = only at the end; always at the end)
    max_items: int = 256             # the first N usable clips: bounds the cost
    knn_k: int = 20                  # neighbours of the leave-one-out kNN probe


@dataclass
class WandbConfig:
    """Weights & Biases logging (tracking.py); optional, needs `pip install wandb`."""
    enabled: bool = False
    project: str = "crisscross"
    entity: str = ""                 # "" = your default entity
    mode: str = "online"             # "online", "offline" (no network; `wandb sync` later), "disabled"
    name: str = ""                   # "" = the run directory's name
    dir: str = ""                    # where wandb keeps its files ("" = the run directory)


@dataclass
class Config:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)

    def validate(self) -> "Config":
        """Check every value's range (config_checks.RULES); raise ConfigError naming the key."""
        from .config_checks import check_ranges
        check_ranges(self)
        return self


# ----------------------------------------------------------------------------- presets

def _paper(name: str, **data) -> Config:
    """The released K400 config (docs/method.md §7); per-dataset values the paper does not state reuse it.

    Faithful to the release unless a flag says otherwise (docs/deviations.md lists every difference).
    Frames: the whole frame on a 256x456 canvas, the random crop drawn in each frame's own geometry
    (`data.frame_mode=full`, the release's field of view and crop statistics). Measured against the
    fast option `data.frame_mode=centre_crop data.decode_size=[128,170]` (short side 128, 4:3 centre
    crop: 16:9 sources lose a quarter of their width, a 0.08-area crop is ~36 px blown up to 112):
    1.32x the decode CPU time per sample on `crisscross prepare` output (1.15x on the original
    clips), 5.6 vs 1.24 MB per two-view sample to the device, 1.55x the CPU time of the batched
    augmentation on a CPU (benchmarks/dataloader.py, shared 2-core machine, medians of 5 rounds).
    """
    cfg = Config(name=name)
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg


def _tiny_cpu() -> Config:
    """The embedded demo on 2 CPU cores (not the paper's values; see crisscross_core/data/synthetic.py).

    The demo's class is a relation between two hues (a bullseye's core and ring) / two tones, so the
    augmentations must keep both visible: crops that keep the bullseye, no grayscale, narrow
    frequency masks, no spectrogram resize-crop; hue jitter is what makes the relation (not the
    hue) the thing to learn.
    """
    cfg = Config(name="tiny_cpu")
    cfg.model = ModelConfig(video_depth=10, video_width=0.25, audio_width=0.25,
                            proj_dim=256, proj_layers=2, pred_hidden=64)
    cfg.data.frame_mode = "centre_crop"   # the fast mode; the demo clips are 48x48, so nothing is cut
    cfg.data.decode_short_side = 48
    cfg.data.decode_size = (48, 48)
    cfg.data.clips_per_video = 4
    cfg.data.num_workers = 1
    v = cfg.aug.video
    v.crop_size, v.crop_scale, v.gray_p, v.blur_p, v.cutout_max = 40, (0.6, 1.0), 0.0, 0.0, 8
    a = cfg.aug.audio
    a.n_fft, a.n_mels, a.freq_mask_width, a.resize_crop = 512, 40, 4, False
    cfg.optim = OptimConfig(batch_size=64, epochs=12, warmup_epochs=1.2, video_lr=2e-3, audio_lr=2e-3,
                            video_pred_lr=2e-2, audio_pred_lr=2e-2, final_lr=2e-4, weight_decay=0.0)
    # The intra-modal terms at twice the cross-modal ones: with all six at 1 the tiny heads collapsed
    # onto 2-4 directions (effective rank of z, train.embedding_rank) within 150 steps and cross-modal
    # retrieval hit 2-4 "hub" clips for every query; at 2 the rank stays ~7 and the classes align
    # across modalities (measured on the demo, docs/demo.md).
    cfg.loss = LossConfig(vid_coeff=2.0, aud_coeff=2.0)
    cfg.train = TrainConfig(run_dir="runs/tiny_cpu", sync_bn=False, checkpoint_every=100, log_every=10)
    return cfg


PRESETS = {
    # paper_*: the whole frame on a 256x456 canvas (data.frame_mode=full, as the release crops the native
    # frame); ~1.3x the decode CPU of the fast data.frame_mode=centre_crop data.decode_size=[128,170]
    # and 4.5x the bytes per sample (measured, see _paper and docs/deviations.md).
    # K400: docs/method.md §7 (released crisscross.yaml), 100 epochs, global batch 2048.
    "paper_kinetics400": lambda: _paper("paper_kinetics400"),
    # Kinetics-Sound: the paper's epoch count is unknown (docs/method.md §12); the K400 release values are used.
    "paper_kinetics_sound": lambda: _paper("paper_kinetics_sound"),
    # AudioSet: the paper's epoch count is unknown (docs/method.md §12); the K400 release values are used.
    "paper_audioset": lambda: _paper("paper_audioset"),
    "tiny_cpu": _tiny_cpu,
}


# ----------------------------------------------------------------------------- dict <-> dataclass

def to_dict(cfg: Any) -> dict:
    """Plain nested dict (tuples become lists) for YAML and JSON."""
    def conv(x):
        if is_dataclass(x):
            return {f.name: conv(getattr(x, f.name)) for f in fields(x)}
        if isinstance(x, tuple):
            return [conv(v) for v in x]
        return x
    return conv(cfg)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Convert `value` to the type of the field `key`, or raise ConfigError naming the key."""
    if is_dataclass(default):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return from_dict(type(default), value, prefix=key + ".")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads '1e-3' as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, tuple):
        if isinstance(value, (list, tuple)) and len(value) == len(default):
            return tuple(_coerce(f"{key}[{i}]", v, d) for i, (v, d) in enumerate(zip(value, default)))
    raise ConfigError(f"config key '{key}' expects {type(default).__name__} "
                      f"like {default!r}, got {value!r}")


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest of `choices`, or ''."""
    import difflib
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Build dataclass `cls` from a nested dict; unknown keys are errors naming the key."""
    obj = cls()
    names = [f.name for f in fields(cls)]
    if data is not None and not isinstance(data, dict):
        where = f"config section '{prefix[:-1]}'" if prefix else "a config file"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {type(data).__name__} {data!r:.60}")
    for key, value in (data or {}).items():
        if key not in names:
            raise ConfigError(f"unknown config key '{prefix}{key}'{did_you_mean(str(key), names)}; "
                              f"valid keys here: {sorted(names)}")
        setattr(obj, key, _coerce(prefix + key, value, getattr(obj, key)))
    return obj


def _yaml_value(text: str, where: str) -> Any:
    """yaml.safe_load with every problem (tags that could run code, syntax, encoding) as ConfigError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text.encode("utf-8", "surrogateescape")[e.start:e.start + 1]
        raise ConfigError(f"{where}: contains bytes that are not UTF-8 ({bad!r} at character {e.start}); "
                          "write the value in UTF-8") from None
    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as e:
        tag = getattr(e, "problem", "") or str(e)
        raise ConfigError(f"{where}: refused a YAML tag that would build a Python object ({tag.strip()}); "
                          "a config holds plain values only") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML{at} ({problem})") from None


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `a.b=value` strings (value parsed as YAML) in place; unknown keys raise ConfigError."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        key, raw = item.split("=", 1)
        value = _yaml_value(raw, f"override {key.strip()!r}") if raw != "" else ""
        node, parts = cfg, key.strip().split(".")
        for i, part in enumerate(parts):
            names = [f.name for f in fields(node)] if is_dataclass(node) else []
            if part not in names:
                raise ConfigError(f"unknown config key '{'.'.join(parts[:i + 1])}' in override {item!r}"
                                  f"{did_you_mean(part, names)}"
                                  + (f"; valid keys here: {sorted(names)}" if names else ""))
            if i == len(parts) - 1:
                setattr(node, part, _coerce(key, value, getattr(node, part)))
            else:
                node = getattr(node, part)
    return cfg


def load_config(source: str | Path | Config = "tiny_cpu", overrides: Optional[list[str]] = None) -> Config:
    """A preset name, a YAML path or a Config, plus overrides; validated."""
    if isinstance(source, Config):
        cfg = from_dict(Config, to_dict(source))
    elif str(source) in PRESETS:
        cfg = PRESETS[str(source)]()
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config {str(source)!r} is neither a preset ({sorted(PRESETS)}) "
                              f"nor an existing YAML file{did_you_mean(str(source), PRESETS)}")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text (byte {e.object[e.start:e.start + 1]!r} at offset "
                              f"{e.start}); save the file as UTF-8") from None
        data = _yaml_value(text, str(path))
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"{path}: a config file must be a mapping of sections to keys, "
                              f"got a {type(data).__name__}")
        cfg = from_dict(Config, data or {})
    return apply_overrides(cfg, overrides or []).validate()


def save_config(cfg: Config, path: str | Path) -> None:
    """Write `cfg` as YAML (atomically: temp file then rename)."""
    from .fileio import atomic_write_text
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))
