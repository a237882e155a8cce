"""Atomic save, safe load, and import/export of backbones in the released CrissCross format (docs/method.md §3).

    atomic_save({"model": model.state_dict(), "step": 10}, "runs/x/checkpoint.pt")
    ckpt = safe_load("runs/x/checkpoint.pt")               # torch.load(weights_only=True) only
    report = load_backbone(model.video_backbone, "vid_crisscross_kinetics_400.pth.tar.zip", "video")
    export_backbone(model.audio_backbone, "runs/x/aud_crisscross_x.pth.tar")

Nothing here unpickles arbitrary objects: a file whose pickle would import or call anything outside
torch's weights-only allow-list is refused with a CheckpointError, before any of its code runs.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import tempfile
import warnings
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .fileio import current_umask

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

class DiskFullError(CheckpointError):
    """A checkpoint could not be written because its filesystem is full (or over quota)."""


class _ErrorKeepingWriter:
    """A file object for torch.save that remembers the OSError behind a failed write: torch reports
    ENOSPC as an opaque "unexpected pos" RuntimeError."""

    def __init__(self, f):
        self.f, self.error, self.written = f, None, 0

    def write(self, data) -> int:
        try:
            n = self.f.write(data)
        except OSError as e:
            self.error = e
            raise
        self.written += len(data)
        return n

    def flush(self) -> None:
        self.f.flush()


def _free_bytes(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return -1


def _write_error(path: Path, exc: BaseException, writer: "_ErrorKeepingWriter | None") -> CheckpointError:
    """The error to raise for a failed write of `path`: DiskFullError naming the free space when the
    filesystem is full (ENOSPC / EDQUOT, seen directly or through torch's opaque message)."""
    cause = writer.error if writer is not None and writer.error is not None else exc
    full = isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)
    if not full and "unexpected pos" in str(exc):        # torch's wording for a short write
        free = _free_bytes(path.parent)
        full = 0 <= free < max(64 << 20, 2 * (writer.written if writer else 0))
    if full:
        free = _free_bytes(path.parent)
        left = f"{free / 2**20:.1f} MB free" if free >= 0 else "free space unknown"
        return DiskFullError(f"cannot write {path}: the disk is full ({left} on {path.parent}); "
                             "the previous file there is intact. Free some space and run again.")
    return CheckpointError(f"cannot write {path}: {type(cause).__name__}: {cause}")


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """torch.save `obj` to `path` atomically: temp file in the same directory, fsync, os.replace.
    A crash mid-write leaves the previous file intact; a full disk raises DiskFullError. The file gets
    the permissions of the user's umask (group-readable where the umask allows). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    writer = None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())          # mkstemp creates 0600
        with os.fdopen(fd, "wb") as f:
            writer = _ErrorKeepingWriter(f)
            torch.save(obj, writer)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, (OSError, RuntimeError)):
            raise _write_error(path, e, writer) from e
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


MAX_BYTES_ENV = "CRISSCROSS_MAX_WEIGHTS_GB"
_ZIP_MAGIC = b"PK\x03\x04"


def max_weights_bytes() -> int:
    """Largest weights file (or zip member) read: $CRISSCROSS_MAX_WEIGHTS_GB, default 4 GiB (a full
    paper-model training checkpoint with Adam state is ~0.6 GB; a released backbone ~60 MB)."""
    try:
        return int(float(os.environ.get(MAX_BYTES_ENV, "4")) * 2**30)
    except ValueError:
        return 4 * 2**30


def _looks_like_torch(head: bytes) -> bool:
    """A torch zip-format file starts like any zip; a legacy torch.save file is a pickle (protocol 2+)."""
    return head.startswith(_ZIP_MAGIC) or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def _torch_load(source, name: str, map_location):
    """torch.load(weights_only=True) with errors turned into CheckpointError naming `name`."""
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol N" noise from the unpickler
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
        unsafe = next((ln for ln in lines if "GLOBAL" in ln and "global" in ln.lower()), None)
        if unsafe is not None:
            raise CheckpointError(
                f"{name}: refused to load: it names a Python callable or class ({unsafe}), which could "
                f"run code when unpickled; only tensors, dicts, lists, numbers and strings are accepted. "
                f"If you trust the file, convert it to a plain state dict elsewhere.") from None
        idx = next((i for i, ln in enumerate(lines) if "WeightsUnpickler error" in ln), None)
        detail = lines[idx + 1] if idx is not None and idx + 1 < len(lines) else (lines[0] if lines else "")
        raise CheckpointError(f"{name}: not a readable PyTorch checkpoint: its pickle is damaged ({detail})") from None
    except Exception as e:  # garbage bytes make the unpickler fail in many ways (KeyError, IndexError, ...)
        if isinstance(e, FileNotFoundError):
            raise CheckpointError(f"{name}: no such file") from None
        text = str(e).splitlines()[0] if str(e) else ""
        if "central directory" in text or "zip archive" in text or isinstance(e, EOFError):
            raise CheckpointError(f"{name}: truncated or damaged (the archive is incomplete: {text or type(e).__name__}); "
                                  "copy or download it again") from None
        raise CheckpointError(f"{name}: not a readable PyTorch checkpoint ({type(e).__name__}: {text})") from None


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


def _inner_member(zf: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    """The single checkpoint inside a wrapper zip (ignores folders and __MACOSX entries)."""
    infos = [i for i in zf.infolist() if not i.filename.endswith("/") and not i.filename.startswith("__MACOSX")
             and not Path(i.filename).name.startswith("._")]
    if len(infos) > 1:
        infos = [i for i in infos if i.filename.endswith((".pth.tar", ".pth", ".pt", ".tar", ".ckpt"))] or infos
    if len(infos) != 1:
        raise CheckpointError(f"{path}: zip archive should hold exactly one checkpoint file, "
                              f"found {zf.namelist()}")
    return infos[0]


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, cap: int, dest) -> None:
    """Copy one zip member into the open file `dest`, refusing early what cannot be a checkpoint:
    a member declared (or found while streaming) larger than `cap`, or one whose first bytes are not a
    torch file. Never holds the member in memory."""
    name = f"{path}!{info.filename}"
    if info.file_size > cap:
        raise CheckpointError(f"{name}: too large ({info.file_size / 2**30:.2f} GiB unpacked, limit "
                              f"{cap / 2**30:.2f} GiB; raise {MAX_BYTES_ENV} if the file is genuine)")
    total = 0
    with zf.open(info) as src:
        head = src.read(16)
        if not _looks_like_torch(head):
            raise CheckpointError(f"{name}: not a PyTorch checkpoint (it starts with {head[:8]!r})")
        dest.write(head)
        total = len(head)
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                raise CheckpointError(f"{name}: unpacks to more than {cap / 2**30:.2f} GiB (limit; raise "
                                      f"{MAX_BYTES_ENV} if the file is genuine)")
            dest.write(chunk)


def safe_load(path: str | os.PathLike, map_location="cpu"):
    """Load a torch file with `weights_only=True` only. A real zip archive that wraps one
    checkpoint (as the released `*.pth.tar.zip` may be) is opened and its member loaded, streamed
    with a size cap ($CRISSCROSS_MAX_WEIGHTS_GB). Raises CheckpointError (naming the file and what is
    wrong: missing, not a checkpoint, too large, truncated, an unsafe global) — no code in the file runs."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    cap = max_weights_bytes()
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    if not _looks_like_torch(head):
        what = "empty" if not head else f"it starts with {head[:8]!r}"
        raise CheckpointError(f"{path}: not a PyTorch checkpoint or zip archive ({what})")
    if size > cap:
        raise CheckpointError(f"{path}: too large ({size / 2**30:.2f} GiB, limit {cap / 2**30:.2f} GiB; "
                              f"raise {MAX_BYTES_ENV} if the file is genuine)")
    if _is_wrapper_zip(path):
        try:
            with zipfile.ZipFile(path) as zf, tempfile.TemporaryFile() as tmp:
                info = _inner_member(zf, path)
                _extract_member(zf, info, path, cap, tmp)
                tmp.seek(0)
                return _torch_load(tmp, f"{path}!{info.filename}", map_location)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise CheckpointError(f"{path}: broken zip archive ({e})") from None
        except OSError as e:
            raise CheckpointError(f"{path}: cannot unpack ({e})") from None
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


