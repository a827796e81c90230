# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node as P2PDMA sees it: PCI functions, NVMe, RDMA, netdevs, block devices, kernel.

These are the records and the questions asked of them; :mod:`.reader` fills them from a
:class:`SysRoot`. The topology follows what the kernel walks: a function's upstream bridge
is ``pci_upstream_bridge()`` (a VF first moves to its PF, a function on a root bus has
none), which in sysfs is the parent directory of the function's real path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import (
    AcsState,
    LinkInfo,
    bdf_sort_key,
    devfn_of,
    parse_bdf,
)

SYS_PCI_DEVICES = "/sys/bus/pci/devices"
# A multipath path node (nvme<subsystem>c<controller>n<namespace>): hidden, below its controller.
NVME_PATH_NODE_RE = re.compile(r"^nvme(\d+)c(\d+)n(\d+)$")
_NVME_PARTITION_RE = re.compile(r"^(nvme\d+n\d+)p\d+$")


def natural_key(name: str) -> tuple:
    """Sort key that orders device names as people count: nvme2 before nvme10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


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
    """``p2pmem/{size,available,published}`` of a provider (bytes, bytes, bool), and whether
    ``p2pmem/allocate`` is there (Linux 6.2 and later: user space can map p2pmem)."""

    size: int
    available: int
    published: bool
    allocate: bool = False

    def to_dict(self) -> dict:
        return {"size": self.size, "available": self.available, "published": self.published,
                "allocate": self.allocate}


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
    def is_vf(self) -> bool:
        return self.physfn is not None

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
    config: Dict[str, str]  # symbol (no CONFIG_ prefix) -> value, as kconfig.parse_config spells it
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
        value = self.config.get(option[len("CONFIG_") :] if option.startswith("CONFIG_") else option)
        return None if value == "n" else value

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
        path_match = NVME_PATH_NODE_RE.match(text)
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
    "split_cmdline",
]
