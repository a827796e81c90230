# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots: exactly the files the model reads, packed so any node can be judged offline.

A snapshot is a gzip'd tar laid out like ``/`` (members ``sys/...``, ``proc/...``) with a
manifest as its first member. It is made by reading the node once through a recording
:class:`SysRoot` and packing every touched path that exists, with the directories and
symlinks on the way, so that a second read of the snapshot sees the same node.

The manifest lists every member: each file with its size and sha256, each symlink with
its target, each directory. Opening a snapshot reads the whole archive into a
:class:`MemoryRoot` (nothing is unpacked to disk) and checks it against the manifest, so
a truncated, altered or incomplete snapshot is refused instead of judged. Snapshots of
format 1 (earlier p2pctl) have no member list: only their gzip checksum and tar structure
are checked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from typing import IO, BinaryIO, Dict, Iterator, List, Optional, Set, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.files import open_atomic
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import MemoryRoot, SysRoot, UnreadableError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node

MANIFEST_NAME = "p2pctl-snapshot.json"
SNAPSHOT_FORMAT = 2
_READABLE_FORMATS = (1, SNAPSHOT_FORMAT)
# A 4096-endpoint node unpacks to about 40 MiB; far beyond that is not a snapshot p2pctl wrote.
_MAX_UNPACKED = 1 << 30
_NOT_A_SNAPSHOT_FIX = "give a directory laid out like / or a file written by 'p2pctl snapshot -o FILE.tar.gz'"
_TAKE_AGAIN = "take the snapshot again on the node with 'p2pctl snapshot -o FILE.tar.gz'"
_BLOCK = 512
_END_OF_ARCHIVE = bytes(_BLOCK)
_MEMBER_KINDS = {b"0": "file", b"\0": "file", b"7": "file", b"5": "dir", b"2": "link"}
# Files the model only asks about, never reads: packed empty. p2pmem/allocate can only be mapped;
# sysfs gives it a size of 1 TiB (so that mmap length checks pass), which a plain read would try to buffer.
_PRESENCE_ONLY = ("/p2pmem/allocate",)


@dataclass
class _Entry:
    """One member to pack: a directory, a file with its bytes, or a symlink with its target."""

    kind: str  # "dir", "file" or "link"
    data: bytes = b""
    target: str = ""

    def listing(self) -> Dict[str, object]:
        """What the manifest says about this member."""
        if self.kind == "file":
            return {"type": "file", "size": len(self.data), "sha256": hashlib.sha256(self.data).hexdigest()}
        if self.kind == "link":
            return {"type": "link", "target": self.target}
        return {"type": "dir"}


@dataclass
class SnapshotManifest:
    """What a snapshot says about where and how it was taken, and what it holds."""

    format: int
    p2pctl_version: str
    hostname: Optional[str]
    kernel_release: Optional[str]
    taken_at: str
    as_root: bool
    unreadable: List[str]
    listed_only: int  # directories and symlinks kept only so that directory listings read the same
    members: Dict[str, Dict[str, object]] = field(default_factory=dict)  # tar member name -> Entry.listing()

    def to_dict(self) -> Dict[str, object]:
        return dict(self.__dict__)


def _p2pctl_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8 is not supported by the project
        return "unknown"
    try:
        return version("p2pdma-storage")
    except PackageNotFoundError:
        # Inside an Ansible module the collection runs without the CLI's package metadata.
        return "unknown"


def _relative_target(link_path: str, target: str) -> str:
    """A link target that stays inside the tree: absolute node targets become relative."""
    if not target.startswith("/"):
        return target
    return posixpath.relpath(posixpath.normpath(target), posixpath.dirname(link_path))


def _entry_of(root: SysRoot, path: str, unreadable: List[str]) -> Optional[_Entry]:
    """The member for node path ``path``, None when it does not exist or is not model input."""
    kind = root.kind(path)
    if kind == "link":
        return _Entry("link", target=_relative_target(path, root.readlink(path) or ""))
    if kind == "dir":
        return _Entry("dir")
    if kind == "file":
        if path.endswith(_PRESENCE_ONLY):
            return _Entry("file")
        return _Entry("file", data=_read_whole(root, path, unreadable))
    return None  # absent (the model asked whether it exists), or a device node, fifo or socket


