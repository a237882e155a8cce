"""The pretraining dataset (decode only; augmentation runs batched on the training device).

    ds = PretrainDataset("k400_train.csv", cfg.data, seed=0); ds.set_epoch(3)
    item = ds[17]   # video uint8 [2,T,H,W,3], audio float32 [2,N], frame_hw [2], times [4,2], share [2], ...

Randomness per item = numpy Generator seeded with (seed, epoch, index, attempt), so a resumed run
and any DataLoader worker layout reproduce the same stream. Unreadable files are replaced by other
items (chosen by the same generator) at most `max_retries` times; each skip is warned about
(file + reason), counted in `health()` and in the item's `n_failed`; then DataError names them.
After a skip the item's `index` is the index actually decoded, so index/label/times agree.
Evaluation reads media through `crisscross_core.evaluate.features` (it never substitutes files).
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .decode import DecodeError, decode_windows
from .manifest import Row, load_rows, read_manifest, select_split
from .sampling import sample_views

__all__ = ["PretrainDataset", "DataError", "describe_drops"]


class DataError(RuntimeError):
    """Too many unreadable files in a row; the message names them and their reasons."""


class PretrainDataset(Dataset):
    """Two temporally related audio-visual views per item (docs/method.md §5), decoded to fixed shapes.

    Rows are filtered by data_cfg.split and by the policies up front (counted in health()):
    files without video; without audio when no_audio_policy='skip'; shorter than the snippet when
    short_clip_policy='skip'. len = rows * clips_per_video.
    """

    def __init__(self, manifest_rows_or_path, data_cfg, seed: int = 0, root=None):
        cfg = data_cfg
        self.source = str(manifest_rows_or_path) if isinstance(manifest_rows_or_path, (str, Path)) else "rows"
        # every row that will not train is named under its reason: the manifest's own problems first
        self.dropped: dict[str, list[str]] = {"malformed_row": [], "missing_file": [], "no_video": [],
                                              "no_audio": [], "too_short": []}
        if isinstance(manifest_rows_or_path, (str, Path)):
            m = read_manifest(manifest_rows_or_path, root=root or (cfg.root or None), on_error="collect")
            rows, self.root = m.rows, m.root
            for p in m.problems:
                self.dropped["missing_file" if "file not found" in p else "malformed_row"].append(p)
        else:
            rows, self.root = load_rows(manifest_rows_or_path, root or (cfg.root or None))
        self.rows_in_manifest = len(rows) + sum(len(v) for v in self.dropped.values())
        all_rows, rows = rows, select_split(rows, cfg.split)
        if all_rows and not rows:
            tags = sorted({t for r in all_rows for t in str(getattr(r, "split", "") or "").split()})[:12]
            raise DataError(f"none of the {len(all_rows)} rows of {self.source} has split tag "
                            f"{cfg.split!r} (tags present: {tags or 'none'}); set data.split to one of "
                            "them, or data.split= (empty) to use every row")
        self.rows_in_split = len(rows)
        self.cfg, self.seed, self.epoch = cfg, int(seed), 0
        need_v = cfg.video_duration * (2.0 if cfg.relation == "adjacent" else 1.5)
        keep = []
        for r in rows:
            if not r.has_video:
                self.dropped["no_video"].append(r.path)
            elif not r.has_audio and cfg.no_audio_policy == "skip":
                self.dropped["no_audio"].append(r.path)
            elif cfg.short_clip_policy == "skip" and (
                    r.video_duration < need_v or (r.has_audio and r.audio_duration < cfg.audio_duration)):
                self.dropped["too_short"].append(r.path)
            else:
                keep.append(r)
        self.filtered = {k: len(self.dropped[k]) for k in ("no_video", "no_audio", "too_short")}
        if not keep:
            raise DataError(f"no usable rows in {self.source} (split {cfg.split!r}): "
                            + describe_drops(self.data_report()))
        self.rows: list[Row] = keep
        self.n_failed_total = 0
        self.failed_files: dict[str, str] = {}

    def data_report(self) -> dict:
        """What of the manifest trains: counts per stage and every dropped row under its reason."""
        return {"manifest": self.source, "root": str(self.root), "split": self.cfg.split,
                "rows_in_manifest": self.rows_in_manifest, "rows_in_split": self.rows_in_split,
                "rows_used": len(getattr(self, "rows", [])),
                "dropped_counts": {k: len(v) for k, v in self.dropped.items() if v},
                "dropped": {k: list(v) for k, v in self.dropped.items() if v}}

    def fingerprint(self) -> dict:
        """{"rows", "sha256"} of the rows this dataset trains on (paths relative to the root, stream
        facts, labels): a resumed run compares it with its checkpoint's to see if the data changed."""
        h = hashlib.sha256()
        for r in self.rows:
            h.update(f"{r.path}|{r.label}|{r.has_audio}|{r.video_duration}|{r.audio_duration}\n".encode())
        return {"rows": len(self.rows), "sha256": h.hexdigest()}

    def __len__(self) -> int:
        return len(self.rows) * max(1, int(self.cfg.clips_per_video))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def health(self) -> dict:
        """Counters of this process (each DataLoader worker keeps its own)."""
        return {"rows": len(self.rows), "filtered": dict(self.filtered),
                "n_failed": self.n_failed_total, "failed_files": dict(self.failed_files)}

    def rng(self, index: int, attempt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index), attempt])

    def windows(self, index: int, attempt: int = 0):
        """The ViewWindows item `index` would use (for visualisation), without decoding."""
        r = self.rows[index % len(self.rows)]
        alim = r.audio_limits if r.has_audio else r.video_limits
        return sample_views(self.cfg.relation, r.video_limits, alim, self.cfg.video_duration,
                            self.cfg.audio_duration, self.rng(index, attempt), centred=self.cfg.centred)

    def load(self, index: int, attempt: int = 0) -> dict:
        """Decode item `index` (no retries). Raises DecodeError on unreadable files."""
        cfg = self.cfg
        r = self.rows[index % len(self.rows)]
        w = self.windows(index, attempt)
        vids = [w.v1] if w.share_video or w.v1 == w.v2 else [w.v1, w.v2]
        auds = [w.a1] if w.share_audio or w.a1 == w.a2 else [w.a1, w.a2]
        src: dict = {}
        frames, waves = decode_windows(
            self.root / r.path, vids, auds, fps=cfg.video_fps,
            short_side=cfg.decode_short_side or None, size=tuple(cfg.decode_size) or None,
            audio_rate=cfg.audio_rate, short_clip=cfg.short_clip_policy,
            no_audio=cfg.no_audio_policy, frame_mode=cfg.frame_mode, info=src)
        video = np.stack([frames[0], frames[-1]])      # same array twice when shared
        audio = np.stack([waves[0], waves[-1]])
        # the frame the canvas shows (full: the source frame; centre_crop: the canvas itself)
        frame_hw = src["frame_hw"] if cfg.frame_mode == "full" else video.shape[2:4]
        return {"video": torch.from_numpy(video), "audio": torch.from_numpy(audio),
                "frame_hw": torch.tensor(frame_hw, dtype=torch.int64),
                "times": torch.from_numpy(w.as_array()),
                "share": torch.tensor([w.share_video, w.share_audio]),
                "index": torch.tensor(index, dtype=torch.int64),
                "label": torch.tensor(r.label_idx, dtype=torch.int64)}

    def __getitem__(self, index: int) -> dict:
        tried = []
        idx = int(index)
        for attempt in range(int(self.cfg.max_retries) + 1):
            try:
                item = self.load(idx, attempt)
                item["n_failed"] = torch.tensor(len(tried), dtype=torch.int64)
                return item
            except DecodeError as e:
                path = str(self.root / self.rows[idx % len(self.rows)].path)
                tried.append((path, str(e)))
                self.n_failed_total += 1
                self.failed_files[path] = str(e)
                warnings.warn(f"skipping unreadable item {idx} ({path}): {e}", stacklevel=2)
                idx = int(self.rng(index, attempt + 1).integers(len(self)))
        raise DataError(f"item {index}: {len(tried)} unreadable files in a row (max_retries="
                        f"{self.cfg.max_retries}):\n  " + "\n  ".join(f"{p}: {m}" for p, m in tried))


def describe_drops(report: dict, examples: int = 3) -> str:
    """'11 of 21 manifest rows train (split 'train': 21 rows); 10 dropped: no_audio 6 (a.mp4, ...), ...'."""
    counts = report.get("dropped_counts") or {}
    head = (f"{report['rows_used']} of {report['rows_in_manifest']} manifest rows train "
            f"(split {report['split']!r}: {report['rows_in_split']} rows)")
    if not counts:
        return head + "; none dropped"
    parts = []
    for reason, n in counts.items():
        names = report["dropped"][reason][:examples]
        more = ", ..." if n > examples else ""
        parts.append(f"{reason} {n} ({', '.join(names)}{more})")
    return head + f"; {sum(counts.values())} dropped: " + "; ".join(parts)
