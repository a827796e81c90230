# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one filesystem layer for sysfs, procfs, configfs and /boot.

Every read and write of kernel state goes through a :class:`SysRoot`, which maps
absolute paths such as ``/sys/bus/pci/devices`` below a root directory (``/`` on a
live node, a copy of a node's tree or a test tree otherwise). Absolute symlink targets
are resolved inside the root, so a tree never escapes to the host's own /sys.
A :class:`MemoryRoot` answers the same reads from a snapshot held in memory.

A SysRoot can record every path it touches; ``p2pctl snapshot`` uses that record to
capture exactly what the model read.
"""

from __future__ import annotations

import copy
import errno
import os
import posixpath
import stat
from typing import Callable, Dict, List, Optional, Set

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

_MAX_SYMLINK_HOPS = 40


def _node_path(path: str) -> str:
    """``path`` as an absolute, normalised node path (``..`` taken lexically, as the host would below a root)."""
    return posixpath.normpath("/" + path.lstrip("/"))


class UnreadableError(P2PError):
    """A file exists but this process may not read it (typically: not root)."""


class SysRoot:
    """Access to a Linux-like tree below ``root``.

    Paths given to every method are absolute, as on the node (``/sys/...``).
    Reads of missing files return ``None``; unreadable files raise
    :class:`UnreadableError` so that callers can report *what* could not be read.
    """

    def __init__(self, root: str = "/", record: bool = False, label: Optional[str] = None) -> None:
        self.root = os.path.abspath(root)
        self.touched: Optional[Set[str]] = set() if record else None
        # What the user named, when that is not ``root`` itself (a snapshot file).
        self.label = label or self.root

    def __repr__(self) -> str:
        return "SysRoot(%r)" % self.root

    def recording(self) -> SysRoot:
        """The same tree, read through a new root that records every path it touches."""
        recorder = copy.copy(self)
        recorder.touched = set()
        return recorder

    @property
    def is_live(self) -> bool:
        return self.root == "/"

    def host_path(self, path: str) -> str:
        """The real path on this machine for node path ``path``."""
        norm = _node_path(path)
        if self.root == "/":
            return norm
        return self.root + norm if norm != "/" else self.root

    def _resolved_host_path(self, path: str) -> Optional[str]:
        """The host path after resolving symlinks inside the root, when that differs.

        Only needed below a non-/ root whose tree holds absolute symlinks (the host would
        follow them out of the root); sysfs itself uses relative links, so the direct
        open succeeds and this is never reached on the hot path.
        """
        if self.root == "/":
            return None
        resolved = self.host_path(self._resolve(path, self._host_readlink))
        return resolved if resolved != self.host_path(path) else None

    def _host_readlink(self, path: str) -> Optional[str]:
        try:
            return os.readlink(self.host_path(path))
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                return None  # there, and not a symlink
        within = self._beside_links(path)
        if within is None:
            return None
        try:
            return os.readlink(self.host_path(within))
        except OSError:
            return None

    def _beside_links(self, path: str) -> Optional[str]:
        """For a path the host could not find: the same path with the symlinks before its last
        component resolved inside the root, when that leads elsewhere.

        Only an absolute link on the way (a hand-made tree) makes the host look outside the
        root; when the parent directory is there, the host's answer stands.
        """
        norm = _node_path(path)
        if self.root == "/" or os.path.isdir(os.path.dirname(self.host_path(norm))):
            return None
        within = self._within(norm)
        return within if within != norm else None

    def _within(self, path: str) -> str:
        """``path`` with every symlink before its last component resolved inside the root."""
        parent, name = posixpath.split(path)
        return posixpath.join(self._resolve(parent, self._host_readlink), name)

    def _touch(self, path: str) -> None:
        if self.touched is not None:
            self.touched.add(_node_path(path))

    def exists(self, path: str) -> bool:
        self._touch(path)
        if os.path.lexists(self.host_path(path)):
            return True
        resolved = self._resolved_host_path(path)
        return resolved is not None and os.path.lexists(resolved)

    def is_dir(self, path: str) -> bool:
        self._touch(path)
        if os.path.isdir(self.host_path(path)):
            return True
        resolved = self._resolved_host_path(path)
        return resolved is not None and os.path.isdir(resolved)

    def read_bytes(self, path: str, limit: int = -1) -> Optional[bytes]:
        self._touch(path)
        try:
            try:
                return self._read_host_file(self.host_path(path), limit)
            except FileNotFoundError:
                resolved = self._resolved_host_path(path)
                if resolved is None:
                    return None
                return self._read_host_file(resolved, limit)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            return None
        except PermissionError as exc:
            raise UnreadableError(
                "cannot read %s: permission denied" % path,
                fix="run as root (sysfs config space beyond 64 bytes and some attributes need root)",
            ) from exc
        except OSError as exc:
            # sysfs attributes of a device that vanished, or that the driver refuses to
            # show, answer ENODEV/EIO/EINVAL: treat them as absent, not as a crash.
            if exc.errno in (errno.ENODEV, errno.EIO, errno.EINVAL, errno.ENXIO, errno.ENOTSUP):
                return None
            raise UnreadableError("cannot read %s: %s" % (path, exc.strerror)) from exc

    @staticmethod
    def _read_host_file(host_path: str, limit: int) -> bytes:
        with open(host_path, "rb") as handle:
            return handle.read(limit)

    def read_text(self, path: str) -> Optional[str]:
        """File content with the trailing newline removed, or None if absent."""
        data = self.read_bytes(path)
        if data is None:
            return None
        return data.decode("utf-8", "replace").rstrip("\n")

    def read_log(self, path: str) -> Optional[str]:
        """The text of a log: a regular file, or a character device such as /dev/kmsg that hands out one
        record per read and blocks at its end (read here without blocking). None if absent."""
        if self.kind(path) is not None:
            return self.read_text(path)
        try:
            handle = os.open(self.host_path(path), os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise UnreadableError("cannot read %s: permission denied" % path, fix="run as root") from exc
        records = []
        try:
            while True:
                try:
                    record = os.read(handle, 8192)
                except BlockingIOError:
                    break
                except BrokenPipeError:
                    continue  # the ring buffer overwrote the next record while we read: go on with the one after
                if not record:
                    break
                records.append(record)
        finally:
            os.close(handle)
        return b"".join(records).decode("utf-8", "replace")

    def read_int(self, path: str, base: int = 0) -> Optional[int]:
        """An integer attribute (``0x``-prefixed values are hex by default), None if absent or not a number."""
        text = self.read_text(path)
        if text is None:
            return None
        try:
            return int(text.strip(), base)
        except ValueError:
            return None

    def listdir(self, path: str) -> list:
        """Sorted entries of a directory, [] if absent."""
        self._touch(path)
        try:
            try:
                return sorted(os.listdir(self.host_path(path)))
            except FileNotFoundError:
                resolved = self._resolved_host_path(path)
                if resolved is None:
                    return []
                return sorted(os.listdir(resolved))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except PermissionError as exc:
            raise UnreadableError("cannot list %s: permission denied" % path, fix="run as root") from exc

    def readlink(self, path: str) -> Optional[str]:
        self._touch(path)
        return self._host_readlink(path)

    def kind(self, path: str) -> Optional[str]:
        """What ``path`` itself is, its last component not followed: "dir", "file", "link" or None.

        None also for what the model never reads (device nodes, fifos, sockets).
        """
        self._touch(path)
        try:
            mode = os.lstat(self.host_path(path)).st_mode
        except OSError:
            within = self._beside_links(path)
            if within is None:
                return None
            try:
                mode = os.lstat(self.host_path(within)).st_mode
            except OSError:
                return None
        if stat.S_ISLNK(mode):
            return "link"
        if stat.S_ISDIR(mode):
            return "dir"
        return "file" if stat.S_ISREG(mode) else None

    def realpath(self, path: str) -> str:
        """Resolve every symlink in ``path`` inside the root; returns a node path.

        Relative targets are resolved against the link's directory, absolute ones
        against the root, the way the node itself would see them. Every component on
        the way counts as touched.
        """
        return self._resolve(path, self.readlink)

    @staticmethod
    def _resolve(path: str, readlink: Callable[[str], Optional[str]]) -> str:
        parts = [p for p in posixpath.normpath("/" + path.lstrip("/")).split("/") if p]
        resolved = "/"
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, part)
            target = readlink(candidate)
            if target is None:
                resolved = candidate
                continue
            hops += 1
            if hops > _MAX_SYMLINK_HOPS:
                raise P2PError("too many levels of symbolic links resolving %s" % path)
            if target.startswith("/"):
                resolved = "/"
            parts = [p for p in target.split("/") if p and p != "."] + parts
        return resolved

    # Writes are for configfs and /etc on the node; they are only ever called from a
    # module's apply step, never while planning.
    def write_text(self, path: str, value: str) -> None:
        self._touch(path)
        with open(self.host_path(path), "w") as handle:
            handle.write(value)

    def mkdir(self, path: str) -> None:
        os.mkdir(self.host_path(path))

    def rmdir(self, path: str) -> None:
        os.rmdir(self.host_path(path))

    def symlink(self, target: str, path: str) -> None:
        """Create ``path`` pointing at node path ``target`` (as configfs wants: absolute on the node)."""
        os.symlink(self.host_path(target), self.host_path(path))

    def unlink(self, path: str) -> None:
        os.unlink(self.host_path(path))


class MemoryRoot(SysRoot):
    """A read-only tree held in memory, answering the reads of :class:`SysRoot` the same way.

    Built member by member from a snapshot (directories, files with their bytes, symlinks
    with their targets). Member paths must be real: none lies below a symlink or a file.
    A path whose parent is a known directory therefore needs no resolving, and any other
    is resolved link by link inside the tree, relative and absolute targets alike. Nothing
    is ever written to disk, and nothing can be written to the tree.
    """

    def __init__(self, label: str, record: bool = False) -> None:
        super().__init__(label, record=record, label=label)
        self._files: Dict[str, bytes] = {}
        self._links: Dict[str, str] = {}
        self._dirs: Dict[str, List[str]] = {"/": []}

    def __repr__(self) -> str:
        return "MemoryRoot(%r)" % self.label

    def add_dir(self, path: str) -> None:
        if path not in self._dirs:
            self._dirs[path] = []
            self._place(path)

    def add_file(self, path: str, data: bytes) -> None:
        self._files[path] = data
        self._place(path)

    def add_link(self, path: str, target: str) -> None:
        self._links[path] = target
        self._place(path)

    def _place(self, path: str) -> None:
        parent, _, name = path.rpartition("/")
        parent = parent or "/"
        if parent not in self._dirs:
            self.add_dir(parent)  # archives may leave out the directories on the way
        self._dirs[parent].append(name)

    def host_path(self, path: str) -> str:
        raise P2PError(
            "%s is a snapshot read into memory: %s has no file on this machine and cannot be written"
            % (self.label, _node_path(path)),
            fix="write to a live node or a directory tree, not to a snapshot",
        )

    def _within(self, path: str) -> str:
        parent, name = posixpath.split(path)
        if parent in self._dirs:
            return path
        return posixpath.join(self._resolve(parent, self._links.get), name)

    def _real(self, path: str) -> str:
        if path in self._files or path in self._dirs:
            return path
        return self._resolve(path, self._links.get)

    def exists(self, path: str) -> bool:
        return self.kind(path) is not None

    def is_dir(self, path: str) -> bool:
        self._touch(path)
        return self._real(_node_path(path)) in self._dirs

    def read_bytes(self, path: str, limit: int = -1) -> Optional[bytes]:
        self._touch(path)
        data = self._files.get(self._real(_node_path(path)))
        return data if data is None or limit < 0 else data[:limit]

    def read_log(self, path: str) -> Optional[str]:
        return self.read_text(path)

    def listdir(self, path: str) -> list:
        self._touch(path)
        return sorted(self._dirs.get(self._real(_node_path(path)), []))

    def readlink(self, path: str) -> Optional[str]:
        self._touch(path)
        return self._links.get(self._within(_node_path(path)))

    def kind(self, path: str) -> Optional[str]:
        self._touch(path)
        member = self._within(_node_path(path))
        if member in self._files:
            return "file"
        if member in self._dirs:
            return "dir"
        return "link" if member in self._links else None
