# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node as P2PDMA sees it: PCI functions, NVMe, RDMA, netdevs, block devices, kernel.

Everything is read once through a :class:`SysRoot` by :func:`read_node`; nothing here
writes. The topology follows what the kernel walks: a function's upstream bridge is
``pci_upstream_bridge()`` (a VF first moves to its PF, a function on a root bus has
none), which in sysfs is the parent directory of the function's real path.

Anything that cannot be read becomes a :class:`Problem` naming the path and the fix,
never an exception: a snapshot taken without root is still worth judging.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot, UnreadableError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import (
    AcsState,
    ConfigSpace,
    LinkInfo,
    bdf_sort_key,
    devfn_of,
    is_bdf,
    parse_bdf,
)

SYS_PCI_DEVICES = "/sys/bus/pci/devices"
_HOST_BRIDGE_RE = re.compile(r"^pci([0-9a-f]{4,8}):([0-9a-f]{2})$")
_BDF_COMPONENT_RE = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$")
_NVME_CTRL_RE = re.compile(r"^nvme(\d+)$")
_NVME_NS_RE = re.compile(r"^nvme(\d+)n(\d+)$")
_NVME_PATH_RE = re.compile(r"^nvme(\d+)c(\d+)n(\d+)$")
_NVME_PARTITION_RE = re.compile(r"^(nvme\d+n\d+)p\d+$")
_SPEED_RE = re.compile(r"^([0-9.]+)\s*GT/s")


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """Something that could not be read or makes a verdict uncertain."""

    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return "%s: %s; fix: %s" % (self.path, self.message, self.fix)

    def to_dict(self) -> dict:
        return {"path": self.path, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class P2PMem:
    """``p2pmem/{size,available,published}`` of a provider (bytes, bytes, bool)."""

    size: int
    available: int
    published: bool

    def to_dict(self) -> dict:
        return {"size": self.size, "available": self.available, "published": self.published}


@dataclass
class PciFunction:
    bdf: str
    vendor: Optional[int]
    device: Optional[int]
    class_code: Optional[int]
    port_type: Optional[str]
    is_bridge: bool
    acs: Optional[AcsState]  # None: could not be read
    upstream_bdf: Optional[str]  # pci_upstream_bridge(); None on a root bus
    physfn: Optional[str]
    driver: Optional[str]
    iommu_group: Optional[int]
    numa_node: Optional[int]
    link: LinkInfo
    p2pmem: Optional[P2PMem]
    host_bridge: str  # "pci0000:00"
    sysfs_path: str  # real node path, /sys/devices/...
    parent_bdf: Optional[str] = None  # the sysfs parent (for a VF: the PF's parent bridge)
    subsystem_vendor: Optional[int] = None
    subsystem_device: Optional[int] = None
    revision: Optional[int] = None
    multifunction: bool = False
    secondary_bus: Optional[int] = None
    subordinate_bus: Optional[int] = None
    config_bytes: int = 0
    virtfns: List[str] = field(default_factory=list)
    sriov_vf_device: Optional[int] = None  # a PF's SR-IOV "VF Device ID"
    children: List[str] = field(default_factory=list)

    @property
    def domain(self) -> int:
        return int(self.bdf.split(":")[0], 16)

    @property
    def bus(self) -> int:
        return int(self.bdf.split(":")[1], 16)

    @property
    def devfn(self) -> int:
        return devfn_of(self.bdf)

    @property
    def ident(self) -> str:
        """``vvvv:dddd`` as lspci -n and the kernel's whitelist message print it."""
        return "%04x:%04x" % (self.vendor or 0, self.device or 0)

    @property
    def acs_known(self) -> bool:
        return self.acs is not None

    @property
    def acs_redirects(self) -> Optional[bool]:
        return None if self.acs is None else self.acs.redirects

    @property
    def is_vf(self) -> bool:
        return self.physfn is not None

    @property
    def is_switch_port(self) -> bool:
        return self.port_type in ("switch_upstream", "switch_downstream")

    def to_dict(self) -> dict:
        return {
            "bdf": self.bdf,
            "vendor": None if self.vendor is None else "%04x" % self.vendor,
            "device": None if self.device is None else "%04x" % self.device,
            "class": None if self.class_code is None else "%06x" % self.class_code,
            "port_type": self.port_type,
            "is_bridge": self.is_bridge,
            "acs": None if self.acs is None else self.acs.to_dict(),
            "acs_known": self.acs_known,
            "upstream": self.upstream_bdf,
            "physfn": self.physfn,
            "virtfns": list(self.virtfns),
            "driver": self.driver,
            "iommu_group": self.iommu_group,
            "numa_node": self.numa_node,
            "link": self.link.to_dict(),
            "p2pmem": None if self.p2pmem is None else self.p2pmem.to_dict(),
            "host_bridge": self.host_bridge,
            "sysfs_path": self.sysfs_path,
            "children": list(self.children),
        }


# CMBSZ bits (include/linux/nvme.h) and the size unit of SZU (4 KiB * 16^SZU).
CMBSZ_SQS = 1 << 0
CMBSZ_CQS = 1 << 1
CMBSZ_LISTS = 1 << 2
CMBSZ_RDS = 1 << 3
CMBSZ_WDS = 1 << 4
_SZU_NAMES = {0: "4 KiB", 1: "64 KiB", 2: "1 MiB", 3: "16 MiB", 4: "256 MiB", 5: "4 GiB", 6: "64 GiB"}
# memremap_compat_align() on x86: PAGE_SIZE is not enough, the CMB must be 2 MiB aligned.
CMB_ALIGN = 2 * 1024 * 1024


@dataclass(frozen=True)
class Cmb:
    """An NVMe Controller Memory Buffer from its CMBSZ and CMBLOC registers."""

    cmbsz: int
    cmbloc: int

    @property
    def sqs(self) -> bool:
        return bool(self.cmbsz & CMBSZ_SQS)

    @property
    def cqs(self) -> bool:
        return bool(self.cmbsz & CMBSZ_CQS)

    @property
    def lists(self) -> bool:
        return bool(self.cmbsz & CMBSZ_LISTS)

    @property
    def rds(self) -> bool:
        return bool(self.cmbsz & CMBSZ_RDS)

    @property
    def wds(self) -> bool:
        return bool(self.cmbsz & CMBSZ_WDS)

    @property
    def szu(self) -> int:
        return (self.cmbsz >> 8) & 0xF

    @property
    def sz(self) -> int:
        return (self.cmbsz >> 12) & 0xFFFFF

    @property
    def bir(self) -> int:
        return self.cmbloc & 0x7

    @property
    def ofst(self) -> int:
        return (self.cmbloc >> 12) & 0xFFFFF

    @property
    def unit_bytes(self) -> int:
        return 1 << (12 + 4 * self.szu)

    @property
    def size_bytes(self) -> int:
        return self.unit_bytes * self.sz

    @property
    def offset_bytes(self) -> int:
        return self.unit_bytes * self.ofst

    @property
    def registered(self) -> bool:
        """nvme_map_cmb() calls pci_p2pdma_add_resource() for any non-zero CMBSZ (if aligned)."""
        return self.cmbsz != 0

    @property
    def publishable(self) -> bool:
        """Published only when both WDS and RDS are set."""
        return self.wds and self.rds

    def mapped_size(self, bar: Optional[Tuple[int, int]] = None) -> int:
        """The size nvme_map_cmb() registers: trimmed to the BAR (start, length) when known."""
        size = self.size_bytes
        if bar is not None and bar[1]:
            size = min(size, max(0, bar[1] - self.offset_bytes))
        return size

    def why_not_registered(self, bar: Optional[Tuple[int, int]] = None) -> Optional[str]:
        """Why nvme_map_cmb() skips pci_p2pdma_add_resource() (None when it calls it)."""
        if self.cmbsz == 0:
            return "CMBSZ is 0: the controller has no CMB"
        if bar is not None and bar[1] and self.offset_bytes > bar[1]:
            return "the CMB offset (%d bytes) lies beyond BAR %d (%d bytes): nvme-pci skips it" % (
                self.offset_bytes,
                self.bir,
                bar[1],
            )
        size = self.mapped_size(bar)
        if size % CMB_ALIGN:
            return "the CMB size (%d bytes) is not 2 MiB aligned: nvme-pci skips it" % size
        if bar is not None and bar[0] % CMB_ALIGN:
            return "BAR %d starts at 0x%x, not 2 MiB aligned: nvme-pci skips the CMB" % (self.bir, bar[0])
        return None

    def why_not_published(self, bar: Optional[Tuple[int, int]] = None) -> Optional[str]:
        """Why nvme-pci will not publish this CMB as p2pmem (None when it will)."""
        skipped = self.why_not_registered(bar)
        if skipped:
            return skipped
        missing = [name for name, ok in (("WDS", self.wds), ("RDS", self.rds)) if not ok]
        if missing:
            return "CMBSZ lacks %s (write/read data support): nvme-pci registers the CMB but publishes it only " \
                "when both WDS and RDS are set" % " and ".join(missing)
        return None

    def sq_note(self, use_cmb_sqes: Optional[bool] = None) -> Optional[str]:
        if not self.sqs:
            return None
        if use_cmb_sqes is False:
            return None
        return "SQS is set: with nvme.use_cmb_sqes=1 (the default) I/O submission queues take p2pmem from " \
            "this CMB; boot with nvme.use_cmb_sqes=0 to keep it all for peer-to-peer use"

    def to_dict(self, bar: Optional[Tuple[int, int]] = None) -> dict:
        return {
            "cmbsz": self.cmbsz,
            "cmbloc": self.cmbloc,
            "sz": self.sz,
            "szu": self.szu,
            "unit": _SZU_NAMES.get(self.szu, "reserved"),
            "size_bytes": self.size_bytes,
            "wds": self.wds,
            "rds": self.rds,
            "lists": self.lists,
            "cqs": self.cqs,
            "sqs": self.sqs,
            "bir": self.bir,
            "ofst": self.ofst,
            "offset_bytes": self.offset_bytes,
            "publishable": self.publishable,
            "mapped_size": self.mapped_size(bar),
            "why_not_registered": self.why_not_registered(bar),
            "why_not_published": self.why_not_published(bar),
        }


@dataclass
class NvmeNamespace:
    """A namespace as one controller sees it.

    Without multipath the block device is below the controller (``nvme0n1``). With
    multipath the block device is the subsystem's head node (``is_multipath_head``), reached
    through the hidden path node ``nvme0c0n1``; ``controllers`` lists every controller
    with a path to that head.
    """

    name: str
    block_device: str
    is_multipath_head: bool = False
    controllers: List[str] = field(default_factory=list)
    path_node: Optional[str] = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "block_device": self.block_device,
            "is_multipath_head": self.is_multipath_head,
            "controllers": list(self.controllers),
            "path_node": self.path_node,
        }


