# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots: exactly the files the model reads, packed so any node can be judged offline.

A snapshot is a gzip'd tar laid out like ``/`` (members ``sys/...``, ``proc/...``) plus a
small manifest. It is made by reading the node once through a recording :class:`SysRoot`
and packing every touched path that exists, with the directories and symlinks on the way,
so that a second read of the unpacked tree sees the same node.

Opening a snapshot unpacks it into a private temporary directory, refusing anything
that could write outside it (absolute names, ``..``, links leaving the tree, devices).
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import time
import weakref
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node

MANIFEST_NAME = "p2pctl-snapshot.json"
SNAPSHOT_FORMAT = 1
_NOT_A_SNAPSHOT_FIX = "give a directory laid out like / or a file written by 'p2pctl snapshot -o FILE.tar.gz'"


@dataclass
class _Entry:
    """One member to pack: a directory, a file with its bytes, or a symlink with its target."""

    kind: str  # "dir", "file" or "link"
    data: bytes = b""
    target: str = ""


@dataclass
class SnapshotManifest:
    """What a snapshot says about where and how it was taken."""

    format: int
    p2pctl_version: str
    hostname: Optional[str]
    kernel_release: Optional[str]
    taken_at: str
    as_root: bool
    unreadable: List[str]
    listed_only: int  # directories and symlinks kept only so that directory listings read the same

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
    host = root.host_path(path)
    try:
        info = os.lstat(host)
    except OSError:
        return None  # the model asked whether it exists; it does not
    if stat.S_ISLNK(info.st_mode):
        return _Entry("link", target=_relative_target(path, os.readlink(host)))
    if stat.S_ISDIR(info.st_mode):
        return _Entry("dir")
    if stat.S_ISREG(info.st_mode):
        return _Entry("file", data=_read_whole(host, path, unreadable))
    return None  # device nodes, fifos and sockets


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
            names = os.listdir(root.host_path(path))
        except OSError:
            continue
        for name in names:
            child = posixpath.join(path, name)
            if child in entries:
                continue
            try:
                mode = os.lstat(root.host_path(child)).st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
                entry = _entry_of(root, child, unreadable)
                if entry is not None:
                    entries[child] = entry
                    added += 1
    return added


def _read_whole(host: str, node_path: str, unreadable: List[str]) -> bytes:
    # sysfs reports 4096 (or 0 in procfs) as the size of every attribute: the bytes
    # actually read are the content, and the tar member gets their length.
    try:
        with open(host, "rb") as handle:
            return handle.read()
    except OSError:
        # Write-only attributes and files this user may not read: keep their existence,
        # and say in the manifest that their content is missing.
        unreadable.append(node_path)
        return b""


def _add_member(tar: tarfile.TarFile, name: str, entry: _Entry, mtime: float) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
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


def write_snapshot(root: SysRoot, output: str) -> SnapshotManifest:
    """Read the node below ``root`` and write what was read to ``output`` (a .tar.gz).

    The file is written next to its final name and renamed into place, so a failed
    capture never leaves a truncated snapshot behind.
    """
    recording = SysRoot(root.root, record=True)
    node = read_node(recording)
    # Read through the recording root so that a snapshot of this snapshot still knows it.
    hostname = recording.read_text("/proc/sys/kernel/hostname")
    assert recording.touched is not None
    # Resolving every touched path inside the root passes through each directory and
    # symlink on the way and ends at the real file: those are the members.
    walker = SysRoot(root.root, record=True)
    looked_into = {walker.realpath(path) for path in recording.touched}
    assert walker.touched is not None
    entries: Dict[str, _Entry] = {}
    unreadable: List[str] = []
    for path in sorted(walker.touched):
        entry = _entry_of(walker, path, unreadable)
        if entry is not None:
            entries[path] = entry
    listed_only = _add_listings(walker, entries, looked_into, unreadable)
    entries.pop("/", None)
    manifest = SnapshotManifest(
        format=SNAPSHOT_FORMAT,
        p2pctl_version=_p2pctl_version(),
        hostname=hostname,
        kernel_release=node.kernel.release,
        taken_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        as_root=os.geteuid() == 0,
        unreadable=sorted(unreadable),
        listed_only=listed_only,
    )
    output_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(output_dir):
        raise P2PError(
            "cannot write snapshot %s: directory %s does not exist" % (output, output_dir),
            fix="create the directory or give another -o path",
        )
    now = time.time()
    partial = os.path.join(output_dir, ".%s.%d.partial" % (os.path.basename(output), os.getpid()))
    try:
        # Created like any new file (0666 less the umask): it is meant to be attached and shared.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            manifest_bytes = json.dumps(manifest.to_dict(), indent=2, sort_keys=True).encode() + b"\n"
            _add_member(tar, MANIFEST_NAME, _Entry("file", data=manifest_bytes), now)
            # Sorted node paths put every directory before what it holds.
            for name in sorted(entries):
                _add_member(tar, name, entries[name], now)
        os.replace(partial, output)
    except OSError as exc:
        raise P2PError("cannot write snapshot %s: %s" % (output, exc.strerror), fix="give a writable -o path") from exc
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return manifest


