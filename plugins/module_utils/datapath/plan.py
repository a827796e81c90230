# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a peer-to-peer copy would do, or why it must not start.

:func:`plan_copy` resolves the source, the destination and the provider on the node
model and refuses, before any I/O, everything the kernel would refuse or that would
destroy data by surprise: a pair the kernel's distance check rejects, a block device
whose queue cannot take p2pmem pages (the kernel answers EREMOTEIO), a kernel without
user-space p2pmem, an unpublished provider, a buffer larger than the provider's free
p2pmem, and a destination that is mounted, held, or carries a partition table or a
filesystem. Every refusal is a :class:`P2PError` with the reason and the fix.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.link import LinkLimit, link_limit, transfer_path
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import SYS_PCI_DEVICES, BlockDevice, Node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.rules import rules_for
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import distance_many, publication

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
# Enough of the start of a device to see every signature below (btrfs sits at 64 KiB,
# swap at the end of the first page, up to 64 KiB pages).
SIGNATURE_BYTES = 128 * 1024
# When sysfs does not say, assume the larger common logical block size: safe for O_DIRECT.
ASSUMED_BLOCK_SIZE = 4096
_NO_P2P_QUEUE = {
    "nvme-multipath": "an NVMe multipath head node",
    "nvme-fabrics": "a namespace of an NVMe over Fabrics controller",
    "dm": "a device-mapper device",
    "md": "an MD RAID device",
    "loop": "a loop device",
    "other": "not a namespace of a PCIe NVMe controller",
}


def parse_size(text: str) -> int:
    """Bytes from ``4096``, ``64K``, ``64M``, ``1G``, ``1GiB`` (binary units)."""
    match = _SIZE_RE.match(str(text))
    if match is None:
        raise P2PError("size %r is not a number of bytes" % text, fix="give bytes, or a number with K, M, G or T")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def find_signatures(data: bytes) -> List[str]:
    """Partition tables and filesystem signatures found in the first bytes of a device."""

    def at(offset: int, magic: bytes) -> bool:
        return data[offset:offset + len(magic)] == magic

    found = []
    if at(510, b"\x55\xaa"):
        found.append("MBR or boot sector (0x55AA at byte 510)")
    for block_size in (512, 4096):
        if at(block_size, b"EFI PART"):
            found.append("GPT partition table ('EFI PART' at LBA 1, %d-byte blocks)" % block_size)
    if at(1080, struct.pack("<H", 0xEF53)):
        found.append("ext2/3/4 filesystem (magic 0xEF53 at byte 1080)")
    if at(0, b"XFSB"):
        found.append("XFS filesystem ('XFSB' at byte 0)")
    if at(65600, b"_BHRfS_M"):
        found.append("btrfs filesystem ('_BHRfS_M' at byte 65600)")
    for page in (4096, 8192, 16384, 65536):
        if at(page - 10, b"SWAPSPACE2") or at(page - 10, b"SWAP-SPACE"):
            found.append("swap area (signature at byte %d)" % (page - 10))
    for sector in range(4):
        if at(sector * 512, b"LABELONE"):
            found.append("LVM2 physical volume ('LABELONE' in sector %d)" % sector)
    return found


@dataclass
class Disk:
    """A whole block device to read or write, with what O_DIRECT needs to know."""

    name: str
    device: str  # node path of the device node, /dev/<name>
    controller: str
    bdf: str
    block_size: int
    size: Optional[int]  # bytes, None when sysfs does not say

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "device": self.device,
            "controller": self.controller,
            "bdf": self.bdf,
            "logical_block_size": self.block_size,
            "size": self.size,
        }


@dataclass
class CopyPlan:
    """A copy that passed every refusal: what will be read, through which p2pmem, and written where."""

    source: Disk
    destination: Optional[Disk]
    provider: str
    size: int
    offset: int
    available: int
    distance: int
    paths: Dict[str, List[str]]
    link_limit: LinkLimit
    forced_over: List[str] = field(default_factory=list)  # what force=true let through

    @property
    def allocate_path(self) -> str:
        return "%s/%s/p2pmem/allocate" % (SYS_PCI_DEVICES, self.provider)

    @property
    def available_path(self) -> str:
        return "%s/%s/p2pmem/available" % (SYS_PCI_DEVICES, self.provider)

    def describe(self) -> str:
        """One sentence: what the copy reads and, above all, what it overwrites."""
        read = "read %d bytes at offset %d of %s (%s) into p2pmem of %s" % (
            self.size, self.offset, self.source.device, self.source.bdf, self.provider)
        if self.destination is None:
            return read + "; write nothing (read-only)"
        return read + "; overwrite bytes %d-%d of %s (%s) with them" % (
            self.offset, self.offset + self.size - 1, self.destination.device, self.destination.bdf)

    def to_dict(self) -> dict:
        return {
            "source": self.source.to_dict(),
            "destination": None if self.destination is None else self.destination.to_dict(),
            "provider": self.provider,
            "size": self.size,
            "offset": self.offset,
            "p2pmem_available": self.available,
            "distance": self.distance,
            "path": dict(self.paths),
            "link_limit": self.link_limit.to_dict(),
            "would_write": self.describe(),
            "forced_over": list(self.forced_over),
        }