@dataclass
class NvmeController:
    name: str
    bdf: Optional[str]
    transport: Optional[str]
    model: Optional[str] = None
    serial: Optional[str] = None
    firmware: Optional[str] = None
    state: Optional[str] = None
    subsysnqn: Optional[str] = None
    address: Optional[str] = None
    cmb: Optional[Cmb] = None
    cmb_bar: Optional[Tuple[int, int]] = None  # (start, length) of the BAR CMBLOC.BIR names
    namespaces: List[NvmeNamespace] = field(default_factory=list)
    sysfs_path: str = ""

    @property
    def is_pci(self) -> bool:
        return self.transport == "pcie" and self.bdf is not None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "bdf": self.bdf,
            "transport": self.transport,
            "model": self.model,
            "serial": self.serial,
            "firmware": self.firmware,
            "state": self.state,
            "subsysnqn": self.subsysnqn,
            "address": self.address,
            "cmb": None if self.cmb is None else self.cmb.to_dict(self.cmb_bar),
            "cmb_bar": None if self.cmb_bar is None else {"start": self.cmb_bar[0], "length": self.cmb_bar[1]},
            "namespaces": [ns.to_dict() for ns in self.namespaces],
            "sysfs_path": self.sysfs_path,
        }


@dataclass
class RdmaDevice:
    name: str
    bdf: Optional[str]
    driver: Optional[str]
    software: Optional[str]  # "rxe", "siw" or None for hardware
    netdevs: List[str] = field(default_factory=list)
    sysfs_path: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "bdf": self.bdf,
            "driver": self.driver,
            "software": self.software,
            "netdevs": list(self.netdevs),
            "sysfs_path": self.sysfs_path,
        }


