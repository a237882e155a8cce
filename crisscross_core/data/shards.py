"""Tar shards in the webdataset layout, read by random access: a million clips in a few thousand files.

    write_shards(rows, src_root, "k400_shards", shard_bytes=1 << 30, workers=8)   # + manifest.csv
    f = open_member("k400_shards/shard-000003.tar::R6llTwEh07w.mp4")              # file-like, for PyAV

Each sample is two members, `<key>.mp4` (the prepared clip) and `<key>.json` (its manifest row), as
webdataset, OpenCLIP and video2dataset write them, so the shards also stream through those tools.
Beside every shard, `<shard>.idx.json` records each member's byte offset and size (taken from the tar
headers while writing) and the shard's sha256. A manifest row addresses a clip as
`<shard path>::<member>`; reading it is one `os.pread` range of an already-open shard, so the kit's
global batch sampler, DDP and exact resume work unchanged. (webdataset's own readers stream shards in
order, and its indexed reader needs its own index files; the offsets we record at write time are the
same information without another dependency.)

Each process keeps one descriptor per shard it has read (`OPENS` counts the opens, per process:
DataLoader workers are re-forked every epoch, so ≤ 1 open per shard per worker per epoch). A member
that lies past the end of a truncated shard, or whose bytes do not decode, is a DecodeError: the
dataset skips and counts it like any unreadable file.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from pathlib import Path
from typing import Iterable, Optional

SEP = "::"
INDEX_SUFFIX = ".idx.json"
OPENS: dict = {}                   # shard path -> times opened by this process
_FDS: dict = {}                    # (pid, shard path) -> fd
_INDEX: dict = {}                  # shard path -> {member: (offset, size)}
_LOCK = threading.Lock()


def is_shard_ref(path) -> bool:
    """'dir/shard-000001.tar::key.mp4' (the shard part ends with .tar)."""
    s = str(path)
    return SEP in s and s.split(SEP, 1)[0].endswith(".tar")


def split_ref(path) -> tuple[str, str]:
    shard, member = str(path).split(SEP, 1)
    return shard, member


def read_index(shard: str | os.PathLike) -> dict:
    """The shard's index {"members": {name: [offset, size]}, "sha256", "bytes"} (cached per process)."""
    shard = str(shard)
    idx = _INDEX.get(shard)
    if idx is None:
        from .decode import DecodeError
        p = Path(shard + INDEX_SUFFIX)
        try:
            idx = json.loads(p.read_text())
        except FileNotFoundError:
            raise DecodeError(f"{shard}: no index {p.name} beside the shard (write shards with "
                              "`crisscross prepare --shards`)") from None
        except (OSError, ValueError) as e:
            raise DecodeError(f"{p}: unreadable shard index ({e})") from None
        _INDEX[shard] = idx
    return idx


def _fd(shard: str) -> int:
    key = (os.getpid(), shard)
    fd = _FDS.get(key)
    if fd is None:
        with _LOCK:
            fd = _FDS.get(key)
            if fd is None:
                fd = os.open(shard, os.O_RDONLY)
                _FDS[key] = fd
                OPENS[shard] = OPENS.get(shard, 0) + 1
    return fd