def _disk(node: Node, spec: str, role: str) -> Disk:
    name = spec[5:] if spec.startswith("/dev/") else spec
    block = node.block.get(name)
    if block is None or block.hidden:
        namespaces = sorted(b for b, dev in node.block.items() if dev.kind == "nvme-pci" and not dev.hidden)
        raise P2PError(
            "%s %s is not a block device on this node" % (role, spec),
            fix="name a whole NVMe namespace: %s" % (", ".join(namespaces) or "none found"),
        )
    if not block.can_do_p2p or block.bdf is None or block.controller is None:
        raise P2PError(
            "%s %s is %s: its request queue has no P2PDMA support, so the kernel fails O_DIRECT I/O with "
            "p2pmem pages (EREMOTEIO)" % (role, spec, _NO_P2P_QUEUE.get(block.kind, block.kind)),
            fix=_no_p2p_fix(node, block),
        )
    root = node.root
    block_size = root.read_int("/sys/block/%s/queue/logical_block_size" % name, 10) or ASSUMED_BLOCK_SIZE
    sectors = root.read_int("/sys/block/%s/size" % name, 10)
    return Disk(
        name=name,
        device="/dev/" + name,
        controller=block.controller,
        bdf=block.bdf,
        block_size=block_size,
        size=None if sectors is None else sectors * 512,
    )


def _no_p2p_fix(node: Node, block: BlockDevice) -> str:
    if block.kind == "nvme-multipath":
        paths = ", ".join(block.backing) or "nvmeX"
        return "boot with nvme_core.multipath=N to get a per-controller namespace of %s" % paths
    return "use a namespace of a PCIe NVMe controller (nvmeXnY below a PCI function)"


def _provider_state(node: Node, bdf: str, spec: str) -> dict:
    state = publication(node, bdf)
    if not state["has_p2pmem"]:
        raise P2PError("provider %s offers no p2pmem: %s" % (spec, state["why"]),
                       fix="pick a provider with a published p2pmem directory (an NVMe CMB with WDS and RDS)")
    allocate = "%s/%s/p2pmem/allocate" % (SYS_PCI_DEVICES, bdf)
    mem = node.functions[bdf].p2pmem
    if mem is None or not mem.allocate:
        release = node.kernel.release or "(unknown release)"
        if rules_for(node).has_p2pmem_allocate:
            raise P2PError("%s is missing although kernel %s is 6.2 or later: a snapshot or a copy of /sys "
                           "does not hold it" % (allocate, release), fix="run on the node itself")
        raise P2PError(
            "kernel %s has no %s: user-space p2pmem (mmap of p2pmem/allocate) came with Linux 6.2"
            % (release, allocate),
            fix="boot a 6.2 or later kernel with CONFIG_PCI_P2PDMA=y (p2pctl kernel build builds one)",
        )
    if not state["published"]:
        raise P2PError("provider %s (%s) is not published: %s" % (spec, bdf, state["why"]),
                       fix="pick a published provider (p2pmem/published reads 1)")
    return state


def _check_extent(disk: Disk, size: int, offset: int, role: str) -> None:
    if size % disk.block_size or offset % disk.block_size:
        raise P2PError(
            "size %d and offset %d must be multiples of %s's logical block size (%d bytes) for O_DIRECT"
            % (size, offset, disk.name, disk.block_size),
            fix="round size and offset to a multiple of %d" % disk.block_size,
        )
    if disk.size is not None and offset + size > disk.size:
        raise P2PError(
            "%s %s holds %d bytes: offset %d + size %d runs past its end" % (role, disk.name, disk.size, offset, size),
            fix="give a smaller size or offset",
        )


def destination_in_use(root: SysRoot, name: str) -> List[str]:
    """Why writing over ``name`` would hurt someone: its mounts and holders, its partitions' too."""
    partitions = [entry for entry in root.listdir("/sys/block/" + name)
                  if entry.startswith(name) and root.exists("/sys/block/%s/%s/partition" % (name, entry))]
    devices = [name] + partitions
    numbers = {}
    for device in devices:
        sysfs = "/sys/block/%s" % name + ("" if device == name else "/" + device)
        number = root.read_text(sysfs + "/dev")
        if number:
            numbers[number.strip()] = device
    reasons = ["/dev/%s is mounted on %s" % (device, where) for device, where in _mounts(root, devices, numbers)]
    for device in devices:
        sysfs = "/sys/block/%s" % name + ("" if device == name else "/" + device)
        holders = root.listdir(sysfs + "/holders")
        if holders:
            reasons.append("/dev/%s is held by %s (%s/holders)" % (device, ", ".join(holders), sysfs))
    return reasons