@dataclass
class NetDev:
    name: str
    bdf: Optional[str]
    sysfs_path: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "bdf": self.bdf, "sysfs_path": self.sysfs_path}


BLOCK_KINDS = ("nvme-pci", "nvme-fabrics", "nvme-multipath", "dm", "md", "loop", "other")


@dataclass
class BlockDevice:
    name: str
    kind: str  # one of BLOCK_KINDS
    backing: List[str] = field(default_factory=list)  # slaves, or a loop device's backing file
    controller: Optional[str] = None  # nvme controller for nvme-pci / nvme-fabrics
    bdf: Optional[str] = None  # the PCI device find_parent_pci_dev() would find
    sysfs_path: str = ""
    # A multipath path node (nvmeXcYnZ): in /sys/block, but hidden, with no /dev node to use.
    hidden: bool = False

    @property
    def can_do_p2p(self) -> bool:
        """Only a namespace of a PCI NVMe controller has a queue with the P2PDMA flag."""
        return self.kind == "nvme-pci"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "backing": list(self.backing),
            "controller": self.controller,
            "bdf": self.bdf,
            "can_do_p2p": self.can_do_p2p,
            "hidden": self.hidden,
            "sysfs_path": self.sysfs_path,
        }


@dataclass
class KernelInfo:
    release: Optional[str]
    version: Optional[Tuple[int, int, int]]
    cmdline: str
    config: Dict[str, str]
    config_source: Optional[str]
    arch: Optional[str]
    cpu_vendor: Optional[str]
    cpu_family: Optional[int]
    iommu_in_use: bool
    iommu_evidence: List[str] = field(default_factory=list)
    version_string: Optional[str] = None  # /proc/version
    # True when ``version`` has the real upstream sublevel (from /proc/version or the release
    # itself), False when it comes from an ABI name such as 6.1.0-28-amd64 alone.
    sublevel_known: bool = True

    def config_value(self, option: str) -> Optional[str]:
        """``y``, ``m``, a value, or None when unset or the config is unknown."""
        return self.config.get(option if option.startswith("CONFIG_") else "CONFIG_" + option)

    def cmdline_params(self) -> Dict[str, str]:
        """key -> value of every ``key=value`` word (the last one wins, as the kernel's parser)."""
        params: Dict[str, str] = {}
        for word in split_cmdline(self.cmdline):
            key, sep, value = word.partition("=")
            params[key] = value if sep else ""
        return params

    def pci_options(self) -> Dict[str, str]:
        """The ``pci=`` options, each split on commas like pci_setup() does."""
        options: Dict[str, str] = {}
        for word in split_cmdline(self.cmdline):
            if not word.startswith("pci="):
                continue
            for item in word[4:].split(","):
                key, _, value = item.partition("=")
                options[key] = value
        return options

    def to_dict(self) -> dict:
        return {
            "release": self.release,
            "version": None if self.version is None else ".".join(str(v) for v in self.version),
            "version_string": self.version_string,
            "cmdline": self.cmdline,
            "config_source": self.config_source,
            "config": dict(self.config),
            "arch": self.arch,
            "cpu_vendor": self.cpu_vendor,
            "cpu_family": self.cpu_family,
            "iommu_in_use": self.iommu_in_use,
            "iommu_evidence": list(self.iommu_evidence),
        }


def split_cmdline(cmdline: str) -> List[str]:
    """Words of a kernel command line; double quotes group, as next_arg() does."""
    words: List[str] = []
    current: List[str] = []
    quoted = False
    for char in cmdline.strip():
        if char == '"':
            quoted = not quoted
            continue
        if char.isspace() and not quoted:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        words.append("".join(current))
    return words


