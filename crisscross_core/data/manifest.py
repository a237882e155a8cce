"""Versioned CSV manifests: one row per media file (format: data_manifests/README.md).

    rows = build_manifest(entries, root, workers=8)        # probe in parallel (progress bar)
    write_manifest(rows, "k400_train.csv", meta={"dataset": "kinetics400", "root": "/data/k400"})
    m = read_manifest("k400_train.csv")                    # validated; errors name line numbers
    train = select_split(m.rows, "train1")

File layout: line 1 `# crisscross-manifest v1`; optional `# key: value` metadata lines; then a CSV
header with COLUMNS and one row per file. Paths are relative to the root (metadata `root`, else
the manifest's directory, else the `root` argument).
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .decode import DecodeError, MediaInfo, media_exists, probe

VERSION = 1
MAGIC = f"# crisscross-manifest v{VERSION}"


class ManifestError(ValueError):
    """A manifest is malformed or refers to missing files; the message lists line numbers."""


@dataclass
class Entry:
    """A file a builder found, before probing (path relative to the root)."""
    path: str
    label: str = ""
    label_idx: int = -1
    split: str = ""                 # space-separated tags, e.g. "train1 test2 train3"
    fold: int = 0                   # 1..K for fold datasets (ESC-50), 0 = none


@dataclass
class Row:
    """One manifest row (see data_manifests/README.md for the meaning of each column)."""
    path: str
    label: str = ""
    label_idx: int = -1
    split: str = ""
    fold: int = 0
    duration: float = 0.0
    has_video: bool = False
    has_audio: bool = False
    video_start: float = 0.0
    video_duration: float = 0.0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    audio_start: float = 0.0
    audio_duration: float = 0.0
    audio_rate: int = 0
    audio_channels: int = 0
    size_bytes: int = 0

    @property
    def video_limits(self) -> tuple[float, float]:
        return self.video_start, self.video_start + self.video_duration

    @property
    def audio_limits(self) -> tuple[float, float]:
        return self.audio_start, self.audio_start + self.audio_duration


COLUMNS = [f.name for f in fields(Row)]
REQUIRED = ("path",)


@dataclass
class Manifest:
    rows: list
    root: Path
    meta: dict
    problems: list                  # "line N: ..." strings (rows dropped when on_error='warn')


def row_from_info(entry: Entry, info: MediaInfo) -> Row:
    r = Row(**asdict(entry))
    for k in ("duration", "has_video", "has_audio", "video_start", "video_duration", "fps", "width",
              "height", "audio_start", "audio_duration", "audio_rate", "audio_channels", "size_bytes"):
        setattr(r, k, getattr(info, k))
    return r


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if v else "0"
    return str(v)


def write_manifest(rows: Iterable[Row], path: str | Path, meta: Optional[dict] = None) -> Path:
    """Write rows (atomically) with the version line and `# key: value` metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    buf.write(MAGIC + "\n")
    for k, v in (meta or {}).items():
        buf.write(f"# {k}: {str(v).replace(chr(10), ' ')}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([_fmt(getattr(r, c)) for c in COLUMNS])
    tmp = path.with_name(path.name + ".tmp")
    try:
        data = buf.getvalue().encode("utf-8")
    except UnicodeEncodeError as e:
        bad = buf.getvalue()[max(0, e.start - 40):e.end + 20]
        raise ManifestError(f"{path}: a file name is not valid UTF-8 near {bad!r}; rename the file "
                            "(build_manifest leaves such files out and counts them)") from None
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _parse(col: str, raw: str):
    default = getattr(Row, col, None) if col != "path" else ""
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no", ""):
            return False
        raise ValueError(f"column '{col}' expects 0/1, got {raw!r}")
    if isinstance(default, int):
        return int(float(raw)) if raw != "" else default
    if isinstance(default, float):
        return float(raw) if raw != "" else default
    return raw


def _decode_text(path: Path) -> str:
    """The manifest as text; a byte that is not UTF-8 is a ManifestError naming its line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ManifestError(f"{path}: line {line}: byte {data[e.start:e.start + 1]!r} is not UTF-8 (the "
                            "manifest must be UTF-8; re-save it, or rebuild it with `crisscross manifest "
                            "build`)") from None


def _resolve_root(path: Path, meta: dict, root) -> Path:
    """Root: the argument, else the metadata `root` (relative to the manifest), else the manifest's
    folder. A metadata root that does not exist is an error (never a silent fallback)."""
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise ManifestError(f"{path}: media root {root} (given) is not a directory")
        return root
    mroot = meta.get("root")
    if not mroot:
        return path.parent
    mpath = Path(mroot) if Path(mroot).is_absolute() else (path.parent / mroot).resolve()
    if not mpath.is_dir():
        raise ManifestError(f"{path}: its metadata line '# root: {mroot}' names {mpath}, which is not a "
                            "directory; fix that line, or pass the media root (data.root=..., --root ...)")
    return mpath


def read_manifest(path: str | Path, root: str | Path | None = None, check_files: bool = True,
                  on_error: str = "raise") -> Manifest:
    """Read and validate a manifest.

    Malformed rows and missing files are collected as "line N: reason" in `Manifest.problems`;
    on_error="raise" raises a ManifestError listing them (first 20), "warn" drops those rows and warns,
    "collect" drops them silently (the caller reports them).
    Root: argument, else metadata `root` (relative to the manifest), else the manifest's directory.
    File names may hold any character CSV can quote (commas, quotes, newlines).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist")
    text = _decode_text(path)
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.startswith("# crisscross-manifest v"):
        raise ManifestError(f"{path}: line 1 must be '{MAGIC}' (got {first[:60]!r})" if text
                            else f"{path}: empty file")
    version = first.split("v")[-1].strip()
    if version != str(VERSION):
        raise ManifestError(f"{path}: manifest version {version!r} is not supported (expected {VERSION})")
    meta, pos, line_no = {}, len(first) + 1, 2
    while pos < len(text) and text.startswith("#", pos):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        k, _, v = text[pos + 1:end].rstrip("\r").partition(":")
        meta[k.strip()] = v.strip()
        pos, line_no = end + 1, line_no + 1
    reader = csv.reader(io.StringIO(text[pos:], newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ManifestError(f"{path}: no CSV header after the metadata lines") from None
    header_line = line_no
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing:
        raise ManifestError(f"{path}: line {header_line}: unknown columns {unknown}, missing {missing}; "
                            f"valid columns: {COLUMNS}")
    root = _resolve_root(path, meta, root)
    rows, problems = [], []
    while True:
        n = header_line + reader.line_num     # the line this record starts on
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            problems.append(f"line {n}: {e}")
            continue
        if not rec or all(not x.strip() for x in rec):
            continue
        if len(rec) != len(header):
            problems.append(f"line {n}: expected {len(header)} fields, got {len(rec)}")
            continue
        try:
            r = Row(**{c: _parse(c, v) for c, v in zip(header, rec)})
        except (ValueError, TypeError) as e:
            problems.append(f"line {n}: {e}")
            continue
        if not r.path:
            problems.append(f"line {n}: empty path")
            continue
        if check_files and not media_exists(root / r.path):
            problems.append(f"line {n}: file not found: {root / r.path}")
            continue
        rows.append(r)
    if problems and on_error != "collect":
        msg = f"{path}: {len(problems)} bad rows:\n  " + "\n  ".join(problems[:20]) + \
              ("\n  ..." if len(problems) > 20 else "")
        if on_error == "raise":
            raise ManifestError(msg)
        warnings.warn(msg + f"\n(dropped; {len(rows)} rows kept)", stacklevel=2)
    return Manifest(rows=rows, root=root, meta=meta, problems=problems)


def load_rows(rows_or_path, root=None) -> tuple[list, Path]:
    """Accept a manifest path, a Manifest, or a list of Rows; return (rows, root)."""
    if isinstance(rows_or_path, (str, Path)):
        m = read_manifest(rows_or_path, root=root, on_error="warn")
        return m.rows, m.root
    if isinstance(rows_or_path, Manifest):
        return rows_or_path.rows, Path(root) if root else rows_or_path.root
    if root is None:
        raise ValueError("a root directory is needed when passing manifest rows directly")
    return list(rows_or_path), Path(root)


def select_split(rows: Sequence[Row], split: str) -> list:
    """Rows in `split`: "" = all; "train-k"/"test-k" on fold datasets = folds != k / == k;
    otherwise rows whose space-separated split tags contain `split`."""
    if not split:
        return list(rows)
    m = re.fullmatch(r"(train|test)-(\d+)", split)
    if m and any(r.fold for r in rows):
        k = int(m.group(2))
        return [r for r in rows if (r.fold == k) == (m.group(1) == "test")]
    return [r for r in rows if split in r.split.split()]


# ----------------------------------------------------------------------------- probing

def _probe_one(args):
    root, entry = args
    try:
        return entry, probe(os.path.join(root, entry.path)), None
    except DecodeError as e:
        return entry, None, str(e)
    except Exception as e:                       # never let one file kill the pool
        return entry, None, f"{entry.path}: {type(e).__name__}: {e}"


def build_manifest(entries: Sequence[Entry], root: str | Path, workers: int = 4,
                   min_duration: float = 1.1, progress: bool = True, use_threads: bool = False):
    """Probe every entry in parallel; return (rows, health).

    Unreadable files are left out of `rows`; `health` counts and lists them, plus files without
    audio, without video and shorter than `min_duration` seconds (kept; datasets apply policies).
    """
    from tqdm.auto import tqdm
    root = str(root)
    entries, unnamed = split_unencodable(entries)
    pool_cls = ThreadPoolExecutor if use_threads or workers <= 1 else ProcessPoolExecutor
    results = []
    if workers <= 1:
        it = map(_probe_one, [(root, e) for e in entries])
        results = list(tqdm(it, total=len(entries), desc="probe", disable=not progress))
    else:
        with pool_cls(max_workers=workers) as ex:
            it = ex.map(_probe_one, [(root, e) for e in entries], chunksize=16)
            results = list(tqdm(it, total=len(entries), desc="probe", disable=not progress))
    rows, unreadable = [], []
    for entry, info, err in results:
        if info is None:
            unreadable.append({"path": entry.path, "reason": err})
        else:
            rows.append(row_from_info(entry, info))
    health = health_summary(rows, unreadable, min_duration)
    health["files"] += len(unnamed)
    health["bad_names"] = len(unnamed)
    health["bad_name_files"] = unnamed[:50]
    return rows, health


def split_unencodable(entries: Sequence[Entry]) -> tuple[list, list]:
    """(entries whose path is valid UTF-8, repr of the others). A name that is not UTF-8 (Latin-1 bytes
    on a Linux filesystem) cannot be written into a UTF-8 manifest and read back unchanged, so such
    files are left out before any probing and counted."""
    good, bad = [], []
    for e in entries:
        try:
            e.path.encode("utf-8")
            good.append(e)
        except UnicodeEncodeError:
            bad.append(ascii(e.path))
    return good, bad


def health_summary(rows: Sequence[Row], unreadable: Sequence[dict] = (), min_duration: float = 1.1,
                   max_list: int = 50) -> dict:
    """Counts and (truncated) lists of problem files."""
    no_audio = [r.path for r in rows if not r.has_audio]
    no_video = [r.path for r in rows if not r.has_video]
    short = [r.path for r in rows
             if (r.has_video and r.video_duration < min_duration)
             or (r.has_audio and r.audio_duration < min_duration)]
    return {
        "files": len(rows) + len(unreadable), "readable": len(rows),
        "unreadable": len(unreadable), "no_audio": len(no_audio), "no_video": len(no_video),
        "too_short": len(short), "min_duration": min_duration,
        "total_hours": round(sum(r.duration for r in rows) / 3600, 3),
        "unreadable_files": list(unreadable)[:max_list], "no_audio_files": no_audio[:max_list],
        "no_video_files": no_video[:max_list], "too_short_files": short[:max_list],
    }


def write_health(health: dict, manifest_path: str | Path) -> Path:
    p = Path(str(manifest_path) + ".health.json")
    p.write_text(json.dumps(health, indent=1))
    return p
