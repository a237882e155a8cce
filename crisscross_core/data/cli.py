"""`crisscross manifest build ...` and `crisscross prepare ...`.

    crisscross manifest build ucf101 /data/ucf101 -o ucf101.csv --workers 8
    crisscross manifest build kinetics400 /data/k400 --split val --list-file val.txt -o k400_val.csv
    crisscross manifest build audioset /data/audioset --segments balanced_train_segments.csv -o as.csv
    crisscross manifest check ucf101.csv
    crisscross prepare k400_train.csv /fast/k400_256 --short-side 256 --gop 16 --workers 8

`add_arguments(parser)` adds both sub-commands; when the parser's prog ends with "manifest" or
"prepare" (the lead's `crisscross <sub>` wiring) it adds only that one. `run(args) -> int`.
Standalone: `python -m crisscross_core.data.cli manifest build ...`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _add_manifest(p: argparse.ArgumentParser) -> None:
    from .builders import BUILDERS
    sub = p.add_subparsers(dest="manifest_cmd", required=True)
    b = sub.add_parser("build", help="probe a dataset and write a manifest CSV")
    b.add_argument("dataset", choices=sorted(BUILDERS), help="layout of <root>")
    b.add_argument("root", help="dataset root directory")
    b.add_argument("-o", "--output", required=True, help="manifest CSV to write")
    b.add_argument("--split", default="", help="kinetics*: split folder (train/val); folder: split tag")
    b.add_argument("--labels", default="auto", choices=("auto", "folders", "none"),
                   help="folder: labels from class folders (auto: when every file sits in <root>/<class>/ or "
                        "<root>/<train|val|test>/<class>/; folders: each file's parent folder; none)")
    b.add_argument("--list-file", default=None, help="kinetics*: original JSON-array .txt list")
    b.add_argument("--segments", default=None, help="audioset: segment CSV")
    b.add_argument("--meta", default=None, help="esc50: metadata CSV (default meta/esc50.csv or esc10.csv)")
    b.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    b.add_argument("--threads", action="store_true", help="thread pool instead of processes")
    b.add_argument("--min-duration", type=float, default=1.1, help="'too short' threshold (s)")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(_data_cmd="manifest_build")
    c = sub.add_parser("check", help="validate a manifest (missing files, malformed rows)")
    c.add_argument("manifest")
    c.add_argument("--root", default=None)
    c.add_argument("--deep", action="store_true",
                   help="also verify every shard's sha256 against its index (sharded manifests)")
    c.set_defaults(_data_cmd="manifest_check")


def _add_prepare(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="source manifest CSV")
    p.add_argument("out_root", help="output directory (same relative paths, .mp4)")
    p.add_argument("-o", "--output", default=None, help="new manifest (default <out_root>/manifest.csv)")
    p.add_argument("--root", default=None, help="source media root (default: from the manifest)")
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--gop", type=int, default=16, help="keyframe interval in frames")
    p.add_argument("--crf", type=int, default=23)
    p.add_argument("--preset", default="veryfast")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--no-progress", action="store_true")
    t = p.add_argument_group("storage tier (default: one prepared .mp4 per clip)")
    t.add_argument("--shards", action="store_true",
                   help="write webdataset tar shards (+ offset index, sha256) into out_root instead of files")
    t.add_argument("--shard-size", default="1GB", help="target shard size, e.g. 500MB, 1GB")
    t.add_argument("--pack", action="store_true", help="--shards: pack the files as they are (no transcode)")
    t.add_argument("--frames", action="store_true",
                   help="decode once into a frame store (<out_root>.frames): uint8 frames + 16 kHz audio, "
                        "memory-mapped; for small datasets")
    t.add_argument("--frames-short-side", type=int, default=128, help="--frames: stored short side (px)")
    t.add_argument("--fps", type=float, default=16.0, help="--frames: stored frame rate")
    p.set_defaults(_data_cmd="prepare")


def _bytes(text: str) -> int:
    """'500MB' / '1GB' / '200000' -> bytes."""
    import re
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)i?B?\s*", text.upper())
    if not m:
        from ..config import ConfigError
        raise ConfigError(f"--shard-size {text!r}: expected a size like 500MB or 1GB")
    return int(float(m.group(1)) * 1024 ** "_KMGT".index(m.group(2) or "_"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    prog = parser.prog.split()[-1] if parser.prog else ""
    if prog == "manifest":
        _add_manifest(parser)
    elif prog == "prepare":
        _add_prepare(parser)
    else:
        sub = parser.add_subparsers(dest="data_sub", required=True)
        _add_manifest(sub.add_parser("manifest", help="build / check manifests"))
        _add_prepare(sub.add_parser("prepare", help="transcode a dataset for fast decoding"))


def run(args: argparse.Namespace) -> int:
    cmd = getattr(args, "_data_cmd", None)
    if cmd == "manifest_build":
        from .builders import BUILDERS
        from .manifest import build_manifest, write_health, write_manifest
        opts = {}
        if args.dataset in ("kinetics400", "kinetics_sound"):
            opts = {"split": args.split, "list_file": args.list_file}
        elif args.dataset == "folder":
            opts = {"split": args.split, "labels": args.labels}
        elif args.dataset == "audioset":
            if not args.segments:
                print("error: audioset needs --segments <segment CSV>", file=sys.stderr)
                return 2
            opts = {"segments": args.segments, "split": args.split}
        elif args.dataset in ("esc50", "esc10"):
            opts = {"meta": args.meta}
        entries = BUILDERS[args.dataset](args.root, **opts)
        if not entries:
            print(f"error: no files found for {args.dataset} under {args.root}", file=sys.stderr)
            return 1
        if args.dataset == "folder":
            names = sorted({e.label for e in entries if e.label})
            splits = sorted({e.split for e in entries if e.split})
            print(f"labels: {len(names)} classes from class folders ({', '.join(names[:8])}"
                  f"{', …' if len(names) > 8 else ''})" + (f"; split tags {splits}" if splits else "")
                  if names else "labels: none (the files are not all in class folders; --labels folders labels "
                                "each file with its parent folder)")
        rows, health = build_manifest(entries, args.root, workers=args.workers,
                                      min_duration=args.min_duration, use_threads=args.threads,
                                      progress=not args.no_progress)
        write_manifest(rows, args.output, meta={"dataset": args.dataset,
                                                "root": os.path.abspath(args.root)})
        hp = write_health(health, args.output)
        short = {k: v for k, v in health.items() if not k.endswith("_files")}
        print(json.dumps(short))
        print(f"wrote {args.output} ({len(rows)} rows); health report {hp}")
        for u in health["unreadable_files"][:10]:
            print(f"  unreadable: {u['path']}: {u['reason']}")
        if health.get("bad_names"):
            print(f"  left out {health['bad_names']} files whose names are not UTF-8 (rename them): "
                  + ", ".join(health["bad_name_files"][:5]))
        return 0 if rows else 1
    if cmd == "manifest_check":
        from .manifest import ManifestError, read_manifest
        try:
            m = read_manifest(args.manifest, root=args.root)
        except ManifestError as e:
            print(str(e), file=sys.stderr)
            return 1
        if args.deep:
            from .shards import shards_of, verify_shard
            shards = shards_of((r.path for r in m.rows), m.root)
            bad = [p for p in (verify_shard(s) for s in shards) if p]
            for b in bad:
                print(f"  {b}", file=sys.stderr)
            print(f"{args.manifest}: {len(shards)} shards checked against their sha256, {len(bad)} bad")
            if bad:
                return 1
        print(f"{args.manifest}: {len(m.rows)} rows OK (root {m.root})")
        return 0
    if cmd == "prepare":
        from .prepare import prepare_dataset, prepare_frames, prepare_shards
        out = args.output
        if args.shards and args.frames:
            print("error: choose one of --shards and --frames", file=sys.stderr)
            return 2
        if args.shards:
            rows, health = prepare_shards(args.manifest, args.out_root, root=args.root,
                                          shard_bytes=_bytes(args.shard_size), short_side=args.short_side,
                                          gop=args.gop, crf=args.crf, preset=args.preset, workers=args.workers,
                                          progress=not args.no_progress, transcode_clips=not args.pack)
            print(f"wrote {health.get('shards', 0)} shards and {Path(args.out_root) / 'manifest.csv'}")
        elif args.frames:
            rows, health = prepare_frames(args.manifest, args.out_root, root=args.root,
                                          short_side=args.frames_short_side, fps=args.fps,
                                          workers=args.workers, progress=not args.no_progress)
            print(f"wrote the frame store {rows[0].path.split('::')[0] if rows else args.out_root} and its manifest.csv")
        else:
            rows, health = prepare_dataset(args.manifest, args.out_root, out, root=args.root,
                                           short_side=args.short_side, gop=args.gop, crf=args.crf,
                                           preset=args.preset, workers=args.workers,
                                           progress=not args.no_progress)
        print(json.dumps({k: v for k, v in health.items() if not k.endswith("_files")}))
        for u in health["unreadable_files"][:10]:
            print(f"  failed: {u['path']}: {u['reason']}")
        return 0 if rows else 1
    print(f"error: unknown data command {cmd!r}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="crisscross-data", description=__doc__.split("\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