# --------------------------------------------------------------------------------------
# The node
# --------------------------------------------------------------------------------------
class Node:
    """One node's P2P-relevant state, with the kernel's walk precomputed per function."""

    def __init__(self, root: SysRoot) -> None:
        self.root = root
        self.functions: Dict[str, PciFunction] = {}
        self.nvme: Dict[str, NvmeController] = {}
        self.rdma: Dict[str, RdmaDevice] = {}
        self.netdevs: Dict[str, NetDev] = {}
        self.block: Dict[str, BlockDevice] = {}
        self.kernel = KernelInfo(None, None, "", {}, None, None, None, None, False)
        self.problems: List[Problem] = []
        # Per function: the chain the kernel walks (the function, then each upstream
        # bridge), the position of each member, and the chain positions whose ACS
        # redirects or is unknown. Filled by finish().
        self.chains: Dict[str, Tuple[str, ...]] = {}
        self.chain_pos: Dict[str, Dict[str, int]] = {}
        self.redirect_pos: Dict[str, Tuple[int, ...]] = {}
        self.unknown_pos: Dict[str, Tuple[int, ...]] = {}
        self.host_bridge_devices: Dict[str, Optional[str]] = {}
        self.root_bus_first: Dict[str, Optional[str]] = {}
        self.host_bridge_of: Dict[str, str] = {}

    def __repr__(self) -> str:
        return "Node(%r, %d functions)" % (self.root.root, len(self.functions))

    # -- derived topology --------------------------------------------------------------
    def finish(self) -> None:
        """Link children, compute every chain once, and find each host bridge's device."""
        for fn in self.functions.values():
            fn.children = []
        for bdf in sorted(self.functions, key=bdf_sort_key):
            fn = self.functions[bdf]
            if fn.parent_bdf and fn.parent_bdf in self.functions:
                self.functions[fn.parent_bdf].children.append(bdf)
            if fn.physfn and fn.physfn in self.functions:
                pf = self.functions[fn.physfn]
                if bdf not in pf.virtfns:
                    pf.virtfns.append(bdf)
                if fn.vendor in (None, 0xFFFF):
                    # A VF's own ID registers read 0xffff; like pci_iov_add_virtfn(), take the
                    # PF's vendor and the VF Device ID of its SR-IOV capability.
                    fn.vendor = pf.vendor
                    fn.device = pf.sriov_vf_device if pf.sriov_vf_device is not None else fn.device
        for bdf in self.functions:
            self._chain_of(bdf)
        self.host_bridge_of = {bdf: fn.host_bridge for bdf, fn in self.functions.items()}
        self._find_host_bridge_devices()

    def _chain_of(self, bdf: str) -> Tuple[str, ...]:
        cached = self.chains.get(bdf)
        if cached is not None:
            return cached
        fn = self.functions[bdf]
        upstream = fn.upstream_bdf
        known_upstream = upstream is not None and upstream in self.functions
        chain = (bdf,) + self._chain_of(upstream) if known_upstream and upstream else (bdf,)
        self.chains[bdf] = chain
        self.chain_pos[bdf] = {member: index for index, member in enumerate(chain)}
        redirect: List[int] = []
        unknown: List[int] = []
        for index, member in enumerate(chain):
            acs = self.functions[member].acs
            if acs is None:
                unknown.append(index)
            elif acs.redirects:
                redirect.append(index)
        self.redirect_pos[bdf] = tuple(redirect)
        self.unknown_pos[bdf] = tuple(unknown)
        return chain

    def _find_host_bridge_devices(self) -> None:
        """pci_host_bridge_dev(): the first device on the root bus, if devfn 00.0 or a Root Port.

        The root bus lists its devices in scan order (ascending devfn); VFs join the list
        later, so they are never first.
        """
        first: Dict[str, PciFunction] = {}
        for fn in self.functions.values():
            if fn.parent_bdf is not None or fn.is_vf:
                continue
            best = first.get(fn.host_bridge)
            if best is None or fn.devfn < best.devfn:
                first[fn.host_bridge] = fn
        hosts = {fn.host_bridge for fn in self.functions.values()}
        for host in hosts:
            candidate = first.get(host)
            self.root_bus_first[host] = candidate.bdf if candidate else None
            if candidate is None:
                self.host_bridge_devices[host] = None
            elif candidate.devfn == 0 or candidate.port_type == "root_port":
                self.host_bridge_devices[host] = candidate.bdf
            elif candidate.port_type is None and (candidate.class_code or 0) >> 8 == 0x0604:
                # Config space unreadable: a PCI bridge on a root bus is a root port in practice.
                self.host_bridge_devices[host] = candidate.bdf
            else:
                self.host_bridge_devices[host] = None

    # -- queries -----------------------------------------------------------------------
    def function(self, bdf: str) -> PciFunction:
        fn = self.functions.get(bdf)
        if fn is None:
            raise P2PError(
                "no PCI device %s on this node%s" % (bdf, self._root_hint()),
                fix="pick one of: %s" % self._listing(),
            )
        return fn

    def chain(self, bdf: str) -> List[str]:
        """The function and every bridge above it, in the order the kernel walks them."""
        self.function(bdf)
        return list(self.chains[bdf])

    def host_bridge_device(self, host_bridge: str) -> Optional[PciFunction]:
        bdf = self.host_bridge_devices.get(host_bridge)
        return None if bdf is None else self.functions[bdf]

    def providers(self) -> List[PciFunction]:
        """Functions with p2pmem, published or not."""
        return [self.functions[b] for b in sorted(self.functions, key=bdf_sort_key) if self.functions[b].p2pmem]

    def nvme_for_bdf(self, bdf: str) -> List[NvmeController]:
        return [ctrl for ctrl in self.nvme.values() if ctrl.bdf == bdf]

    def switch_above(self, bdf: str) -> Optional[str]:
        """The nearest switch upstream port above ``bdf`` (its switch), if any."""
        for member in self.chains.get(bdf, ())[1:]:
            if self.functions[member].port_type == "switch_upstream":
                return member
        return None

    def root_port_of(self, bdf: str) -> Optional[str]:
        chain = self.chains.get(bdf, ())
        top = chain[-1] if chain else None
        if top is not None and top != bdf:
            return top
        return None

    def resolve(self, name: str) -> str:
        """The PCI function behind a BDF, NVMe controller or namespace, RDMA device or netdev."""
        text = (name or "").strip()
        if not text:
            raise P2PError("empty device name", fix="give a PCI address, nvmeX, nvmeXnY, an RDMA device or a netdev")
        if _looks_like_bdf(text):
            bdf = parse_bdf(text)
            self.function(bdf)
            return bdf
        if text.startswith("/dev/"):
            text = text[5:]
        partition = _NVME_PARTITION_RE.match(text)
        if partition and partition.group(1) in self.block:
            # nvmet hands the kernel the whole disk of a partition (bdev->bd_disk).
            text = partition.group(1)
        ctrl = self.nvme.get(text)
        if ctrl is not None:
            if ctrl.bdf is None:
                raise P2PError(
                    "%s is an NVMe controller over %s, not a PCI device: the kernel's P2PDMA only works with "
                    "PCI devices" % (text, ctrl.transport or "a fabric"),
                    fix="use a PCIe NVMe controller (transport pcie)",
                )
            return ctrl.bdf
        block = self.block.get(text)
        if block is not None:
            return self._resolve_block(block)
        path_match = _NVME_PATH_RE.match(text)
        if path_match:
            ctrl = self.nvme.get("nvme%s" % path_match.group(2))
            if ctrl is not None and ctrl.bdf is not None:
                return ctrl.bdf
        rdma = self.rdma.get(text)
        if rdma is not None:
            if rdma.software or rdma.bdf is None:
                raise P2PError(
                    "%s is a software RDMA device (%s) with no PCI DMA device: the kernel never uses p2pmem for it"
                    % (text, rdma.software or "no PCI parent"),
                    fix="use a hardware RDMA NIC (its PCI function) as the client",
                )
            return rdma.bdf
        netdev = self.netdevs.get(text)
        if netdev is not None:
            if netdev.bdf is None:
                raise P2PError(
                    "netdev %s has no PCI device (virtual interface)" % text,
                    fix="use the netdev of a PCI NIC, or its PCI address",
                )
            return netdev.bdf
        raise P2PError("unknown device %r%s" % (name, self._root_hint()), fix="pick one of: %s" % self._listing())

    def _resolve_block(self, block: BlockDevice) -> str:
        if block.kind == "nvme-pci" and block.bdf:
            return block.bdf
        reasons = {
            "nvme-multipath": "an NVMe multipath head node: it hangs below the nvme-subsystem, has no PCI parent, "
            "and its queue lacks the P2PDMA flag",
            "nvme-fabrics": "a namespace of an NVMe over Fabrics controller, not a PCI device",
            "dm": "a device-mapper device: its queue has no P2PDMA flag",
            "md": "an MD RAID device: its queue has no P2PDMA flag",
            "loop": "a loop device: file-backed, no P2PDMA",
        }
        fixes = {
            "nvme-multipath": "name the controller instead (%s), or boot with nvme_core.multipath=N to get "
            "per-controller namespaces" % (", ".join(self._head_controllers(block.name)) or "nvmeX"),
            "nvme-fabrics": "use a namespace of a PCIe NVMe controller",
        }
        raise P2PError(
            "%s is %s" % (block.name, reasons.get(block.kind, "not a namespace of a PCIe NVMe controller")),
            fix=fixes.get(block.kind, "use a namespace of a PCIe NVMe controller (nvmeXnY)"),
        )

    def _head_controllers(self, head: str) -> List[str]:
        block = self.block.get(head)
        return list(block.backing) if block is not None else []

    def pci_parent_of(self, name: str) -> Optional[str]:
        """What find_parent_pci_dev() finds for a client given by name; None if not a PCI device.

        Unlike :meth:`resolve` this does not raise for software RDMA, fabrics or
        multipath heads: for the kernel those are simply "not a PCI device".
        """
        try:
            return self.resolve(name)
        except P2PError:
            if _looks_like_bdf(name) or not self._known_name(name):
                raise
            return None

    def _known_name(self, name: str) -> bool:
        text = name[5:] if name.startswith("/dev/") else name
        return text in self.nvme or text in self.block or text in self.rdma or text in self.netdevs

    def _root_hint(self) -> str:
        return "" if self.root.is_live else " (root %s)" % self.root.label

    def _listing(self, limit: int = 8) -> str:
        parts = []
        bdfs = sorted(self.functions, key=bdf_sort_key)
        if bdfs:
            more = " ... (%d in all)" % len(bdfs) if len(bdfs) > limit else ""
            parts.append("PCI " + ", ".join(bdfs[:limit]) + more)
        if self.nvme:
            parts.append("NVMe " + ", ".join(sorted(self.nvme)[:limit]))
        namespaces = sorted(b for b in self.block if self.block[b].kind.startswith("nvme") and not self.block[b].hidden)
        if namespaces:
            parts.append("namespaces " + ", ".join(namespaces[:limit]))
        if self.rdma:
            parts.append("RDMA " + ", ".join(sorted(self.rdma)[:limit]))
        if self.netdevs:
            parts.append("netdevs " + ", ".join(sorted(self.netdevs)[:limit]))
        return "; ".join(parts) if parts else "nothing: no PCI devices were found (is --root a node's / ?)"

    def to_dict(self) -> dict:
        return {
            "root": self.root.label,
            "functions": {b: self.functions[b].to_dict() for b in sorted(self.functions, key=bdf_sort_key)},
            "nvme": {n: c.to_dict() for n, c in sorted(self.nvme.items())},
            "rdma": {n: r.to_dict() for n, r in sorted(self.rdma.items())},
            "netdevs": {n: d.to_dict() for n, d in sorted(self.netdevs.items())},
            "block": {n: b.to_dict() for n, b in sorted(self.block.items())},
            "kernel": self.kernel.to_dict(),
            "host_bridges": {h: self.host_bridge_devices[h] for h in sorted(self.host_bridge_devices)},
            "problems": [p.to_dict() for p in self.problems],
        }