def _add_listings(root: SysRoot, entries: Dict[str, _Entry], looked_into: Set[str], unreadable: List[str]) -> int:
    """Keep the subdirectories and symlinks of the directories the model looked into.

    The model uses some names from a listing without opening them (a dm device's
    slaves, the IOMMU groups, the class devices it then resolves); those are
    directories and symlinks, kept as they are (directories empty). Regular files in
    a listing that the model needs it also reads, so the ones it did not read are left
    out: a PCI device directory holds dozens of attributes, and a large node's snapshot
    would be mostly empty files. Returns how many entries were added.
    """
    added = 0
    for path in sorted(looked_into):
        entry = entries.get(path)
        if entry is None or entry.kind != "dir":
            continue
        try:
            names = root.listdir(path)
        except UnreadableError:
            continue
        for name in names:
            child = posixpath.join(path, name)
            if child in entries or root.kind(child) not in ("dir", "link"):
                continue
            entry = _entry_of(root, child, unreadable)
            if entry is not None:
                entries[child] = entry
                added += 1
    return added


def _read_whole(root: SysRoot, node_path: str, unreadable: List[str]) -> bytes:
    # sysfs reports 4096 (or 0 in procfs) as the size of every attribute: the bytes
    # actually read are the content, and the tar member gets their length.
    try:
        data = root.read_bytes(node_path)
    except UnreadableError:
        data = None
    if data is None:
        # Write-only attributes and files this user may not read: keep their existence,
        # and say in the manifest that their content is missing.
        unreadable.append(node_path)
        return b""
    return data


def _take(root: SysRoot) -> Tuple[SnapshotManifest, Dict[str, _Entry]]:
    """Read the node below ``root``: the manifest and the members, by tar member name."""
    recording = root.recording()
    node = read_node(recording)
    # Read through the recording root so that a snapshot of this snapshot still knows it.
    hostname = recording.read_text("/proc/sys/kernel/hostname")
    assert recording.touched is not None
    # Resolving every touched path inside the root passes through each directory and
    # symlink on the way and ends at the real file: those are the members.
    walker = root.recording()
    looked_into = {walker.realpath(path) for path in recording.touched}
    assert walker.touched is not None
    entries: Dict[str, _Entry] = {}
    unreadable: List[str] = []
    for path in sorted(walker.touched):
        entry = _entry_of(root, path, unreadable)
        if entry is not None:
            entries[path] = entry
    listed_only = _add_listings(root, entries, looked_into, unreadable)
    entries.pop("/", None)
    members = {name.lstrip("/"): entry for name, entry in entries.items()}
    manifest = SnapshotManifest(
        format=SNAPSHOT_FORMAT,
        p2pctl_version=_p2pctl_version(),
        hostname=hostname,
        kernel_release=node.kernel.release,
        taken_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        as_root=os.geteuid() == 0,
        unreadable=sorted(unreadable),
        listed_only=listed_only,
        members={name: entry.listing() for name, entry in members.items()},
    )
    return manifest, members


