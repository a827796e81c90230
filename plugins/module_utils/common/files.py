# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files that are either the old version or the new one, never half of either.

A reader (a later run, the lab's other users, nvmet's restore at boot) must never see a
truncated file, also not after a crash or a power cut. So every file is written under a
temporary name in its own directory, flushed to disk, renamed over the old one, and then
the directory itself is flushed: without that last step the rename may not survive a
crash, and the old file comes back (or none at all).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]

# What a file created with open() gets under the usual umask 022.
DEFAULT_MODE = 0o644


@contextlib.contextmanager
def open_atomic(path: PathLike, mode: int = DEFAULT_MODE) -> Iterator[IO[bytes]]:
    """A binary handle whose content replaces ``path`` when the block ends without an exception.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    fd, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(target), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(directory)


def write_atomic(path: PathLike, content: Union[str, bytes], mode: int = DEFAULT_MODE) -> None:
    """Replace ``path`` with ``content`` (text is written as UTF-8) in one step."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with open_atomic(path, mode) as handle:
        handle.write(data)


def fsync_directory(directory: PathLike) -> None:
    """Make the entries of ``directory`` (a rename into it) durable."""
    fd = os.open(os.fspath(directory), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["DEFAULT_MODE", "fsync_directory", "open_atomic", "write_atomic"]
