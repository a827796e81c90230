# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy itself: bytes from one drive to another through a provider's p2pmem.

The buffer is the provider's ``p2pmem/allocate`` mapped into this process (MAP_SHARED,
offset 0, Linux 6.2 and later). O_DIRECT reads and writes hand its pages to the block
layer as they are, so the drives DMA into and out of the provider's BAR; a queue that
cannot take such pages fails the I/O (EREMOTEIO) instead of bouncing through system
memory. Whether the kernel really handed out p2pmem is read back from
``p2pmem/available``, which drops by the mapped size while the mapping is held.

The same copy through an anonymous (host-memory) buffer gives the comparison, and the
destination is read back through host memory to prove that it holds the source's bytes.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import time
from typing import Callable, List, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.plan import CopyPlan
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot

# The host-memory buffer for checksums: large enough for few syscalls, small for memory.
_VERIFY_CHUNK = 4 * 1024 * 1024
Observer = Callable[[memoryview], None]


def _io_error(what: str, path: str, exc: OSError) -> P2PError:
    if exc.errno == errno.EREMOTEIO:
        return P2PError(
            "%s %s failed with EREMOTEIO: the kernel refused the p2pmem pages for this queue" % (what, path),
            fix="use namespaces of PCIe NVMe controllers that the provider reaches (p2pctl distance)",
        )
    return P2PError("%s %s failed: %s" % (what, path, exc.strerror or exc), fix="see the kernel log (dmesg)")


def _move_chunk(src: int, dst: Optional[int], chunk: memoryview, position: int, names: Tuple[str, str]) -> None:
    count = len(chunk)
    try:
        got = os.preadv(src, [chunk], position)
    except OSError as exc:
        raise _io_error("O_DIRECT read of", names[0], exc) from exc
    if got != count:
        raise P2PError("short read of %s at byte %d: %d of %d bytes" % (names[0], position, got, count),
                       fix="give a size and offset inside the source")
    if dst is None:
        return
    try:
        put = os.pwritev(dst, [chunk], position)
    except OSError as exc:
        raise _io_error("O_DIRECT write to", names[1], exc) from exc
    if put != count:
        raise P2PError("short write to %s at byte %d: %d of %d bytes" % (names[1], position, put, count),
                       fix="give a size and offset inside the destination")


def transfer(
    source: str,
    destination: Optional[str],
    offset: int,
    size: int,
    buffer: memoryview,
    observe: Optional[Observer] = None,
) -> float:
    """Copy ``size`` bytes at ``offset`` from ``source`` to ``destination`` through ``buffer``, O_DIRECT.

    Works in chunks of the buffer's length; with no destination only reads. ``observe``
    sees each chunk as it landed in the buffer. Returns the seconds spent, fsync included.
    """
    started = time.monotonic()
    src = os.open(source, os.O_RDONLY | os.O_DIRECT)
    dst: Optional[int] = None
    try:
        if destination:
            dst = os.open(destination, os.O_WRONLY | os.O_DIRECT)
        position = offset
        while position < offset + size:
            with buffer[:min(len(buffer), offset + size - position)] as chunk:
                _move_chunk(src, dst, chunk, position, (source, destination or ""))
                if observe is not None:
                    observe(chunk)
                position += len(chunk)
        if dst is not None:
            os.fsync(dst)
    finally:
        os.close(src)
        if dst is not None:
            os.close(dst)
    return time.monotonic() - started


def sha256_range(path: str, offset: int, size: int) -> str:
    """The sha256 of ``size`` bytes at ``offset``, read with O_DIRECT into host memory (not any cache)."""
    digest = hashlib.sha256()
    with mmap.mmap(-1, min(size, _VERIFY_CHUNK)) as buffer, memoryview(buffer) as view:
        transfer(path, None, offset, size, view, observe=digest.update)
    return digest.hexdigest()