def _mounts(root: SysRoot, devices: List[str], numbers: Dict[str, str]) -> List[Tuple[str, str]]:
    found = []
    mountinfo = root.read_text("/proc/self/mountinfo")
    if mountinfo is not None:
        for line in mountinfo.splitlines():
            fields = line.split()
            if len(fields) < 5 or " - " not in line:
                continue
            source = line.split(" - ", 1)[1].split()
            by_source = source[1][5:] if len(source) > 1 and source[1].startswith("/dev/") else None
            device = numbers.get(fields[2]) or (by_source if by_source in devices else None)
            if device:
                found.append((device, fields[4]))
        return found
    for line in (root.read_text("/proc/mounts") or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith("/dev/") and fields[0][5:] in devices:
            found.append((fields[0][5:], fields[1]))
    return found


def _destination_refusals(root: SysRoot, disk: Disk) -> List[str]:
    reasons = destination_in_use(root, disk.name)
    try:
        head = root.read_bytes(disk.device, SIGNATURE_BYTES)
    except P2PError as err:
        raise P2PError("cannot read %s to look for a filesystem: %s" % (disk.device, err.message),
                       fix="run as root") from err
    if head is None:
        raise P2PError("destination %s has no device node %s" % (disk.name, disk.device),
                       fix="check that udev created %s, or name the device as /dev lists it" % disk.device)
    reasons += ["%s carries a signature: %s" % (disk.device, found) for found in find_signatures(head)]
    return reasons


def plan_copy(
    node: Node,
    source: str,
    destination: Optional[str],
    provider: str,
    size: int,
    offset: int = 0,
    force: bool = False,
) -> CopyPlan:
    """Resolve and check a copy; raise :class:`P2PError` for the first reason it must not run."""
    src = _disk(node, source, "source")
    dst = _disk(node, destination, "destination") if destination else None
    if dst is not None and dst.name == src.name:
        raise P2PError("source and destination are both %s" % src.name, fix="copy to another namespace")
    bdf = node.resolve(provider)
    disks = [src] + ([dst] if dst is not None else [])
    verdict = distance_many(node, bdf, [disk.name for disk in disks])
    if not verdict.supported:
        refused = [pair for pair in verdict.clients if not pair.supported]
        raise P2PError(
            "the kernel refuses p2pmem of %s for %s: %s" % (
                bdf, ", ".join(pair.client_name or pair.client or "?" for pair in refused), refused[0].reason),
            fix=refused[0].fix or "pick a provider below the same switch as the drives",
        )
    state = _provider_state(node, bdf, provider)
    if size <= 0 or offset < 0:
        raise P2PError("size %d / offset %d: the size must be positive and the offset not negative" % (size, offset),
                       fix="give --size N (e.g. 64M) and an offset >= 0")
    if size % mmap.PAGESIZE:
        raise P2PError("size %d is not a multiple of the page size (%d): p2pmem is mapped in whole pages"
                       % (size, mmap.PAGESIZE), fix="round the size to a multiple of %d" % mmap.PAGESIZE)
    if size > state["available"]:
        raise P2PError(
            "size %d is larger than the %d bytes of p2pmem available on %s (of %d)"
            % (size, state["available"], bdf, state["size"]),
            fix="give --size %d or less; NVMe submission queues in the CMB take part of it "
            "(boot with nvme.use_cmb_sqes=0 to keep it all for peer-to-peer use)" % state["available"],
        )
    for disk, role in zip(disks, ("source", "destination")):
        _check_extent(disk, size, offset, role)
    forced_over: List[str] = []
    if dst is not None:
        reasons = _destination_refusals(node.root, dst)
        if reasons and not force:
            raise P2PError(
                "refusing to overwrite %s: %s" % (dst.device, "; ".join(reasons)),
                fix="pick an unused namespace, or pass --force / force: true to destroy what it holds",
            )
        forced_over = reasons
    return CopyPlan(
        source=src,
        destination=dst,
        provider=bdf,
        size=size,
        offset=offset,
        available=state["available"],
        distance=verdict.distance,
        paths={(pair.client_name or pair.client or "?"): transfer_path(node, pair) for pair in verdict.clients},
        link_limit=link_limit(node, verdict.clients),
        forced_over=forced_over,
    )
