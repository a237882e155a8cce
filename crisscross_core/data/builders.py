"""Dataset builders: find the files of a standard layout and return manifest Entries.

Each builder is `f(root, **options) -> list[Entry]` (paths relative to `root`); probing and writing
are done by manifest.build_manifest / write_manifest (or `crisscross manifest build`).

    entries = BUILDERS["ucf101"]("/data/ucf101")   # splits as tags "train1 test2 ..."
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

from .manifest import Entry

VIDEO_EXT = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv"}
AUDIO_EXT = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus"}
MEDIA_EXT = VIDEO_EXT | AUDIO_EXT
KS_CLASSES = Path(__file__).resolve().parents[2] / "data_manifests" / "kinetics_sound_classes.txt"


class LayoutError(FileNotFoundError):
    """The directory does not have the expected layout; the message says what was looked for."""


def _need(p: Path, what: str) -> Path:
    if not p.exists():
        raise LayoutError(f"{what} not found: {p}")
    return p


def _media(d: Path, exts=MEDIA_EXT) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix.lower() in exts and p.is_file())


def _norm(name: str) -> str:
    return name.strip().strip('"').replace(" ", "_").lower()


SPLIT_FOLDERS = {"train", "training", "val", "valid", "validation", "test", "testing"}
LABEL_MODES = ("auto", "folders", "none")


def folder(root, exts=MEDIA_EXT, split: str = "", labels: str = "auto") -> list[Entry]:
    """Any folder of media files; label_idx = index in the sorted labels.

    labels: "auto" — class labels when the layout is a class-folder one: every file in `<root>/<class>/`,
    or every file in `<root>/<split>/<class>/` with split folders named train / val / validation / test
    (which then also give each file its split tag); otherwise (files directly in the root, deeper or mixed
    nesting) no labels.
    "folders" — every file's parent folder (files directly in `root` get none). "none" — no labels.
    `split`: a split tag for every file (overrides split folders).
    """
    if labels not in LABEL_MODES:
        raise LayoutError(f"folder: labels must be one of {LABEL_MODES}, got {labels!r}")
    root = Path(root)
    files = _media(_need(root, "folder"), exts)
    parts = [p.relative_to(root).parts for p in files]
    lab, spl = [""] * len(files), [split] * len(files)
    if labels == "folders":
        lab = [p.parent.name if p.parent != root else "" for p in files]
    elif labels == "auto" and files:
        if all(len(q) == 2 for q in parts):
            lab = [q[0] for q in parts]
        elif all(len(q) == 3 and q[0].lower() in SPLIT_FOLDERS for q in parts):
            lab = [q[1] for q in parts]
            spl = [split or q[0] for q in parts]
    names = sorted({n for n in lab if n})
    idx = {c: i for i, c in enumerate(names)}
    return [Entry(str(p.relative_to(root)), n, idx.get(n, -1), s) for p, n, s in zip(files, lab, spl)]


def kinetics400(root, split: str = "", list_file: Optional[str] = None,
                classes: Optional[list] = None) -> list[Entry]:
    """Kinetics-400 class-folder layout `<root>/<split>/<class>/*` (or `<root>/<class>/*`).

    list_file: the original release's list (`.txt` holding one JSON array of "<class>/<file>" paths,
    relative to `<root>/<split>`); otherwise the folders are listed. Labels = sorted class folders.
    classes: keep only these (names compared with spaces/underscores unified, case-insensitive).
    """
    root = Path(root)
    base = root / split if split and (root / split).is_dir() else root
    _need(base, "Kinetics folder")
    class_dirs = sorted(d.name for d in base.iterdir() if d.is_dir())
    if list_file:
        text = Path(list_file).read_text()
        try:
            rels = json.loads(text)
        except json.JSONDecodeError as e:
            raise LayoutError(f"{list_file}: expected one JSON array of relative paths ({e})") from e
        paths = [base / r for r in rels]
        if not class_dirs:
            class_dirs = sorted({Path(r).parts[0] for r in rels})
    else:
        paths = [p for d in class_dirs for p in _media(base / d, VIDEO_EXT)]
    idx = {c: i for i, c in enumerate(class_dirs)}
    keep = None if classes is None else {_norm(c) for c in classes}
    if keep is not None:
        kept = [c for c in class_dirs if _norm(c) in keep]
        idx = {c: i for i, c in enumerate(kept)}
    out = []
    for p in paths:
        cls = p.parent.name
        if keep is not None and _norm(cls) not in keep:
            continue
        out.append(Entry(str(p.relative_to(root)), cls, idx.get(cls, -1), split))
    return out


def kinetics_sound_classes(path=KS_CLASSES) -> list[str]:
    return [l.strip() for l in Path(path).read_text().splitlines() if l.strip() and not l.startswith("#")]


def kinetics_sound(root, split: str = "", list_file: Optional[str] = None,
                   classes_file: Optional[str] = None) -> list[Entry]:
    """Kinetics-Sound = Kinetics-400 filtered to the 32 classes of data_manifests/."""
    return kinetics400(root, split, list_file, classes=kinetics_sound_classes(classes_file or KS_CLASSES))


def audioset(root, segments: str, split: str = "") -> list[Entry]:
    """AudioSet: segment CSV (`YTID, start_seconds, end_seconds, positive_labels`; '#' comments) and
    downloaded files under `root` whose names start with the 11-character YouTube id.
    label = the positive labels string (multi-label; label_idx -1). Ids without a file are skipped."""
    root = Path(root)
    by_id: dict[str, Path] = {}
    for p in _media(_need(root, "AudioSet folder")):
        by_id.setdefault(p.stem[:11], p)
    split = split or Path(segments).stem
    out = []
    with open(_need(Path(segments), "AudioSet segment CSV"), newline="") as f:
        for rec in csv.reader(f, skipinitialspace=True):
            if not rec or rec[0].startswith("#") or len(rec) < 4:
                continue
            p = by_id.get(rec[0].strip())
            if p is not None:
                out.append(Entry(str(p.relative_to(root)), rec[3].strip(), -1, split))
    return out


def ucf101(root) -> list[Entry]:
    """UCF101: `<root>/UCF-101/<Class>/v_*.avi`, `<root>/ucfTrainTestlist/{classInd,trainlist0N,
    testlist0N}.txt`; labels from classInd (0-based); split tags train1..3 / test1..3."""
    root = Path(root)
    lists = _need(root / "ucfTrainTestlist", "UCF101 split folder")
    _need(root / "UCF-101", "UCF101 video folder")
    classes = {}
    for line in _need(lists / "classInd.txt", "classInd.txt").read_text().split("\n"):
        if line.strip():
            i, name = line.split()
            classes[name] = int(i) - 1
    tags: dict[str, list] = {}
    for k in (1, 2, 3):
        for kind in ("train", "test"):
            f = lists / f"{kind}list0{k}.txt"
            if not f.exists():
                continue
            for line in f.read_text().split("\n"):
                if line.strip():
                    rel = line.split()[0].replace("\\", "/")
                    tags.setdefault(rel, []).append(f"{kind}{k}")
    out = []
    for rel, t in sorted(tags.items()):
        cls = rel.split("/")[0]
        if cls not in classes:
            raise LayoutError(f"{rel}: class {cls!r} not in classInd.txt")
        out.append(Entry(str(Path("UCF-101") / rel), cls, classes[cls], " ".join(t)))
    return out


def hmdb51(root) -> list[Entry]:
    """HMDB51: `<root>/HMDB-51/<class>/*.avi`, `<root>/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`
    (tag 1 = train, 2 = test, 0 = unused); labels = sorted class folders."""
    root = Path(root)
    vids = _need(root / "HMDB-51", "HMDB51 video folder")
    splits = _need(root / "testTrainMulti_7030_splits", "HMDB51 split folder")
    classes = sorted(d.name for d in vids.iterdir() if d.is_dir())
    tags: dict[tuple, list] = {}
    for ci, cls in enumerate(classes):
        for k in (1, 2, 3):
            f = splits / f"{cls}_test_split{k}.txt"
            if not f.exists():
                continue
            for line in f.read_text().split("\n"):
                parts = line.split()
                if len(parts) == 2 and parts[1] in ("1", "2"):
                    kind = "train" if parts[1] == "1" else "test"
                    tags.setdefault((cls, parts[0]), []).append(f"{kind}{k}")
    idx = {c: i for i, c in enumerate(classes)}
    return [Entry(f"HMDB-51/{cls}/{name}", cls, idx[cls], " ".join(t))
            for (cls, name), t in sorted(tags.items())]


def esc50(root, meta: Optional[str] = None) -> list[Entry]:
    """ESC-50 (`<root>/meta/esc50.csv`, `<root>/audio/*.wav`) or ESC-10 (`<root>/esc10.csv`, .flac):
    one row per CSV line, fold = the CSV fold (splits 'train-k' / 'test-k' via select_split),
    label = category, label_idx = target (ESC-50 numbering = last dash-field of the filename).
    The audio file is `audio/<filename>` or, when absent, `audio/<stem>.<any audio ext>`."""
    root = Path(root)
    if meta is None:
        for cand in (root / "meta" / "esc50.csv", root / "esc10.csv", root / "meta" / "esc10.csv"):
            if cand.exists():
                meta = cand
                break
        else:
            raise LayoutError(f"no meta/esc50.csv or esc10.csv under {root}; pass the metadata CSV with "
                              f"--meta (Python: meta=...)")
    if not Path(meta).is_file():
        raise LayoutError(f"ESC metadata CSV not found: {meta} (--meta)")
    audio = _need(root / "audio", "ESC audio folder")
    stems = {p.stem: p for p in audio.iterdir() if p.suffix.lower() in AUDIO_EXT}
    out = []
    with open(meta, newline="") as f:
        for rec in csv.DictReader(f):
            name = rec["filename"]
            p = audio / name if (audio / name).exists() else stems.get(Path(name).stem)
            if p is None:
                raise LayoutError(f"{meta}: audio for {name!r} not found in {audio}")
            out.append(Entry(str(p.relative_to(root)), rec["category"], int(rec["target"]), "",
                             int(rec["fold"])))
    return out


def dcase2013(root) -> list[Entry]:
    """DCASE 2013 scenes: `set1/scenes_stereo/scenes_stereo/*.wav` (train) and
    `set1/scenes_stereo_testset/scenes_stereo_testset/*.wav` (test); label = filename minus the
    2-digit index and extension (e.g. `bus05.wav` -> `bus`); classes sorted."""
    root = Path(root)
    parts = {"train": root / "set1" / "scenes_stereo" / "scenes_stereo",
             "test": root / "set1" / "scenes_stereo_testset" / "scenes_stereo_testset"}
    files = []
    for split, d in parts.items():
        if d.is_dir():
            files += [(split, p) for p in _media(d, AUDIO_EXT)]
    if not files:
        raise LayoutError(f"no DCASE wav files under {parts['train']} or {parts['test']}")
    label = lambda p: p.stem[:-2]
    classes = sorted({label(p) for _, p in files})
    idx = {c: i for i, c in enumerate(classes)}
    return [Entry(str(p.relative_to(root)), label(p), idx[label(p)], s) for s, p in files]


BUILDERS = {
    "folder": folder, "kinetics400": kinetics400, "kinetics_sound": kinetics_sound,
    "audioset": audioset, "ucf101": ucf101, "hmdb51": hmdb51, "esc50": esc50, "esc10": esc50,
    "dcase2013": dcase2013,
}
