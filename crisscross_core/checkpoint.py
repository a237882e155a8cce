"""Atomic save, safe load, and import/export of backbones in the released CrissCross format (spec §3).

    atomic_save({"model": model.state_dict(), "step": 10}, "runs/x/checkpoint.pt")
    ckpt = safe_load("runs/x/checkpoint.pt")               # torch.load(weights_only=True) only
    report = load_backbone(model.video_backbone, "vid_crisscross_kinetics_400.pth.tar.zip", "video")
    export_backbone(model.audio_backbone, "runs/x/aud_crisscross_x.pth.tar")

Nothing here unpickles arbitrary objects: a file whose pickle would import or call anything outside
torch's weights-only allow-list is refused with a CheckpointError, before any of its code runs.
"""
from __future__ import annotations

import io
import os
import pickle
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

# prefixes seen in full checkpoints (DDP `module.`), fine-tuned models (`backbone.`) and ours
MODALITY_PREFIXES = {
    "video": ("video_backbone.", "video_encoder.0.", "backbone."),
    "audio": ("audio_backbone.", "audio_encoder.0.", "backbone."),
}
_MODALITY_ALIASES = {"video": "video", "vid": "video", "v": "video",
                     "audio": "audio", "aud": "audio", "a": "audio"}


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read, is refused as unsafe, or does not fit a model; names the file."""


# ----------------------------------------------------------------------------- save / load

def atomic_save(obj, path: str | os.PathLike) -> Path:
    """torch.save `obj` to `path` atomically: temp file in the same directory, fsync, os.replace.
    A crash mid-write leaves the previous file intact. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename durable too (best effort; not all filesystems allow it)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def _torch_load(source, name: str, map_location):
    """torch.load(weights_only=True) with errors turned into CheckpointError naming `name`."""
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol N" noise from the unpickler
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "Weights only load failed" in msg or "weights_only" in msg:
            lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
            detail = next((ln for ln in lines if "global" in ln.lower() and "GLOBAL" in ln), None)
            if detail is None:
                idx = next((i for i, ln in enumerate(lines) if "WeightsUnpickler error" in ln), None)
                detail = lines[idx + 1] if idx is not None and idx + 1 < len(lines) else lines[0]
            raise CheckpointError(
                f"{name}: refused to load: the weights-only unpickler rejected it ({detail}). "
                f"A file that names Python callables or classes could run code when loaded; only "
                f"tensors, dicts, lists, numbers and strings are accepted. If you trust the file, "
                f"convert it to a plain state dict elsewhere.") from None
        raise CheckpointError(f"{name}: not a readable PyTorch checkpoint (bad pickle: {e})") from None
    except Exception as e:  # garbage bytes make the unpickler fail in many ways (KeyError, IndexError, ...)
        if isinstance(e, FileNotFoundError):
            raise CheckpointError(f"{name}: no such file") from None
        raise CheckpointError(f"{name}: not a readable PyTorch checkpoint, or truncated "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def _is_wrapper_zip(path: Path) -> bool:
    """True for a plain zip archive holding a checkpoint (a torch zip-format file has a */data.pkl)."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        return False
    return not any(n.endswith("data.pkl") for n in names)


def _inner_member(zf: zipfile.ZipFile, path: Path) -> str:
    """The single checkpoint inside a wrapper zip (ignores folders and __MACOSX entries)."""
    names = [n for n in zf.namelist() if not n.endswith("/") and not n.startswith("__MACOSX")
             and not Path(n).name.startswith("._")]
    if len(names) > 1:
        names = [n for n in names if n.endswith((".pth.tar", ".pth", ".pt", ".tar", ".ckpt"))] or names
    if len(names) != 1:
        raise CheckpointError(f"{path}: zip archive should hold exactly one checkpoint file, "
                              f"found {zf.namelist()}")
    return names[0]


def safe_load(path: str | os.PathLike, map_location="cpu"):
    """Load a torch file with `weights_only=True` only. A real zip archive that wraps one
    checkpoint (as the released `*.pth.tar.zip` may be) is opened and its member loaded.
    Raises CheckpointError (naming the file) when it is missing, not a checkpoint, truncated,
    or would need arbitrary code to unpickle."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if _is_wrapper_zip(path):
        try:
            with zipfile.ZipFile(path) as zf:
                member = _inner_member(zf, path)
                data = zf.read(member)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise CheckpointError(f"{path}: broken zip archive ({e})") from None
        return _torch_load(io.BytesIO(data), f"{path}!{member}", map_location)
    return _torch_load(path, str(path), map_location)


# ----------------------------------------------------------------------------- released format

def _modality(modality: str) -> str:
    try:
        return _MODALITY_ALIASES[modality.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"modality {modality!r} is not 'video' or 'audio'") from None


def _state_dict_of(obj, path: Path) -> dict:
    """The tensor mapping inside a loaded object: itself, or its 'model' / 'state_dict' entry."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        kind = type(obj).__name__
        keys = list(obj)[:8] if isinstance(obj, dict) else []
        raise CheckpointError(f"{path}: expected a state dict of tensors (or a dict with 'model'), "
                              f"got {kind} with keys {keys}")
    return obj


def strip_prefixes(state: dict, modality: str) -> "OrderedDict[str, torch.Tensor]":
    """Keep one modality's backbone keys without prefix: drops `module.`, then, when any key carries
    one of `video_backbone.` / `video_encoder.0.` / `backbone.` (audio likewise), keeps only the keys
    under the first such prefix present (aliases are duplicates) and strips it. Bare keys pass."""
    modality = _modality(modality)
    state = OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state.items())
    for prefix in MODALITY_PREFIXES[modality]:
        if any(k.startswith(prefix) for k in state):
            return OrderedDict((k[len(prefix):], v) for k, v in state.items() if k.startswith(prefix))
    other = "audio" if modality == "video" else "video"
    if any(k.startswith((f"{other}_backbone.", f"{other}_encoder.")) for k in state):
        return OrderedDict()  # a full checkpoint without this modality's backbone
    return state


def load_released(path: str | os.PathLike, modality: str) -> "OrderedDict[str, torch.Tensor]":
    """A released (or our exported / full training) checkpoint as a bare backbone state dict
    for `modality` ('video' or 'audio'), CPU tensors. See `strip_prefixes` for the prefixes."""
    path = Path(path)
    state = strip_prefixes(_state_dict_of(safe_load(path), path), modality)
    if not state:
        raise CheckpointError(f"{path}: holds no {_modality(modality)} backbone keys")
    return state


@dataclass
class LoadReport:
    """Key comparison between a checkpoint and a module; `ok` when all keys and shapes agree."""
    path: str
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)       # in the model, not in the file
    unexpected: list = field(default_factory=list)    # in the file, not in the model
    wrong_shape: list = field(default_factory=list)   # (key, file shape, model shape)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.path}: all {len(self.loaded)} keys loaded"
        lines = [f"{self.path}: {len(self.loaded)} keys match; mismatches:"]
        if self.missing:
            lines.append(f"  missing in file ({len(self.missing)}): {', '.join(self.missing[:20])}"
                         + (" ..." if len(self.missing) > 20 else ""))
        if self.unexpected:
            lines.append(f"  unexpected in file ({len(self.unexpected)}): {', '.join(self.unexpected[:20])}"
                         + (" ..." if len(self.unexpected) > 20 else ""))
        for key, fs, ms in self.wrong_shape[:20]:
            lines.append(f"  wrong shape: {key}: file {fs} vs model {ms}")
        return "\n".join(lines)


def load_backbone(backbone: nn.Module, path: str | os.PathLike, modality: str,
                  strict: bool = True) -> LoadReport:
    """Load a released-format file into `backbone` (R2Plus1D or AudioResNet).

    strict=True: any missing / unexpected / wrong-shape key raises CheckpointError with the
    report and nothing is loaded. strict=False: the matching keys are loaded, the report lists
    the rest. Returns the LoadReport."""
    state = load_released(path, modality)
    own = backbone.state_dict()
    report = LoadReport(str(path))
    report.missing = [k for k in own if k not in state]
    report.unexpected = [k for k in state if k not in own]
    for k, v in state.items():
        if k in own:
            if tuple(v.shape) != tuple(own[k].shape):
                report.wrong_shape.append((k, tuple(v.shape), tuple(own[k].shape)))
            else:
                report.loaded.append(k)
    if strict and not report.ok:
        raise CheckpointError(str(report))
    backbone.load_state_dict({k: state[k] for k in report.loaded}, strict=strict)
    return report


def export_backbone(backbone: nn.Module, path: str | os.PathLike) -> Path:
    """Write `backbone`'s state dict as the release does: a bare OrderedDict, no prefix, CPU tensors."""
    state = OrderedDict((k, v.detach().cpu().clone()) for k, v in backbone.state_dict().items())
    return atomic_save(state, path)


def load_run_model(model_cfg, run_dir=None, seed: int = 0):
    """(CrissCross, step or None): the pretraining model of `<run_dir>/checkpoint.pt` when it exists,
    else the same architecture at a seeded random init (step None). `model_cfg`: a ModelConfig."""
    from .models.crisscross import CrissCross
    torch.manual_seed(seed)
    model = CrissCross.from_config(model_cfg)
    path = Path(run_dir) / "checkpoint.pt" if run_dir else None
    if path is None or not path.is_file():
        return model, None
    state = safe_load(path)
    model.load_state_dict(state["model"])
    return model, state.get("step")