def _add_member(tar: tarfile.TarFile, name: str, entry: _Entry, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = int(mtime)
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    elif entry.kind == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
        info.mode = 0o777
        tar.addfile(info)
    else:
        info.size = len(entry.data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(entry.data))


def _write_archive(stream: IO[bytes], manifest: SnapshotManifest, members: Dict[str, _Entry]) -> None:
    now = time.time()
    # Stream mode: stdout may be a pipe, which cannot seek.
    with tarfile.open(fileobj=stream, mode="w|gz") as tar:
        manifest_bytes = json.dumps(manifest.to_dict(), indent=1, sort_keys=True).encode() + b"\n"
        _add_member(tar, MANIFEST_NAME, _Entry("file", data=manifest_bytes), now)
        # Sorted names put every directory before what it holds.
        for name in sorted(members):
            _add_member(tar, name, members[name], now)


def write_snapshot_stream(root: SysRoot, stream: BinaryIO) -> SnapshotManifest:
    """Read the node below ``root`` and write the snapshot to ``stream`` (stdout, for instance)."""
    manifest, members = _take(root)
    _write_archive(stream, manifest, members)
    return manifest


def write_snapshot(root: SysRoot, output: str) -> SnapshotManifest:
    """Read the node below ``root`` and write what was read to ``output`` (a .tar.gz).

    Written atomically (common/files.py), so a failed capture never leaves a truncated snapshot behind.
    """
    output_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(output_dir):
        raise P2PError(
            "cannot write snapshot %s: directory %s does not exist" % (output, output_dir),
            fix="create the directory or give another -o path",
        )
    manifest, members = _take(root)
    try:
        with open_atomic(output) as handle:
            _write_archive(handle, manifest, members)
    except OSError as exc:
        raise P2PError("cannot write snapshot %s: %s" % (output, exc.strerror), fix="give a writable -o path") from exc
    return manifest


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def _damaged(path: str, reason: str) -> P2PError:
    return P2PError("snapshot %s is damaged: %s" % (path, reason), fix=_TAKE_AGAIN)


def _unpacked_tar(path: str) -> bytes:
    """The tar inside the gzip'd snapshot at ``path``, in memory; the gzip checksum is checked."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(2)
            handle.seek(0)
            if magic != b"\x1f\x8b":
                raise P2PError("%s is neither a directory nor a p2pctl snapshot (not a gzip'd tar archive)" % path,
                               fix=_NOT_A_SNAPSHOT_FIX)
            data = gzip.GzipFile(fileobj=handle).read(_MAX_UNPACKED + 1)
    except EOFError as exc:
        raise _damaged(path, "the archive ends early (truncated)") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise _damaged(path, "the gzip stream is corrupt (%s)" % exc) from exc
    except OSError as exc:
        raise P2PError("cannot open snapshot %s: %s" % (path, exc.strerror), fix=_NOT_A_SNAPSHOT_FIX) from exc
    if len(data) > _MAX_UNPACKED:
        raise _damaged(path, "it unpacks to more than %d MiB, far more than any node's snapshot"
                       % (_MAX_UNPACKED >> 20))
    return data


def _c_string(field_bytes: bytes) -> str:
    return field_bytes.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(block: bytes, path: str) -> Dict[str, str]:
    """The ``key=value`` records of a pax extended header ("<length> <key>=<value>\\n" each)."""
    records = {}
    pos = 0
    try:
        while pos < len(block):
            space = block.index(b" ", pos)
            length = int(block[pos:space])
            if length <= space - pos:
                raise ValueError("record length %d" % length)
            key, _, value = block[space + 1:pos + length - 1].partition(b"=")
            records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
            pos += length
    except ValueError as exc:
        raise _damaged(path, "a pax header is corrupt (%s)" % exc) from exc
    return records


def _tar_members(data: bytes, path: str) -> Iterator[Tuple[str, bytes, str, bytes]]:
    """Each member of the tar ``data`` as (name, type flag, link target, content).

    A small reader of its own, because :mod:`tarfile` spends some 40 µs per member,
    and a large node's snapshot has tens of thousands: it reads the ustar headers and
    the pax and GNU long-name extensions that tar writers use for long sysfs paths.
    """
    pos = 0
    extended: Dict[str, str] = {}
    while True:
        header = data[pos:pos + _BLOCK]
        if len(header) < _BLOCK:
            raise _damaged(path, "the archive ends inside its member list (truncated)")
        if header == _END_OF_ARCHIVE:
            return
        try:
            size = int(extended["size"]) if "size" in extended else int(header[124:136].strip(b"\0 ") or b"0", 8)
        except ValueError as exc:
            raise _damaged(path, "a member header at byte %d is corrupt" % pos) from exc
        flag = header[156:157]
        start = pos + _BLOCK
        content = data[start:start + size]
        if len(content) < size:
            raise _damaged(path, "the archive ends inside a member (truncated)")
        pos = start + -(-size // _BLOCK) * _BLOCK
        if flag == b"x":
            extended.update(_pax_records(content, path))
        elif flag in (b"L", b"K"):
            extended["path" if flag == b"L" else "linkpath"] = _c_string(content)
        elif flag != b"g":  # global pax headers carry nothing a snapshot needs
            name = extended.get("path")
            if name is None:
                name = _c_string(header[0:100])
                if header[257:263] == b"ustar\x00" and header[345] != 0:
                    name = _c_string(header[345:500]) + "/" + name
            target = extended.get("linkpath", _c_string(header[157:257])) if flag == b"2" else ""
            yield name, flag, target, content
            extended = {}


def _listing_of(members: List[Tuple[str, bytes, str, bytes]], path: str) -> Optional[Dict[str, Dict[str, object]]]:
    """The members the manifest lists (tar name -> Entry.listing()), None for format 1, which lists none."""
    content = next((m[3] for m in members if posixpath.normpath(m[0]) == MANIFEST_NAME), None)
    if content is None:
        raise P2PError("%s is a tar archive but not a p2pctl snapshot (no %s)" % (path, MANIFEST_NAME),
                       fix=_TAKE_AGAIN)
    try:
        manifest = json.loads(content.decode())
    except ValueError as exc:
        raise _damaged(path, "its manifest %s is not valid JSON" % MANIFEST_NAME) from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
        raise _damaged(path, "its manifest %s has no format number" % MANIFEST_NAME)
    if manifest["format"] not in _READABLE_FORMATS:
        raise P2PError("snapshot %s has format %s; this p2pctl reads formats %s"
                       % (path, manifest["format"], ", ".join(map(str, _READABLE_FORMATS))),
                       fix="use the p2pctl that took it, or take the snapshot again with this one")
    if manifest["format"] == 1:
        return None
    listed = manifest.get("members")
    if not isinstance(listed, dict):
        raise _damaged(path, "its manifest %s lists no members" % MANIFEST_NAME)
    return listed


def _checked_name(name: str, path: str) -> str:
    """The member's normalised name, after refusing names that leave the tree."""
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal == ".." or normal.startswith("../"):
        raise P2PError("snapshot %s holds member %r outside its tree" % (path, name), fix=_TAKE_AGAIN)
    return normal


def _check_against_listing(name: str, kind: str, target: str, content: bytes,
                           listing: Optional[Dict[str, object]], path: str) -> None:
    if listing is None:
        raise _damaged(path, "it holds %s, which its manifest does not list" % name)
    if listing.get("type") != kind:
        raise _damaged(path, "%s is a %s, its manifest lists a %s" % (name, kind, listing.get("type")))
    if kind == "link" and listing.get("target") != target:
        raise _damaged(path, "symlink %s points to %s, its manifest says %s" % (name, target, listing.get("target")))
    if kind == "file" and (
        listing.get("size") != len(content) or listing.get("sha256") != hashlib.sha256(content).hexdigest()
    ):
        raise _damaged(path, "the content of %s does not match its manifest (size and sha256)" % name)


def open_snapshot(path: str) -> MemoryRoot:
    """A read-only, in-memory SysRoot over the snapshot at ``path``, checked against its manifest."""
    members = list(_tar_members(_unpacked_tar(path), path))
    listed = _listing_of(members, path)
    root = MemoryRoot(path)
    seen: Set[str] = set()
    links: Set[str] = set()
    files: Set[str] = set()
    dirs: Set[str] = {"."}
    for raw_name, flag, target, content in members:
        name = _checked_name(raw_name, path)
        if name in (MANIFEST_NAME, "."):
            continue
        kind = _MEMBER_KINDS.get(flag)
        if kind is None:
            raise P2PError("snapshot %s holds %r, which is not a file, directory or symlink" % (path, raw_name),
                           fix=_TAKE_AGAIN)
        if name in seen:
            raise _damaged(path, "it holds %s twice" % name)
        if kind != "dir" and name in dirs:
            raise _damaged(path, "it holds %s both as a directory and as a %s" % (name, kind))
        seen.add(name)
        # Members are never stored below a symlink or a file, so a member's name is its
        # real path: the in-memory tree then needs no resolving for it, and a lexical
        # check of a link's target is exact.
        parent = posixpath.dirname(name) or "."
        while parent not in dirs:
            if parent in links:
                raise P2PError("snapshot %s stores %r below a symlink" % (path, raw_name), fix=_TAKE_AGAIN)
            if parent in files:
                raise _damaged(path, "it stores %s below the file %s" % (name, parent))
            dirs.add(parent)
            parent = posixpath.dirname(parent) or "."
        if listed is not None:
            _check_against_listing(name, kind, target, content, listed.get(name), path)
        node_path = "/" + name
        if kind == "file":
            files.add(name)
            root.add_file(node_path, content)
        elif kind == "dir":
            dirs.add(name)
            root.add_dir(node_path)
        else:
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise P2PError("snapshot %s holds symlink %r pointing outside the tree (%s)" % (path, raw_name, target),
                               fix=_TAKE_AGAIN)
            links.add(name)
            root.add_link(node_path, target)
    if listed is not None and len(seen) < len(listed):
        missing = sorted(set(listed) - seen)
        raise _damaged(path, "%d members its manifest lists are missing, e.g. %s" % (len(missing), missing[0]))
    return root


def open_root(spec: str) -> SysRoot:
    """The node to read: ``/``, a directory laid out like ``/``, or a snapshot file."""
    if os.path.isdir(spec):
        if not any(os.path.isdir(os.path.join(spec, top)) for top in ("sys", "proc")):
            raise P2PError("root %s has neither sys/ nor proc/: it is not a tree laid out like /" % spec,
                           fix=_NOT_A_SNAPSHOT_FIX)
        return SysRoot(spec)
    if not os.path.exists(spec):
        raise P2PError("root %s does not exist" % spec, fix=_NOT_A_SNAPSHOT_FIX)
    return open_snapshot(spec)