def _looks_like_bdf(text: str) -> bool:
    """A colon means a PCI address was meant: no NVMe, RDMA or network device name has one."""
    return ":" in text


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, root: SysRoot) -> None:
        self.root = root
        self.node = Node(root)
        self.truncated_configs: List[str] = []

    def problem(self, path: str, message: str, fix: str) -> None:
        self.node.problems.append(Problem(path, message, fix))

    def safe(self, func, path: str, *args):  # type: ignore[no-untyped-def]
        try:
            return func(path, *args)
        except UnreadableError as exc:
            self.problem(path, exc.message, exc.fix or "run as root")
            return None

    def text(self, path: str) -> Optional[str]:
        return self.safe(self.root.read_text, path)

    def integer(self, path: str, base: int = 0) -> Optional[int]:
        return self.safe(self.root.read_int, path, base)

    def link_name(self, path: str) -> Optional[str]:
        target = self.root.readlink(path)
        return None if target is None else posixpath.basename(target.rstrip("/"))

    def real(self, path: str) -> str:
        """Resolve a sysfs class/bus link: one readlink and a normpath (sysfs links are relative)."""
        target = self.root.readlink(path)
        if target is None:
            return self.root.realpath(path)
        if target.startswith("/"):
            return self.root.realpath(path)
        return posixpath.normpath(posixpath.join(posixpath.dirname(path), target))

    # -- PCI -----------------------------------------------------------------------------
    def read_pci(self) -> None:
        names = self.safe(self.root.listdir, SYS_PCI_DEVICES) or []
        if not names:
            self.problem(
                SYS_PCI_DEVICES,
                "no PCI devices found",
                "point --root at a node's / (or a snapshot of one); sysfs must be mounted",
            )
        for name in names:
            if not _BDF_COMPONENT_RE.match(name):
                continue
            path = self.real(posixpath.join(SYS_PCI_DEVICES, name))
            fn = self.read_function(name, path)
            if fn is not None:
                self.node.functions[name] = fn
        if self.truncated_configs:
            sample = ", ".join(self.truncated_configs[:4])
            more = " and %d more" % (len(self.truncated_configs) - 4) if len(self.truncated_configs) > 4 else ""
            self.problem(
                "%s/%s/config" % (SYS_PCI_DEVICES, self.truncated_configs[0]),
                "config space of %s%s could only be read in part (64 bytes): ACS, PCIe port type and links "
                "are unknown there, so verdicts through them are uncertain" % (sample, more),
                "run as root (the kernel shows non-root readers only the first 64 bytes of config space)",
            )

    def read_function(self, bdf: str, path: str) -> Optional[PciFunction]:
        parts = path.split("/")
        host_bridge = next((p for p in reversed(parts[:-1]) if _HOST_BRIDGE_RE.match(p)), None)
        if host_bridge is None:
            domain, bus = bdf.split(":")[:2]
            host_bridge = "pci%s:%s" % (domain, bus)
        parent = parts[-2] if len(parts) >= 2 else ""
        parent_bdf = parent if _BDF_COMPONENT_RE.match(parent) else None

        try:
            entries = set(self.root.listdir(path))
        except UnreadableError as exc:
            self.problem(path, exc.message, exc.fix or "run as root")
            entries = set()

        data = self.safe(self.root.read_bytes, path + "/config") if "config" in entries else None
        config = ConfigSpace(data) if data else None
        if config is not None and config.truncated:
            self.truncated_configs.append(bdf)

        vendor = config.vendor if config is not None else None
        device = config.device if config is not None else None
        class_code = config.class_code if config is not None else None
        if vendor is None:
            vendor = self.integer(path + "/vendor", 16)
            device = self.integer(path + "/device", 16)
            class_code = self.integer(path + "/class", 16)

        physfn = self.link_name(path + "/physfn") if "physfn" in entries else None
        upstream = parent_bdf
        if physfn is not None:
            # pci_upstream_bridge() moves a VF to its PF first; the PF's bridge is the VF's
            # sysfs parent as well, so only a PF on a root bus changes the answer.
            pf_path = posixpath.normpath(posixpath.join(path, self.root.readlink(path + "/physfn") or ""))
            pf_parent = pf_path.split("/")[-2]
            upstream = pf_parent if _BDF_COMPONENT_RE.match(pf_parent) else None

        iommu_group = None
        if "iommu_group" in entries:
            group = self.link_name(path + "/iommu_group")
            iommu_group = int(group) if group and group.isdigit() else None

        numa_node = self.integer(path + "/numa_node", 10) if "numa_node" in entries else None
        link = config.link if config is not None else None
        if link is None:
            link = self.sysfs_link(path, entries)

        p2pmem = None
        if "p2pmem" in entries:
            p2pmem = self.read_p2pmem(path + "/p2pmem")

        port_type = config.port_type if config is not None else None
        is_bridge = config.is_bridge if config is not None and config.header_type is not None else (
            class_code is not None and class_code >> 8 in (0x0604, 0x0607)
        )
        virtfns = sorted(
            (self.link_name(path + "/" + e) or "" for e in entries if e.startswith("virtfn")),
            key=lambda b: bdf_sort_key(b) if _BDF_COMPONENT_RE.match(b) else (0, 0, 0, 0),
        )
        return PciFunction(
            bdf=bdf,
            vendor=vendor,
            device=device,
            class_code=class_code,
            port_type=port_type,
            is_bridge=bool(is_bridge),
            acs=config.acs if config is not None else None,
            upstream_bdf=upstream,
            physfn=physfn,
            driver=self.link_name(path + "/driver") if "driver" in entries else None,
            iommu_group=iommu_group,
            numa_node=numa_node,
            link=link,
            p2pmem=p2pmem,
            host_bridge=host_bridge,
            sysfs_path=path,
            parent_bdf=parent_bdf,
            subsystem_vendor=_u16(config.data, 0x2C) if config is not None and not config.is_bridge else None,
            subsystem_device=_u16(config.data, 0x2E) if config is not None and not config.is_bridge else None,
            revision=config.data[0x08] if config is not None and len(config.data) > 8 else None,
            multifunction=config.multifunction if config is not None else False,
            secondary_bus=config.secondary_bus if config is not None else None,
            subordinate_bus=config.subordinate_bus if config is not None else None,
            config_bytes=len(data) if data else 0,
            virtfns=[v for v in virtfns if v],
            sriov_vf_device=config.sriov_vf_device if config is not None and virtfns else None,
        )

    def sysfs_link(self, path: str, entries: Iterable[str]) -> LinkInfo:
        present = set(entries)

        def speed(name: str) -> Optional[float]:
            if name not in present:
                return None
            text = self.text(path + "/" + name)
            match = _SPEED_RE.match(text or "")
            return float(match.group(1)) if match else None

        def width(name: str) -> Optional[int]:
            if name not in present:
                return None
            value = self.integer(path + "/" + name, 10)
            return value or None

        return LinkInfo(
            current_speed=speed("current_link_speed"),
            current_width=width("current_link_width"),
            max_speed=speed("max_link_speed"),
            max_width=width("max_link_width"),
        )

    def read_p2pmem(self, path: str) -> Optional[P2PMem]:
        size = self.integer(path + "/size", 10)
        available = self.integer(path + "/available", 10)
        published = self.integer(path + "/published", 10)
        if size is None and available is None and published is None:
            return None
        return P2PMem(size=size or 0, available=available or 0, published=bool(published))

    # -- NVMe ----------------------------------------------------------------------------
    def read_nvme(self) -> None:
        for name in self.safe(self.root.listdir, "/sys/class/nvme") or []:
            if not _NVME_CTRL_RE.match(name):
                continue
            path = self.real("/sys/class/nvme/" + name)
            entries = set(self.safe(self.root.listdir, path) or [])
            transport = self.text(path + "/transport") if "transport" in entries else None
            bdf = _pci_ancestor(path)
            cmb = None
            if "cmbsz" in entries:
                cmbsz = self.integer(path + "/cmbsz", 10)
                cmbloc = self.integer(path + "/cmbloc", 10) if "cmbloc" in entries else 0
                if cmbsz is not None:
                    cmb = Cmb(cmbsz=cmbsz, cmbloc=cmbloc or 0)
            cmb_bar = None
            if cmb is not None and bdf is not None and transport in (None, "pcie"):
                cmb_bar = self.read_bar(bdf, cmb.bir)
            ctrl = NvmeController(
                name=name,
                bdf=bdf if transport in (None, "pcie") else None,
                transport=transport,
                model=_strip(self.text(path + "/model")) if "model" in entries else None,
                serial=_strip(self.text(path + "/serial")) if "serial" in entries else None,
                firmware=_strip(self.text(path + "/firmware_rev")) if "firmware_rev" in entries else None,
                state=self.text(path + "/state") if "state" in entries else None,
                subsysnqn=self.text(path + "/subsysnqn") if "subsysnqn" in entries else None,
                address=self.text(path + "/address") if "address" in entries else None,
                cmb=cmb,
                cmb_bar=cmb_bar,
                sysfs_path=path,
            )
            for entry in sorted(entries):
                if _NVME_NS_RE.match(entry):
                    ctrl.namespaces.append(NvmeNamespace(name=entry, block_device=entry))
                else:
                    match = _NVME_PATH_RE.match(entry)
                    if match:
                        head = "nvme%sn%s" % (match.group(1), match.group(3))
                        ctrl.namespaces.append(
                            NvmeNamespace(name=head, block_device=head, is_multipath_head=True, path_node=entry)
                        )
            self.node.nvme[name] = ctrl

    def read_bar(self, bdf: str, index: int) -> Optional[Tuple[int, int]]:
        """(start, length) of resource ``index`` from the function's ``resource`` file."""
        fn = self.node.functions.get(bdf)
        path = (fn.sysfs_path if fn is not None else SYS_PCI_DEVICES + "/" + bdf) + "/resource"
        text = self.text(path)
        if not text:
            return None
        lines = text.splitlines()
        if index >= len(lines):
            return None
        try:
            start, end, _flags = (int(part, 16) for part in lines[index].split())
        except ValueError:
            return None
        return (start, end - start + 1) if end else (0, 0)

    # -- block ---------------------------------------------------------------------------
    def read_block(self) -> None:
        for name in self.safe(self.root.listdir, "/sys/block") or []:
            path = self.real("/sys/block/" + name)
            block = BlockDevice(name=name, kind="other", sysfs_path=path)
            parts = path.split("/")
            if name.startswith("nvme"):
                if "nvme-subsystem" in parts:
                    block.kind = "nvme-multipath"
                else:
                    ctrl_name = parts[-2] if len(parts) >= 2 else ""
                    ctrl = self.node.nvme.get(ctrl_name)
                    block.controller = ctrl_name or None
                    block.bdf = _pci_ancestor(path)
                    transport = ctrl.transport if ctrl is not None else None
                    block.hidden = bool(_NVME_PATH_RE.match(name))
                    if block.bdf is not None and transport in (None, "pcie"):
                        block.kind = "nvme-pci"
                    else:
                        block.kind = "nvme-fabrics"
                        block.bdf = None
            elif name.startswith("dm-"):
                block.kind = "dm"
                block.backing = self.safe(self.root.listdir, path + "/slaves") or []
            elif name.startswith("md"):
                block.kind = "md"
                block.backing = self.safe(self.root.listdir, path + "/slaves") or []
            elif name.startswith("loop"):
                block.kind = "loop"
                backing = self.text(path + "/loop/backing_file")
                block.backing = [backing] if backing else []
            else:
                block.bdf = _pci_ancestor(path)
            self.node.block[name] = block
        # A multipath head (nvmeXnY below the nvme-subsystem) is reached through path
        # nodes nvmeXcCnY below each controller: record which controllers stand behind it.
        behind: Dict[str, List[str]] = {}
        for ctrl in self.node.nvme.values():
            for ns in ctrl.namespaces:
                if ns.path_node:
                    behind.setdefault(ns.block_device, []).append(ctrl.name)
        for head_name, controllers in behind.items():
            ordered = sorted(set(controllers), key=_natural_key)
            head = self.node.block.get(head_name)
            if head is not None:
                head.backing = ordered
            for ctrl in self.node.nvme.values():
                for ns in ctrl.namespaces:
                    if ns.path_node and ns.block_device == head_name:
                        ns.controllers = ordered

    # -- RDMA and net ----------------------------------------------------------------------
    def read_rdma(self) -> None:
        for name in self.safe(self.root.listdir, "/sys/class/infiniband") or []:
            path = self.real("/sys/class/infiniband/" + name)
            entries = set(self.safe(self.root.listdir, path) or [])
            bdf = _pci_ancestor(path)
            driver = None
            if bdf is not None:
                driver = self.link_name("/sys/bus/pci/devices/%s/driver" % bdf)
            software: Optional[str] = None
            lowered = name.lower()
            if "parent" in entries or lowered.startswith("rxe"):
                software = "rxe"
            elif lowered.startswith("siw"):
                software = "siw"
            elif bdf is None:
                software = "software"
            netdevs: List[str] = []
            if "parent" in entries:
                parent = self.text(path + "/parent")
                if parent:
                    netdevs.append(parent)
            ndev = self.text(path + "/ports/1/gid_attrs/ndevs/0")
            if ndev and ndev not in netdevs:
                netdevs.append(ndev)
            if bdf is not None and software is None:
                for dev in self.safe(self.root.listdir, "/sys/bus/pci/devices/%s/net" % bdf) or []:
                    if dev not in netdevs:
                        netdevs.append(dev)
            self.node.rdma[name] = RdmaDevice(
                name=name,
                bdf=None if software else bdf,
                driver=driver if software is None else software,
                software=software,
                netdevs=netdevs,
                sysfs_path=path,
            )

    def read_net(self) -> None:
        for name in self.safe(self.root.listdir, "/sys/class/net") or []:
            path = self.real("/sys/class/net/" + name)
            self.node.netdevs[name] = NetDev(name=name, bdf=_pci_ancestor(path), sysfs_path=path)

    # -- kernel ----------------------------------------------------------------------------
    def read_kernel(self) -> None:
        release = self.text("/proc/sys/kernel/osrelease")
        version_string = self.text("/proc/version")
        cmdline = self.text("/proc/cmdline") or ""
        config, source = self.read_config(release)
        arch = self.text("/proc/sys/kernel/arch")
        if not arch and self.root.is_live:
            arch = os.uname().machine
        if not arch:
            arch = _arch_from_config(config)
        cpu_vendor, cpu_family = self.read_cpu()
        in_use, evidence = self.read_iommu(cmdline)
        version, sublevel_known = _kernel_version(release, version_string, self.text("/proc/version_signature"))
        if release is None:
            self.problem(
                "/proc/sys/kernel/osrelease",
                "kernel release unknown: verdicts use the newest whitelist known",
                "capture /proc with the snapshot (p2pctl snapshot does)",
            )
        self.node.kernel = KernelInfo(
            release=release,
            version=version,
            sublevel_known=sublevel_known,
            cmdline=cmdline,
            config=config,
            config_source=source,
            arch=arch,
            cpu_vendor=cpu_vendor,
            cpu_family=cpu_family,
            iommu_in_use=in_use,
            iommu_evidence=evidence,
            version_string=version_string,
        )

    def read_config(self, release: Optional[str]) -> Tuple[Dict[str, str], Optional[str]]:
        raw = self.safe(self.root.read_bytes, "/proc/config.gz")
        source = "/proc/config.gz"
        text: Optional[str] = None
        if raw:
            try:
                text = gzip.decompress(raw).decode("utf-8", "replace")
            except (OSError, EOFError):
                self.problem(source, "not a gzip file", "capture /proc/config.gz again")
        if text is None and release:
            source = "/boot/config-%s" % release
            text = self.text(source)
        if text is None:
            self.problem(
                "/boot/config-%s" % (release or "<release>"),
                "kernel config not found (neither /proc/config.gz nor /boot/config-<release>)",
                "install the kernel's config file in /boot, or build with CONFIG_IKCONFIG_PROC=y",
            )
            return {}, None
        config: Dict[str, str] = {}
        for line in text.splitlines():
            if line.startswith("CONFIG_"):
                key, _, value = line.partition("=")
                config[key] = value.strip().strip('"')
        return config, source

    def read_cpu(self) -> Tuple[Optional[str], Optional[int]]:
        text = self.text("/proc/cpuinfo")
        if not text:
            self.problem("/proc/cpuinfo", "CPU vendor and family unknown", "capture /proc/cpuinfo with the snapshot")
            return None, None
        vendor = None
        family = None
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "vendor_id" and vendor is None:
                vendor = value.strip()
            elif key == "cpu family" and family is None:
                try:
                    family = int(value.strip())
                except ValueError:
                    family = None
            elif not line.strip() and (vendor is not None or family is not None):
                break  # the boot CPU's block is enough: the kernel looks at cpu_data(0)
        return vendor, family

    def read_iommu(self, cmdline: str) -> Tuple[bool, List[str]]:
        evidence: List[str] = []
        units = self.safe(self.root.listdir, "/sys/class/iommu") or []
        if units:
            evidence.append("/sys/class/iommu: %s" % " ".join(units))
        groups = self.safe(self.root.listdir, "/sys/kernel/iommu_groups") or []
        if groups:
            evidence.append("/sys/kernel/iommu_groups: %d groups" % len(groups))
        for word in split_cmdline(cmdline):
            if word.split("=")[0] in ("intel_iommu", "amd_iommu", "iommu", "iommu.passthrough"):
                evidence.append("cmdline: %s" % word)
        return bool(units or groups), evidence


