# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one filesystem layer for sysfs, procfs, configfs and /boot.

Every read and write of kernel state goes through a :class:`SysRoot`, which maps
absolute paths such as ``/sys/bus/pci/devices`` below a root directory (``/`` on a
live node, an unpacked snapshot or a test tree otherwise). Absolute symlink targets
are resolved inside the root, so a snapshot never escapes to the host's own /sys.

A SysRoot can record every path it touches; ``p2pctl snapshot`` uses that record to
capture exactly what the model read.
"""

from __future__ import annotations

import errno
import os
import posixpath
from typing import Optional, Set

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

_MAX_SYMLINK_HOPS = 40


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
        # What the user named, when that is not ``root`` itself (a snapshot unpacked to a temporary directory).
        self.label = label or self.root

    def __repr__(self) -> str:
        return "SysRoot(%r)" % self.root

    @property
    def is_live(self) -> bool:
        return self.root == "/"

    def host_path(self, path: str) -> str:
        """The real path on this machine for node path ``path``."""
        norm = posixpath.normpath("/" + path.lstrip("/"))
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
        resolved = self.host_path(self.realpath(path))
        return resolved if resolved != self.host_path(path) else None

    def _touch(self, path: str) -> None:
        if self.touched is not None:
            self.touched.add(posixpath.normpath("/" + path.lstrip("/")))

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
        try:
            return os.readlink(self.host_path(path))
        except (FileNotFoundError, OSError):
            return None

    def realpath(self, path: str) -> str:
        """Resolve every symlink in ``path`` inside the root; returns a node path.

        Relative targets are resolved against the link's directory, absolute ones
        against the root, the way the node itself would see them.
        """
        parts = [p for p in posixpath.normpath("/" + path.lstrip("/")).split("/") if p]
        resolved = "/"
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, part)
            target = self.readlink(candidate)
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