class MemberFile(io.RawIOBase):
    """A read-only, seekable view of bytes [offset, offset + size) of an open shard (os.pread: no
    shared file position, safe across threads and forked workers)."""

    def __init__(self, fd: int, offset: int, size: int, name: str):
        self.fd, self.offset, self.size, self.name, self.pos = fd, offset, size, name, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, min(self.size, base + pos))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, b) -> int:
        n = min(len(b), self.size - self.pos)
        if n <= 0:
            return 0
        data = os.pread(self.fd, n, self.offset + self.pos)
        b[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n is None or n < 0 else min(n, self.size - self.pos)
        if n <= 0:
            return b""
        data = os.pread(self.fd, n, self.offset + self.pos)
        self.pos += len(data)
        return data


def open_member(ref) -> MemberFile:
    """The clip `ref` ('<shard>.tar::<member>') as a file-like object. DecodeError when the shard, its
    index or the member is missing, or the shard is shorter than the member's end (truncated)."""
    from .decode import DecodeError
    shard, member = split_ref(ref)
    idx = read_index(shard)
    try:
        offset, size = idx["members"][member]
    except KeyError:
        raise DecodeError(f"{ref}: no member {member!r} in the shard's index") from None
    try:
        fd = _fd(shard)
    except OSError as e:
        raise DecodeError(f"{shard}: cannot open the shard ({e})") from None
    end = os.fstat(fd).st_size
    if offset + size > end:
        raise DecodeError(f"{ref}: the shard is truncated ({end} bytes, the member ends at {offset + size})")
    return MemberFile(fd, offset, size, str(ref))


def close_all() -> None:
    """Close this process's shard descriptors (tests; a long-lived notebook switching datasets)."""
    for key in [k for k in _FDS if k[0] == os.getpid()]:
        try:
            os.close(_FDS.pop(key))
        except OSError:
            pass


def member_exists(ref) -> bool:
    """Whether the shard and its index list the member (no read of the clip)."""
    try:
        shard, member = split_ref(ref)
        return Path(shard).is_file() and member in read_index(shard)["members"]
    except Exception:  # noqa: BLE001 - any problem means "not there"
        return False


# ----------------------------------------------------------------------------- writing

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ShardWriter:
    """Appends samples to `shard-NNNNNN.tar` files of about `shard_bytes` each, recording offsets."""

    def __init__(self, out_dir: Path, shard_bytes: int, prefix: str = "shard"):
        self.out_dir, self.shard_bytes, self.prefix = Path(out_dir), int(shard_bytes), prefix
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.n, self.tar, self.path, self.members, self.written = -1, None, None, {}, []

    def _next(self) -> None:
        self.close()
        self.n += 1
        self.path = self.out_dir / f"{self.prefix}-{self.n:06d}.tar"
        self.tar = tarfile.open(self.path.with_suffix(".tar.part"), "w", format=tarfile.USTAR_FORMAT)
        self.members = {}

    def add(self, key: str, files: dict) -> str:
        """Add one sample ({"mp4": bytes, "json": bytes}); return the shard path it went into."""
        if self.tar is None or self.tar.fileobj.tell() >= self.shard_bytes:
            self._next()
        for ext, data in files.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            header = len(info.tobuf(self.tar.format, self.tar.encoding, self.tar.errors))
            start = self.tar.offset                      # where this member's header begins
            self.tar.addfile(info, io.BytesIO(data))
            self.members[info.name] = [start + header, info.size]
        return str(self.path)

    def close(self) -> None:
        if self.tar is None:
            return
        self.tar.close()
        part = self.path.with_suffix(".tar.part")
        os.replace(part, self.path)
        index = {"members": self.members, "bytes": self.path.stat().st_size, "sha256": _sha256(self.path)}
        from ..fileio import atomic_write_text
        atomic_write_text(Path(str(self.path) + INDEX_SUFFIX), json.dumps(index))
        self.written.append(self.path)
        self.tar = None


def verify_shard(shard: str | os.PathLike) -> Optional[str]:
    """None when the shard's bytes match the sha256 in its index, else what is wrong."""
    shard = Path(shard)
    try:
        idx = json.loads(Path(str(shard) + INDEX_SUFFIX).read_text())
    except (OSError, ValueError) as e:
        return f"{shard}: no readable index ({e})"
    if not shard.is_file():
        return f"{shard}: missing"
    if shard.stat().st_size != idx.get("bytes"):
        return f"{shard}: {shard.stat().st_size} bytes, the index says {idx.get('bytes')} (truncated or replaced)"
    if _sha256(shard) != idx.get("sha256"):
        return f"{shard}: sha256 differs from the index (corrupted)"
    return None


def shards_of(paths: Iterable[str], root: Path) -> list[Path]:
    """The distinct shard files the given manifest paths point into."""
    out = []
    for p in paths:
        if is_shard_ref(p):
            s = root / split_ref(p)[0]
            if s not in out:
                out.append(s)
    return out