SAFETENSORS_FORMAT = "crisscross-backbone-v1"


def load_safetensors(path: str | os.PathLike) -> tuple[dict, dict]:
    """(state dict, metadata) of a `.safetensors` file; no pickle is involved at all."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            state = OrderedDict((k, f.get_tensor(k)) for k in f.keys())
    except ImportError:
        raise CheckpointError(f"{path}: reading .safetensors needs the safetensors package "
                              "(pip install safetensors)") from None
    except Exception as e:  # noqa: BLE001 - a damaged header surfaces as many error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    return state, meta


def load_released(path: str | os.PathLike, modality: str) -> "OrderedDict[str, torch.Tensor]":
    """A released (or our exported / full training / `.safetensors`) checkpoint as a bare backbone
    state dict for `modality` ('video' or 'audio'), CPU tensors. See `strip_prefixes` for the prefixes."""
    path = Path(path)
    if path.suffix == ".safetensors":
        state, meta = load_safetensors(path)
        if meta.get("modality") and meta["modality"] != _modality(modality):
            raise CheckpointError(f"{path}: holds a {meta['modality']} backbone, not a {_modality(modality)} one")
        return strip_prefixes(state, modality)
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


def backbone_arch(backbone: nn.Module, modality: str) -> dict:
    """What it takes to rebuild `backbone`: {"format", "modality", "depth", "width", "output_dim"}."""
    return {"format": SAFETENSORS_FORMAT, "modality": _modality(modality), "depth": int(backbone.depth),
            "width": float(backbone.width), "output_dim": int(backbone.output_dim)}


def export_safetensors(backbone: nn.Module, path: str | os.PathLike, modality: str,
                       extra: dict | None = None) -> Path:
    """Write `backbone` as `.safetensors` (tensors only, no pickle) with its architecture in the file's
    metadata and beside it as `<stem>.json`, readable by `pretrained.from_pretrained` anywhere."""
    from safetensors.torch import save as st_save
    from .fileio import atomic_write_bytes, atomic_write_text
    path = Path(path)
    arch = {**backbone_arch(backbone, modality), **(extra or {})}
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    atomic_write_bytes(path, st_save(state, metadata={k: str(v) for k, v in arch.items()}))
    atomic_write_text(path.with_suffix(".json"), json.dumps(arch, indent=1) + "\n")
    return path


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