def _checked_members(tar: tarfile.TarFile, path: str) -> Tuple[List[tarfile.TarInfo], Dict[str, object]]:
    """The members to unpack, after refusing everything that could leave the tree."""
    members = tar.getmembers()
    names = {m.name for m in members}
    if MANIFEST_NAME not in names:
        raise P2PError("%s is a tar archive but not a p2pctl snapshot (no %s)" % (path, MANIFEST_NAME),
                       fix=_NOT_A_SNAPSHOT_FIX)
    links = set()
    checked = []
    for member in members:
        name = posixpath.normpath(member.name)
        parts = name.split("/")
        if member.name.startswith("/") or ".." in parts:
            raise P2PError("snapshot %s holds member %r outside its tree" % (path, member.name),
                           fix="take the snapshot again with 'p2pctl snapshot'")
        if not (member.isdir() or member.isfile() or member.issym()):
            raise P2PError("snapshot %s holds %r, which is not a file, directory or symlink" % (path, member.name),
                           fix="take the snapshot again with 'p2pctl snapshot'")
        # Members are never stored below a symlink, so a link's lexical location is its
        # real one and a lexical check of its target is exact.
        if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
            raise P2PError("snapshot %s stores %r below a symlink" % (path, member.name),
                           fix="take the snapshot again with 'p2pctl snapshot'")
        if member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
                raise P2PError("snapshot %s holds symlink %r pointing outside the tree (%s)"
                               % (path, member.name, member.linkname),
                               fix="take the snapshot again with 'p2pctl snapshot'")
            links.add(name)
        checked.append(member)
    manifest_file = tar.extractfile(MANIFEST_NAME)
    try:
        manifest = json.loads(manifest_file.read().decode()) if manifest_file else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != SNAPSHOT_FORMAT:
        raise P2PError("%s has an unreadable or unknown-format snapshot manifest" % path,
                       fix="take the snapshot again with this version of 'p2pctl snapshot'")
    return checked, manifest


def _unpack(tar: tarfile.TarFile, members: List[tarfile.TarInfo], into: str) -> None:
    # A large node has tens of thousands of members: remember the directories made
    # rather than asking the filesystem again for every member's parent.
    made = {into}

    def make_dir(path: str) -> None:
        if path not in made:
            os.makedirs(path, exist_ok=True)
            made.add(path)

    for member in members:
        if member.name == MANIFEST_NAME:
            continue
        dest = os.path.join(into, posixpath.normpath(member.name))
        if member.isdir():
            make_dir(dest)
            continue
        make_dir(os.path.dirname(dest))
        if member.issym():
            os.symlink(member.linkname, dest)
            continue
        source = tar.extractfile(member)
        with open(dest, "wb") as handle:
            if source is not None:
                shutil.copyfileobj(source, handle)


def _open_tar(path: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:*")
    except (tarfile.TarError, EOFError) as exc:
        raise P2PError("%s is neither a directory nor a p2pctl snapshot (not a tar archive)" % path,
                       fix=_NOT_A_SNAPSHOT_FIX) from exc
    except OSError as exc:
        raise P2PError("cannot open snapshot %s: %s" % (path, exc.strerror), fix=_NOT_A_SNAPSHOT_FIX) from exc


def open_snapshot(path: str) -> SysRoot:
    """A SysRoot over the snapshot at ``path``, unpacked into a private temporary directory.

    The directory is removed when the returned SysRoot is garbage-collected or the
    process exits.
    """
    with _open_tar(path) as tar:
        members, _ = _checked_members(tar, path)
        tmpdir = tempfile.mkdtemp(prefix="p2pctl-snapshot-")
        try:
            _unpack(tar, members, tmpdir)
        except (OSError, tarfile.TarError, EOFError) as exc:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise P2PError("cannot unpack snapshot %s: %s" % (path, exc), fix=_NOT_A_SNAPSHOT_FIX) from exc
    root = SysRoot(tmpdir, label=path)
    weakref.finalize(root, shutil.rmtree, tmpdir, True)
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