def host_memory_copy(source: str, destination: Optional[str], offset: int, size: int) -> float:
    """The same copy through an anonymous mapping in system memory: the comparison."""
    with mmap.mmap(-1, size) as buffer, memoryview(buffer) as view:
        return transfer(source, destination, offset, size, view)


def _rate(size: int, seconds: float) -> Optional[float]:
    return size / seconds if seconds > 0 else None


def _ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def run_copy(plan: CopyPlan, root: SysRoot) -> dict:
    """Run a planned copy through p2pmem, verify it, repeat it through host memory; the result dict."""
    source = root.host_path(plan.source.device)
    destination = root.host_path(plan.destination.device) if plan.destination is not None else None
    evidence: List[str] = []
    available_before = root.read_int(plan.available_path, 10)
    read_half = hashlib.sha256()
    try:
        handle = os.open(root.host_path(plan.allocate_path), os.O_RDWR)
    except OSError as exc:
        raise P2PError("cannot open %s: %s" % (plan.allocate_path, exc.strerror), fix="run as root") from exc
    try:
        try:
            p2pmem = mmap.mmap(handle, plan.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        except OSError as exc:
            raise P2PError("mmap of %d bytes of %s failed: %s" % (plan.size, plan.allocate_path, exc.strerror),
                           fix="give a smaller size (p2pmem/available of %s)" % plan.provider) from exc
    finally:
        os.close(handle)
    with p2pmem, memoryview(p2pmem) as view:
        available_held = root.read_int(plan.available_path, 10)
        seconds = transfer(source, destination, plan.offset, plan.size, view,
                           observe=read_half.update if destination is None else None)
    dropped = None if available_before is None or available_held is None else available_before - available_held
    evidence.append("%s: %s bytes before mapping, %s while %d bytes were mapped"
                    % (plan.available_path, available_before, available_held, plan.size))
    p2p_used = dropped is not None and dropped >= plan.size
    if dropped is not None and p2p_used:
        evidence.append("p2pmem/available dropped by %d bytes: the buffer was p2pmem of %s" % (dropped, plan.provider))
    else:
        evidence.append("p2pmem/available did not drop by the buffer's %d bytes: the buffer was not p2pmem"
                        % plan.size)
    what = "read into p2pmem" if destination is None else "copied through the buffer"
    evidence.append("%d bytes %s with O_DIRECT from %s%s in %.3f s" % (
        plan.size, what, plan.source.device,
        "" if plan.destination is None else " to %s" % plan.destination.device, seconds))
    sha_source = sha256_range(source, plan.offset, plan.size)
    if destination is not None:
        sha_destination: Optional[str] = sha256_range(destination, plan.offset, plan.size)
        checked, label = sha_destination, "destination, read back through host memory"
    else:
        sha_destination = None
        checked, label = read_half.hexdigest(), "bytes that landed in the buffer"
    if checked != sha_source:
        raise P2PError("the %s (sha256 %s) differ from the source range (sha256 %s)" % (label, checked, sha_source),
                       fix="see the kernel log (dmesg) for I/O errors on %s" % plan.source.device)
    evidence.append("sha256 of the %s equals the source range's: %s" % (label, sha_source))
    host_seconds = host_memory_copy(source, destination, plan.offset, plan.size)
    throughput = _rate(plan.size, seconds)
    host_throughput = _rate(plan.size, host_seconds)
    limit = plan.link_limit.bytes_per_second
    return {
        "bytes": plan.size,
        "p2p_used": p2p_used,
        "sha256": {"source": sha_source, "destination": sha_destination},
        "seconds": seconds,
        "throughput": throughput,
        "host_memory_seconds": host_seconds,
        "host_memory_throughput": host_throughput,
        "link_limit": plan.link_limit.to_dict(),
        "ratio_to_host_memory": _ratio(throughput, host_throughput),
        "ratio_to_link_limit": _ratio(throughput, limit),
        "path": dict(plan.paths),
        "evidence": evidence,
    }
