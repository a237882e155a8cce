"""Evaluation-side I/O: manifest rows → (path, label, fold/split), whole-file audio, video windows.

Rows are plain dicts. Accepted columns (first match wins):
path: `path`, `filename`, `file`, `relpath`, `video_path`; label: `label`, `category`, `class`,
`label_name` (or any column named by `label_column`); fold: `fold`; split: `split`; `has_audio` /
`has_video` (0/1, True/False) mark files without that stream. Files are looked up under `root`,
`root/audio`, `root/video`; a missing file whose stem exists with another extension (e.g. `.wav` listed,
`.flac` on disk) is accepted.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..data.decode import DecodeError
from ..data.manifest import ManifestError
from ..data.sampling import eval_starts

PATH_KEYS = ("path", "filename", "file", "relpath", "video_path")
LABEL_KEYS = ("label", "category", "class", "label_name")
MEDIA_EXTS = (".wav", ".flac", ".mp3", ".ogg", ".mp4", ".avi", ".mkv", ".webm", ".m4a")


@dataclass
class Item:
    """One evaluation item: an existing media file with its class index and its grouping keys."""
    path: str
    label: int          # class index (-1 when the row has no label)
    label_name: str
    fold: str           # "" when absent
    split: str          # "" when absent
    duration: float     # seconds, 0.0 when the manifest does not say
    rid: int            # recording id = row position in the manifest; carried with every feature


def _first(row: dict, keys: Sequence[str]) -> str:
    for k in keys:
        if k in row and row[k] not in (None, ""):
            return str(row[k])
    return ""


def read_rows(manifest, root=None) -> tuple[list[dict], Path]:
    """(rows as dicts, media root) from a kit manifest (`# crisscross-manifest v1`, read with
    crisscross_core.data.manifest), a plain CSV (e.g. ESC's esc10.csv), or a list of dicts / Rows."""
    if not isinstance(manifest, (str, Path)):
        from dataclasses import asdict, is_dataclass
        rows = [asdict(r) if is_dataclass(r) else dict(r) for r in manifest]
        return rows, Path(root) if root is not None else Path(".")
    p = Path(manifest)
    if not p.is_file():
        raise FileNotFoundError(f"manifest not found: {p}")
    with open(p, newline="") as f:
        first = f.readline()
    if first.startswith("# crisscross-manifest"):
        from dataclasses import asdict
        from crisscross_core.data.manifest import read_manifest
        m = read_manifest(p, root=root, check_files=False, on_error="warn")   # missing files: counted below
        rows = [asdict(r) for r in m.rows]
        for r in rows:
            r["fold"] = str(r["fold"]) if r.get("fold") else ""
        return rows, m.root
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ManifestError(f"manifest {p} has no rows")
    return rows, Path(root) if root is not None else p.parent


def resolve_path(rel: str, root: Path) -> Optional[Path]:
    """Find `rel` under root (or root/audio, root/video), tolerating a different media extension.

    A prepared storage tier's reference ('shards/shard-000001.tar::clip.mp4', 'frames/x.frames::clip',
    data_manifests/README.md) is found when its shard member / frame-store clip is there."""
    from crisscross_core.data.decode import media_exists
    rel_p = Path(rel)
    cands = [rel_p] if rel_p.is_absolute() else [root / rel_p, root / "audio" / rel_p, root / "video" / rel_p]
    for c in cands:
        if media_exists(str(c)):              # a file, a shard member or a frame-store clip
            return c
    for c in cands:
        if c.parent.is_dir():
            for ext in MEDIA_EXTS:
                alt = c.with_suffix(ext)
                if alt.is_file():
                    return alt
    return None


def has_split(item_split: str, split: str, fold: str = "") -> bool:
    """`split` ("" = any) among the item's space-separated split tags (kit manifests: "train1 test2");
    on fold datasets "train-k" / "test-k" mean fold != k / fold == k."""
    if not split:
        return True
    m = re.fullmatch(r"(train|test)-(\w+)", split)
    if m and fold:
        return (fold == m.group(2)) == (m.group(1) == "test")
    return split == item_split or split in item_split.split()


def _dense_idx(rows, label_keys) -> bool:
    """True when the rows' label_idx values are exactly 0..K-1, one per label name."""
    try:
        pairs = {(int(r.get("label_idx")), _first(r, label_keys)) for r in rows}
    except (TypeError, ValueError):
        return False
    idx = {i for i, _ in pairs}
    return len(idx) == len(pairs) and idx == set(range(len(idx)))


def _flag(row: dict, key: str) -> Optional[bool]:
    """A has_audio / has_video cell: True, False, or None when the manifest does not say."""
    v = row.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() not in ("false", "0", "no")


def load_items(manifest, root=None, require_label: bool = True, classes: Optional[list] = None,
               require_audio: bool = False, split: str = "", require_video: bool = False,
               label_column: Optional[str] = None, dropped: Optional[list] = None) -> tuple[list[Item], list[str]]:
    """Manifest → (items, class names). Rows without a file, without a label (if required), or marked
    without audio / video (`has_audio=0` / `has_video=0`, if required) are dropped; pass a list as
    `dropped` to receive one {rid, path, reason} per dropped row (rows outside `split` are not drops).

    Labels: the `label_column` of the CSV when given, else the first of `label`, `category`, `class`,
    `label_name`. Class indices: `classes` when given; else the manifest's `label_idx` when it numbers the
    labels 0..K-1 (UCF101's classInd order); else the sorted unique label names. `split`: keep rows
    carrying this split tag ("" = all); `rid` is always the row's position in the whole manifest.
    """
    rows, root = read_rows(manifest, root)
    cols = list(rows[0]) if rows else []
    if label_column:
        if label_column not in cols:
            raise ManifestError(f"{manifest}: --label-column {label_column!r} is not a column "
                                f"(columns: {', '.join(cols)})")
        label_keys = (label_column,)
    else:
        label_keys = LABEL_KEYS
    if not any(k in cols for k in PATH_KEYS):
        raise ManifestError(f"{manifest}: no file column (looked for {', '.join(PATH_KEYS)}; "
                            f"columns: {', '.join(cols)})")
    labelled = [r for r in rows if _first(r, label_keys)]
    if require_label and not labelled:
        raise ManifestError(
            f"{manifest}: no row has a label (looked for the column"
            f"{' ' + repr(label_column) if label_column else 's ' + ', '.join(LABEL_KEYS)}; columns: "
            f"{', '.join(cols)}); pass --label-column NAME, or use a protocol that needs no labels "
            f"(retrieval --mode cross, crisscross embed)")
    if classes is not None:
        names = list(classes)
    elif labelled and not label_column and _dense_idx(labelled, label_keys):
        by_idx = {int(r["label_idx"]): _first(r, label_keys) for r in labelled}
        names = [by_idx[i] for i in range(len(by_idx))]
    else:
        names = sorted({_first(r, label_keys) for r in labelled})
    index = {n: i for i, n in enumerate(names)}
    items, missing, drops, in_split = [], [], [], 0
    for i, r in enumerate(rows):
        rel = _first(r, PATH_KEYS)
        name = _first(r, label_keys)
        sp, fold = str(r.get("split", "") or ""), str(r.get("fold", "") or "")
        if not has_split(sp, split, fold):
            continue
        in_split += 1
        reason = None
        if require_label and name not in index:
            reason = "no label" if not name else f"label {name!r} not among the training classes"
        elif require_audio and _flag(r, "has_audio") is False:
            reason = "no audio (manifest has_audio=0)"
        elif require_video and _flag(r, "has_video") is False:
            reason = "no video (manifest has_video=0)"
        p = resolve_path(rel, root) if rel and reason is None else None
        if reason is None and p is None:
            reason = "file not found" if rel else "no file name"
            missing.append(rel)
        if reason is not None:
            drops.append({"rid": i, "path": rel, "reason": reason})
            continue
        try:
            dur = float(r.get("duration_s") or r.get("duration") or 0.0)
        except ValueError:
            dur = 0.0
        items.append(Item(str(p), index.get(name, -1), name, fold, sp, dur, i))
    if dropped is not None:
        dropped.extend(drops)
    if split and not in_split:
        seen = sorted({t for r in rows for t in str(r.get("split", "") or "").split()})[:12]
        raise ManifestError(f"no manifest rows with split tag {split!r} (tags seen: {seen}; fold datasets "
                            f"use 'train-k' / 'test-k')")
    if missing and len(missing) == in_split:
        raise FileNotFoundError(f"none of the {len(missing)} manifest files were found under {root} "
                                f"(first: {missing[0]!r}); pass --root")
    if not items:
        raise ManifestError(f"{manifest}: all {in_split} rows{f' of split {split!r}' if split else ''} were "
                            f"dropped ({drop_summary(drops)})")
    return items, names


def drop_summary(drops: Sequence[dict], show: int = 3) -> str:
    """'3 no label (a.mp4, b.mp4, c.mp4, …); 1 file not found (d.avi)' — counts per reason, a few names."""
    by: dict = {}
    for d in drops:
        by.setdefault(d["reason"], []).append(d)
    parts = []
    for reason, ds in sorted(by.items(), key=lambda kv: -len(kv[1])):
        names = ", ".join(Path(d["path"]).name or f"row {d['rid']}" for d in ds[:show])
        parts.append(f"{len(ds)} {reason} ({names}{', …' if len(ds) > show else ''})")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- decoding

def media_duration(path: str) -> float:
    """Container duration in seconds (crisscross_core.data.decode.probe)."""
    from crisscross_core.data.decode import probe
    return float(probe(path).duration)


def load_audio(path: str, rate: int = 16000, duration: Optional[float] = None) -> np.ndarray:
    """Whole-file mono waveform float32 [N] in [-1, 1] at `rate`, through the kit's one decoder.

    `duration`: trim or zero-pad to exactly duration·rate samples (None = the file's audio length).
    A file without an audio stream raises NoAudioError naming the file.
    """
    from crisscross_core.data.decode import decode_windows, probe
    info = probe(path)
    dur = duration if duration is not None else info.audio_duration
    _, waves = decode_windows(str(path), [], [(info.audio_start, dur)], audio_rate=rate)
    return waves[0]


def dense_starts(total: float, window: float, n: int) -> list[float]:
    """n evenly spaced window starts covering [0, total] (n=1: centred; all 0 when the file is shorter)."""
    return [float(x) for x in eval_starts((0.0, float(total)), window, n)]


def load_video_windows(path: str, starts: Sequence[float], duration: float, fps: float = 16.0,
                       short_side: Optional[int] = None, size: Optional[tuple] = None) -> np.ndarray:
    """Video clips uint8 [K, T, H, W, 3], T = round(duration·fps); short clips repeat frames cyclically.

    Frames: short side resized to `short_side`, then centre-cropped to `size` (H, W) when given (so clips
    of different files stack). One container open for all K windows (data.decode.decode_windows).
    """
    from crisscross_core.data.decode import decode_windows
    wins = [(float(s), float(duration)) for s in starts]
    frames, _ = decode_windows(str(path), wins, [], fps=fps, short_side=short_side, size=size)
    t = int(round(duration * fps))
    out = []
    for f in frames:
        f = np.asarray(f)
        if len(f) == 0:
            raise DecodeError(f"{path}: no video frames decoded")
        if len(f) < t:  # pad_missing (as released): repeat cyclically
            f = f[np.arange(t) % len(f)]
        out.append(f[:t])
    h = min(x.shape[1] for x in out)
    w = min(x.shape[2] for x in out)
    return np.stack([x[:, :h, :w] for x in out])


def screen_items(items: Sequence[Item], modality: str, on_error: str = "skip",
                 progress: bool = False) -> tuple[list[Item], list[dict]]:
    """Open every file and decode a short `modality` window at its middle; (decodable items, failures).

    For protocols that decode files inside training loops (fine-tuning): a broken file is found before
    hours of training, and left out (`on_error="skip"`, listed as {rid, path, reason}) or raised ("fail").
    """
    from tqdm.auto import tqdm
    from crisscross_core.data.decode import decode_windows, probe
    good, bad = [], []
    for it in tqdm(items, desc=f"checking {modality} files", disable=not progress, leave=False):
        try:
            info = probe(it.path)
            start, dur = ((info.video_start, info.video_duration) if modality == "video"
                          else (info.audio_start, info.audio_duration))
            mid = max(0.0, start + (dur or info.duration) / 2 - 0.1)
            win = [(mid, 0.2)]
            decode_windows(it.path, win if modality == "video" else [], win if modality == "audio" else [],
                           fps=8, short_side=32)
            good.append(it)
        except (DecodeError, OSError, ValueError) as e:
            if on_error == "fail":
                raise DecodeError(f"{it.path}: {e} (--on-error skip leaves such files out and counts them)") from e
            bad.append({"rid": it.rid, "path": it.path, "reason": str(e).splitlines()[0]})
    if bad and progress:
        import sys
        print(f"[evaluate] skipped {len(bad)} of {len(items)} {modality} files that could not be decoded "
              f"(first: {bad[0]['path']}: {bad[0]['reason']})", file=sys.stderr, flush=True)
    if not good:
        raise DecodeError(f"none of the {len(items)} {modality} files could be decoded"
                          + (f" (first: {bad[0]['path']}: {bad[0]['reason']})" if bad else ""))
    return good, bad