def _u16(data: bytes, offset: int) -> Optional[int]:
    if offset + 2 > len(data):
        return None
    return data[offset] | (data[offset + 1] << 8)


def _strip(text: Optional[str]) -> Optional[str]:
    return None if text is None else text.strip()


def _natural_key(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _pci_ancestor(path: str) -> Optional[str]:
    """The nearest PCI function above (or at) a sysfs device path: find_parent_pci_dev()."""
    for part in reversed(path.split("/")):
        if _BDF_COMPONENT_RE.match(part):
            return part
    return None


def _arch_from_config(config: Dict[str, str]) -> Optional[str]:
    for option, arch in (
        ("CONFIG_X86_64", "x86_64"),
        ("CONFIG_ARM64", "aarch64"),
        ("CONFIG_PPC64", "ppc64le"),
        ("CONFIG_RISCV", "riscv64"),
        ("CONFIG_S390", "s390x"),
        ("CONFIG_X86_32", "i686"),
    ):
        if config.get(option) == "y":
            return arch
    return None


def _kernel_version(
    release: Optional[str], version_string: Optional[str], signature: Optional[str] = None
) -> Tuple[Optional[Tuple[int, int, int]], bool]:
    """The upstream version: distribution releases (6.1.0-28-amd64) hide the sublevel.

    Debian puts it after the build number in /proc/version ("#1 SMP ... Debian 6.1.119-1");
    the compiler's own "(Debian 12.2.0-14)" comes earlier and must not be taken for it.
    Ubuntu ends /proc/version_signature with it ("... 6.8.12").
    """
    build = (version_string or "").partition("#")[2]
    match = re.search(r"Debian (\d+)\.(\d+)\.(\d+)", build)
    if match:
        return (int(match.group(1)), int(match.group(2)), int(match.group(3))), True
    match = re.search(r"(\d+)\.(\d+)\.(\d+)\s*$", signature or "")
    if match:
        return (int(match.group(1)), int(match.group(2)), int(match.group(3))), True
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", release or "")
    if match:
        version = (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
        return version, not re.match(r"^\d+\.\d+\.0-\d+", release or "")
    return None, False


def read_node(root: Optional[SysRoot] = None) -> Node:
    """Read everything P2PDMA decisions depend on from ``root`` (default: this machine)."""
    reader = _Reader(root or SysRoot("/"))
    reader.read_kernel()
    reader.read_pci()
    reader.read_nvme()
    reader.read_block()
    reader.read_rdma()
    reader.read_net()
    reader.node.finish()
    return reader.node


__all__ = [
    "BLOCK_KINDS",
    "BlockDevice",
    "Cmb",
    "KernelInfo",
    "NetDev",
    "Node",
    "NvmeController",
    "NvmeNamespace",
    "P2PMem",
    "PciFunction",
    "Problem",
    "RdmaDevice",
    "is_bdf",
    "read_node",
    "split_cmdline",
]
