"""Build real sysfs/procfs trees, laid out as Linux lays them out, for tests and benchmarks.

Every PCI function gets a directory below ``/sys/devices/pciDDDD:BB/...`` (nested
under its bridges), a binary ``config`` file (header, capability list with the PCIe
capability, AER and ACS extended capabilities), the attributes lspci reads (vendor,
device, class, revision, subsystem_*, irq, resource, enable, numa_node), and relative
symlinks exactly like the kernel's: ``/sys/bus/pci/devices/<bdf>``, ``driver``,
``iommu_group``, ``subsystem``, ``physfn``/``virtfnN``. NVMe, RDMA, net and block
class devices, p2pmem, /proc and /boot complete a node.

    tree = SysfsTree(tmp_path, kernel="6.1.0-28-amd64", cpu=("GenuineIntel", 6))
    rp = tree.root_port("00:01.0", acs_ctrl=0)
    sw = tree.switch(parent=rp, downstream=4)
    nvme = tree.nvme(parent=sw.down[0], cmb=Cmb(cmbsz=..., cmbloc=...), p2pmem=(size, avail, True))
    node = read_node(tree.sysroot())

Bus numbers are assigned depth-first as devices are added; bridges' subordinate bus
numbers are fixed when the tree is written (``write()``, called by ``sysroot()``).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ansible_collections.p2pdma.storage.plugins.module_utils.kernel.kconfig import render_config
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Cmb
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import PORT_TYPE_CODES

# Device IDs of QEMU's models, so trees read like the lab's guests.
QEMU_Q35_HOST = (0x8086, 0x29C0)
QEMU_ROOT_PORT = (0x1B36, 0x000C)
QEMU_SWITCH_UP = (0x104C, 0x8232)
QEMU_SWITCH_DOWN = (0x104C, 0x8233)
QEMU_NVME = (0x1B36, 0x0010)
MELLANOX_CX5 = (0x15B3, 0x1017)

CLASS_HOST_BRIDGE = 0x060000
CLASS_PCI_BRIDGE = 0x060400
CLASS_NVME = 0x010802
CLASS_ETHERNET = 0x020000
CLASS_OTHER = 0xFF0000

ACS_SV, ACS_TB, ACS_RR, ACS_CR, ACS_UF, ACS_EC, ACS_DT = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40
# What QEMU's root port offers (pcie_acs_init(): SV, TB, RR, CR, UF; no EC, no DT).
QEMU_ROOT_PORT_ACS_CAP = ACS_SV | ACS_TB | ACS_RR | ACS_CR | ACS_UF
# What the kernel sets when an IOMMU asked for ACS (pci_std_enable_acs()).
KERNEL_IOMMU_ACS = ACS_SV | ACS_RR | ACS_CR | ACS_UF

DEFAULT_CONFIG = {
    "CONFIG_PCI_P2PDMA": "y",
    "CONFIG_ZONE_DEVICE": "y",
    "CONFIG_BLK_DEV_NVME": "m",
    "CONFIG_NVME_TARGET": "m",
    "CONFIG_NVME_TARGET_RDMA": "m",
    "CONFIG_X86_64": "y",
}

Parent = Union["HostBridge", "Function"]


def _bdf(domain: int, bus: int, dev: int, fn: int) -> str:
    return "%04x:%02x:%02x.%d" % (domain, bus, dev, fn)


@dataclass
class HostBridge:
    domain: int
    bus: int
    path: str  # node path /sys/devices/pciDDDD:BB
    next_bus: int = 0

    @property
    def name(self) -> str:
        return "pci%04x:%02x" % (self.domain, self.bus)

    @property
    def secondary_bus(self) -> int:
        return self.bus

    @property
    def host(self) -> HostBridge:
        return self


@dataclass
class Function:
    """One PCI function as it will be written."""

    tree: SysfsTree
    host: HostBridge
    parent: Optional[Function]
    bus: int
    dev: int
    fn: int
    vendor: int
    device: int
    class_code: int
    port_type: Optional[str]  # None: conventional PCI, no PCIe capability
    header_type: int = 0
    multifunction: bool = False
    acs_cap: Optional[int] = None  # None: no ACS capability
    acs_ctrl: int = 0
    acs_offset: int = 0x148
    link_speed: int = 3  # LNKSTA/LNKCAP encoding: 1=2.5 .. 5=32 GT/s
    link_width: int = 4
    max_link_speed: Optional[int] = None
    max_link_width: Optional[int] = None
    config_bytes: int = 4096
    driver: Optional[str] = None
    iommu_group: Optional[int] = None
    numa_node: int = -1
    physfn: Optional[Function] = None
    virtfns: List[Function] = field(default_factory=list)
    p2pmem: Optional[Tuple[int, int, bool]] = None
    secondary_bus: Optional[int] = None
    subordinate_bus: Optional[int] = None
    bars: List[Tuple[int, int, int]] = field(default_factory=list)  # (start, size, flags) per BAR
    # Only what lspci and the model read (fabric() uses it to build big trees quickly).
    minimal: bool = False
    children_slots: Dict[int, int] = field(default_factory=dict)

    @property
    def domain(self) -> int:
        return self.host.domain

    @property
    def bdf(self) -> str:
        return _bdf(self.host.domain, self.bus, self.dev, self.fn)

    @property
    def devfn(self) -> int:
        return (self.dev << 3) | self.fn

    @property
    def path(self) -> str:
        """Node path of the device directory (a VF sits next to its PF)."""
        if self.physfn is not None:
            return os.path.dirname(self.physfn.path) + "/" + self.bdf
        base = self.parent.path if self.parent is not None else self.host.path
        return base + "/" + self.bdf

    @property
    def is_bridge(self) -> bool:
        return self.header_type == 1

    def config(self) -> bytes:
        return build_config(self)


@dataclass
class Switch:
    up: Function
    internal_bus: int
    down: List[Function]


@dataclass
class NvmeDevice:
    function: Function
    name: str
    namespaces: List[str]
    cmb: Optional[Cmb]

    @property
    def bdf(self) -> str:
        return self.function.bdf


def build_config(fn: Function) -> bytes:
    """A config space image the kernel and lspci would decode as ``fn``."""
    size = 4096
    data = bytearray(size)
    # A VF's own Vendor and Device ID registers read 0xffff (SR-IOV); sysfs shows the real ones.
    ids = (0xFFFF, 0xFFFF) if fn.physfn is not None else (fn.vendor, fn.device)
    struct.pack_into("<HH", data, 0x00, *ids)
    struct.pack_into("<H", data, 0x04, 0x0006 if fn.physfn is None else 0x0004)  # memory + bus master
    has_caps = fn.port_type is not None
    struct.pack_into("<H", data, 0x06, 0x0010 if has_caps else 0x0000)
    data[0x08] = 0x01  # revision
    data[0x09] = fn.class_code & 0xFF
    data[0x0A] = (fn.class_code >> 8) & 0xFF
    data[0x0B] = (fn.class_code >> 16) & 0xFF
    data[0x0E] = fn.header_type | (0x80 if fn.multifunction else 0)
    if fn.header_type == 1:
        data[0x18] = fn.bus  # primary bus
        data[0x19] = fn.secondary_bus or 0
        data[0x1A] = fn.subordinate_bus or 0
        struct.pack_into("<HH", data, 0x20, 0xFFF0, 0x0000)  # memory window closed
        struct.pack_into("<HH", data, 0x24, 0xFFF1, 0x0001)
        data[0x3E] = 0x00
    else:
        for index, (start, _size, flags) in enumerate(fn.bars[:6]):
            struct.pack_into("<I", data, 0x10 + 4 * index, (start & 0xFFFFFFF0) | (flags & 0xF))
        struct.pack_into("<HH", data, 0x2C, fn.vendor, fn.device)  # subsystem
    data[0x3C] = 0x0B  # interrupt line
    data[0x3D] = 0x01  # INTA
    if has_caps:
        data[0x34] = 0x40
        pos = 0x40
        data[pos] = 0x10  # PCI_CAP_ID_EXP
        data[pos + 1] = 0x00  # last capability
        code = PORT_TYPE_CODES[fn.port_type or "endpoint"]
        flags = 0x2 | (code << 4)
        if fn.port_type in ("root_port", "switch_downstream"):
            flags |= 0x0100  # slot implemented
        struct.pack_into("<H", data, pos + 2, flags)
        struct.pack_into("<I", data, pos + 4, 0x00008000 | 0x2)  # role-based error reporting, 512B payload
        max_speed = fn.max_link_speed or fn.link_speed
        max_width = fn.max_link_width or fn.link_width
        if fn.port_type not in ("rciep", "rc_event_collector"):
            port_number = fn.dev if fn.port_type in ("root_port", "switch_downstream") else 0
            struct.pack_into("<I", data, pos + 0x0C, (port_number << 24) | (max_width << 4) | max_speed)
            struct.pack_into("<H", data, pos + 0x12, 0x1000 | (fn.link_width << 4) | fn.link_speed)
            struct.pack_into("<I", data, pos + 0x2C, sum(1 << bit for bit in range(1, max_speed + 1)))
        # Extended capabilities: AER at 0x100, then ACS where QEMU puts it (0x148), then
        # SR-IOV on a PF (its VF Device ID is where the kernel takes the VFs' ID from).
        ext = [(0x0001, 2, 0x100, b"")]
        if fn.acs_cap is not None:
            ext.append((0x000D, 1, fn.acs_offset, struct.pack("<HH", fn.acs_cap, fn.acs_ctrl)))
        if fn.virtfns:
            sriov = bytearray(0x3C)
            struct.pack_into("<HH", sriov, 0x0C - 4, len(fn.virtfns), len(fn.virtfns))  # InitialVFs, TotalVFs
            struct.pack_into("<H", sriov, 0x10 - 4, len(fn.virtfns))  # NumVFs
            struct.pack_into("<HH", sriov, 0x14 - 4, 1, 1)  # First VF Offset, VF Stride
            struct.pack_into("<H", sriov, 0x1A - 4, fn.virtfns[0].device)  # VF Device ID
            ext.append((0x0010, 1, 0x160, bytes(sriov)))
        for index, (cap_id, version, offset, body) in enumerate(ext):
            following = ext[index + 1][2] if index + 1 < len(ext) else 0
            struct.pack_into("<I", data, offset, cap_id | (version << 16) | (following << 20))
            data[offset + 4 : offset + 4 + len(body)] = body
    return bytes(data[: fn.config_bytes])


class SysfsTree:
    """A node's /sys, /proc and /boot below ``base``."""

    def __init__(
        self,
        base: Union[str, os.PathLike],
        kernel: str = "6.1.0-28-amd64",
        cpu: Tuple[str, int] = ("GenuineIntel", 6),
        arch: str = "x86_64",
        cmdline: str = "BOOT_IMAGE=/boot/vmlinuz root=/dev/vda1 ro quiet",
        config: Optional[Dict[str, str]] = None,
        config_source: str = "boot",
        upstream_version: Optional[str] = None,
        iommu: bool = False,
        host_bridge: Optional[Tuple[int, int]] = QEMU_Q35_HOST,
    ) -> None:
        self.base = os.fspath(base)
        self.kernel = kernel
        self.cpu = cpu
        self.arch = arch
        self.cmdline = cmdline
        self.config = dict(DEFAULT_CONFIG if config is None else config)
        self.config_source = config_source
        self.upstream_version = upstream_version
        self.iommu = iommu
        self.hosts: Dict[Tuple[int, int], HostBridge] = {}
        self.functions: Dict[str, Function] = {}
        self.order: List[Function] = []
        self.nvme_devices: List[NvmeDevice] = []
        self._written: set = set()
        self._nvme_count = 0
        self._iommu_group = 0
        self._mmio = 0xC000_0000
        self._made_dirs: set = set()
        self._default_host_device = host_bridge
        self.write_proc()

    # -- paths --------------------------------------------------------------------------
    def host_path(self, node_path: str) -> str:
        return self.base + node_path

    @property
    def root(self) -> str:
        self.write()
        return self.base

    def sysroot(self) -> SysRoot:
        self.write()
        return SysRoot(self.base)

    def _file(self, node_path: str, content: Union[str, bytes]) -> None:
        host = self.host_path(node_path)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(host, mode) as handle:
            handle.write(content)

    def _link(self, node_path: str, target_node_path: str) -> None:
        """A relative symlink at node_path to target_node_path, as sysfs makes them."""
        host = self.host_path(node_path)
        directory = os.path.dirname(host)
        if directory not in self._made_dirs:
            os.makedirs(directory, exist_ok=True)
            self._made_dirs.add(directory)
        relative = os.path.relpath(target_node_path, os.path.dirname(node_path))
        if os.path.lexists(host):
            os.unlink(host)
        os.symlink(relative, host)

    # -- /proc, /boot ---------------------------------------------------------------------
    def write_proc(self) -> None:
        vendor, family = self.cpu
        cpuinfo = "".join(
            "processor\t: %d\nvendor_id\t: %s\ncpu family\t: %d\nmodel\t\t: 1\nmodel name\t: synthetic\n\n"
            % (index, vendor, family)
            for index in range(2)
        )
        self._file("/proc/cpuinfo", cpuinfo)
        self._file("/proc/cmdline", self.cmdline + "\n")
        self._file("/proc/sys/kernel/osrelease", self.kernel + "\n")
        self._file("/proc/sys/kernel/arch", self.arch + "\n")
        upstream = " Debian %s-1 (2025-01-01)" % self.upstream_version if self.upstream_version else ""
        self._file(
            "/proc/version",
            "Linux version %s (builder@synthetic) (gcc (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC%s\n"
            % (self.kernel, upstream),
        )
        config_text = render_config({key[len("CONFIG_") :]: value for key, value in sorted(self.config.items())})
        if self.config_source == "proc":
            self._file("/proc/config.gz", gzip.compress(config_text.encode()))
        elif self.config_source == "boot":
            self._file("/boot/config-%s" % self.kernel, config_text)
        os.makedirs(self.host_path("/sys/bus/pci/devices"), exist_ok=True)
        os.makedirs(self.host_path("/sys/kernel/iommu_groups"), exist_ok=True)
        os.makedirs(self.host_path("/sys/class/iommu"), exist_ok=True)
        if self.iommu:
            self._file("/sys/devices/virtual/iommu/dmar0/intel-iommu/version", "1:0\n")
            self._link("/sys/class/iommu/dmar0", "/sys/devices/virtual/iommu/dmar0")

    # -- host bridges ---------------------------------------------------------------------
    def host_bridge(
        self,
        domain: int = 0,
        bus: int = 0,
        device: Optional[Tuple[int, int]] = None,
        device_slot: str = "00.0",
    ) -> HostBridge:
        """Host bridge ``pciDDDD:BB``; ``device`` puts a (vendor, device) function at ``device_slot``."""
        key = (domain, bus)
        host = self.hosts.get(key)
        if host is None:
            path = "/sys/devices/pci%04x:%02x" % (domain, bus)
            host = HostBridge(domain=domain, bus=bus, path=path, next_bus=bus + 1)
            self.hosts[key] = host
            os.makedirs(self.host_path(host.path), exist_ok=True)
            if device is None and key == (0, 0) and self._default_host_device is not None:
                device = self._default_host_device
        if device is not None:
            dev, fn = (int(x, 16) for x in device_slot.split("."))
            if _bdf(domain, bus, dev, fn) not in self.functions:
                self._add(
                    Function(
                        tree=self,
                        host=host,
                        parent=None,
                        bus=bus,
                        dev=dev,
                        fn=fn,
                        vendor=device[0],
                        device=device[1],
                        class_code=CLASS_HOST_BRIDGE,
                        port_type=None,
                    )
                )
        return host

    def _host_for(self, address: str) -> Tuple[HostBridge, int, int, int]:
        parts = address.split(":")
        if len(parts) == 3:
            domain = int(parts[0], 16)
            bus = int(parts[1], 16)
        else:
            domain = 0
            bus = int(parts[0], 16)
        dev, fn = (int(x, 16) for x in parts[-1].split("."))
        key = (domain, bus)
        host = self.hosts.get(key) or self.host_bridge(domain, bus)
        return host, bus, dev, fn

    # -- functions -------------------------------------------------------------------------
    def _add(self, fn: Function) -> Function:
        if fn.bdf in self.functions:
            raise ValueError("duplicate PCI address %s" % fn.bdf)
        self.functions[fn.bdf] = fn
        self.order.append(fn)
        if self.iommu and fn.iommu_group is None:
            fn.iommu_group = self._iommu_group
            self._iommu_group += 1
        return fn

    def _alloc_bus(self, host: HostBridge) -> int:
        bus = host.next_bus
        if bus > 0xFF:
            raise ValueError("host bridge %s ran out of bus numbers; use another domain" % host.name)
        host.next_bus += 1
        return bus

    def _slot_below(self, parent: Parent, slot: Optional[int]) -> Tuple[HostBridge, int, int]:
        if isinstance(parent, HostBridge):
            raise ValueError("give a root port address instead")
        if parent.secondary_bus is None:
            raise ValueError("%s is not a bridge" % parent.bdf)
        if slot is None:
            slot = 0 if parent.port_type in ("root_port", "switch_downstream") else parent.children_slots.get(-1, 0)
            parent.children_slots[-1] = slot + 1
        return parent.host, parent.secondary_bus, slot

    def _bar(self, size: int) -> Tuple[int, int, int]:
        # Align every BAR to its size (at least 2 MiB, as a CMB must be for nvme-pci).
        align = max(size, 2 * 1024 * 1024)
        start = (self._mmio + align - 1) // align * align
        self._mmio = start + size
        return (start, size, 0x0C)  # 64-bit prefetchable memory

    def root_port(
        self,
        address: str,
        acs_ctrl: Optional[int] = 0,
        acs_cap: int = QEMU_ROOT_PORT_ACS_CAP,
        ids: Tuple[int, int] = QEMU_ROOT_PORT,
        link: Tuple[int, int] = (4, 16),
        config_bytes: int = 4096,
        multifunction: bool = False,
    ) -> Function:
        """A root port on the root bus (``[dddd:]bb:dd.f``); ``acs_ctrl=None`` leaves out ACS."""
        host, bus, dev, function = self._host_for(address)
        port = self._port(host, None, bus, dev, function, "root_port", ids, acs_ctrl, acs_cap, link, config_bytes)
        port.multifunction = multifunction
        return port

    def bridge(
        self,
        parent: Function,
        port_type: str,
        ids: Tuple[int, int],
        slot: Optional[int] = None,
        function: int = 0,
        acs_ctrl: Optional[int] = None,
        acs_cap: int = ACS_SV | ACS_RR | ACS_CR | ACS_UF | ACS_EC,
        link: Tuple[int, int] = (4, 16),
        config_bytes: int = 4096,
    ) -> Function:
        """A bridge (``port_type`` switch_upstream, switch_downstream, pcie_to_pci_bridge...) below ``parent``."""
        host, bus, dev = self._slot_below(parent, slot)
        return self._port(host, parent, bus, dev, function, port_type, ids, acs_ctrl, acs_cap, link, config_bytes)

    def _port(
        self,
        host: HostBridge,
        parent: Optional[Function],
        bus: int,
        dev: int,
        function: int,
        port_type: str,
        ids: Tuple[int, int],
        acs_ctrl: Optional[int],
        acs_cap: int,
        link: Tuple[int, int],
        config_bytes: int,
    ) -> Function:
        port = Function(
            tree=self,
            host=host,
            parent=parent,
            bus=bus,
            dev=dev,
            fn=function,
            vendor=ids[0],
            device=ids[1],
            class_code=CLASS_PCI_BRIDGE,
            port_type=port_type,
            header_type=1,
            acs_cap=None if acs_ctrl is None else acs_cap,
            acs_ctrl=acs_ctrl or 0,
            link_speed=link[0],
            link_width=link[1],
            config_bytes=config_bytes,
            driver="pcieport",
        )
        port.secondary_bus = self._alloc_bus(host)
        return self._add(port)

    def switch(
        self,
        parent: Function,
        downstream: int = 4,
        up_ids: Tuple[int, int] = QEMU_SWITCH_UP,
        down_ids: Tuple[int, int] = QEMU_SWITCH_DOWN,
        acs_ctrl: Optional[Union[int, Sequence[Optional[int]]]] = None,
        up_acs_ctrl: Optional[int] = None,
        link: Tuple[int, int] = (4, 16),
    ) -> Switch:
        """A switch below ``parent``: upstream port, internal bus, ``downstream`` downstream ports.

        QEMU's x3130/xio3130 have no ACS (the default); ``acs_ctrl`` gives every downstream
        port (or each, as a list) an ACS capability with that control value.
        """
        up = self.bridge(parent, "switch_upstream", up_ids, acs_ctrl=up_acs_ctrl, link=link)
        controls = list(acs_ctrl) if isinstance(acs_ctrl, (list, tuple)) else [acs_ctrl] * downstream
        down = [
            self.bridge(up, "switch_downstream", down_ids, slot=index, acs_ctrl=controls[index], link=link)
            for index in range(downstream)
        ]
        return Switch(up=up, internal_bus=up.secondary_bus or 0, down=down)

    def downstream_port(
        self,
        switch: Switch,
        ids: Tuple[int, int] = QEMU_SWITCH_DOWN,
        acs_ctrl: Optional[int] = None,
        link: Tuple[int, int] = (4, 16),
    ) -> Function:
        """One more downstream port on ``switch``. Bus numbers go depth-first as in Linux, so
        add a port after everything below the previous ports (e.g. a cascaded switch)."""
        port = self.bridge(
            switch.up, "switch_downstream", ids, slot=len(switch.down), acs_ctrl=acs_ctrl, link=link
        )
        switch.down.append(port)
        return port

    def endpoint(
        self,
        parent: Union[Function, str],
        ids: Tuple[int, int] = (0x1AF4, 0x1041),
        class_code: int = CLASS_OTHER,
        slot: Optional[int] = None,
        function: int = 0,
        multifunction: bool = False,
        port_type: Optional[str] = "endpoint",
        acs_ctrl: Optional[int] = None,
        acs_cap: int = ACS_SV | ACS_RR | ACS_CR | ACS_UF | ACS_EC,
        driver: Optional[str] = None,
        link: Tuple[int, int] = (3, 4),
        max_link: Optional[Tuple[int, int]] = None,
        config_bytes: int = 4096,
        p2pmem: Optional[Tuple[int, int, bool]] = None,
        bar_size: int = 16 * 1024,
        numa_node: int = -1,
    ) -> Function:
        """An endpoint function below a bridge, or on a root bus when ``parent`` is an address."""
        if isinstance(parent, str):
            host, bus, dev, function = self._host_for(parent)
            parent_fn: Optional[Function] = None
        else:
            host, bus, dev = self._slot_below(parent, slot)
            parent_fn = parent
        fn = Function(
            tree=self,
            host=host,
            parent=parent_fn,
            bus=bus,
            dev=dev,
            fn=function,
            vendor=ids[0],
            device=ids[1],
            class_code=class_code,
            port_type=port_type,
            multifunction=multifunction,
            acs_cap=None if acs_ctrl is None else acs_cap,
            acs_ctrl=acs_ctrl or 0,
            driver=driver,
            link_speed=link[0],
            link_width=link[1],
            max_link_speed=max_link[0] if max_link else None,
            max_link_width=max_link[1] if max_link else None,
            config_bytes=config_bytes,
            p2pmem=p2pmem,
            numa_node=numa_node,
        )
        fn.bars = [self._bar(bar_size)]
        return self._add(fn)

    def multifunction(self, parent: Function, count: int, **kwargs) -> List[Function]:  # type: ignore[no-untyped-def]
        """Functions 0..count-1 of one device, the multifunction bit set on each."""
        host, bus, dev = self._slot_below(parent, kwargs.pop("slot", None))
        return [
            self.endpoint(parent, slot=dev, function=index, multifunction=True, **kwargs) for index in range(count)
        ]

    def sriov(self, pf: Function, count: int, offset: int = 1, stride: int = 1) -> List[Function]:
        """``count`` VFs of ``pf`` (routing IDs pf + offset + i*stride), next to it in sysfs."""
        vfs = []
        base = (pf.bus << 8) | pf.devfn
        for index in range(count):
            rid = base + offset + index * stride
            vf = Function(
                tree=self,
                host=pf.host,
                parent=pf.parent,
                bus=rid >> 8,
                dev=(rid >> 3) & 0x1F,
                fn=rid & 0x7,
                vendor=pf.vendor,
                device=pf.device + 1,
                class_code=pf.class_code,
                port_type="endpoint",
                physfn=pf,
                driver=pf.driver,
                link_speed=pf.link_speed,
                link_width=pf.link_width,
            )
            vf.bars = [self._bar(16 * 1024)]
            pf.virtfns.append(vf)
            vfs.append(self._add(vf))
        return vfs

    # -- class devices ---------------------------------------------------------------------
    def nvme(
        self,
        parent: Union[Function, str],
        cmb: Optional[Cmb] = None,
        p2pmem: Optional[Tuple[int, int, bool]] = None,
        name: Optional[str] = None,
        namespaces: int = 1,
        ids: Tuple[int, int] = QEMU_NVME,
        multipath: bool = False,
        subsystem: int = 0,
        cmb_bar: Optional[Tuple[int, int]] = None,
        **kwargs,  # type: ignore[no-untyped-def]
    ) -> NvmeDevice:
        """An NVMe controller (class 010802, driver nvme) with namespaces and optional CMB/p2pmem.

        ``cmb_bar`` (start, length) places the CMB's BAR explicitly (default: aligned to its size).
        With ``multipath`` the namespaces are head nodes nvme<subsystem>n<N> below the
        nvme-subsystem, reached through path nodes nvme<subsystem>c<ctrl>n<N>.
        """
        ctrl_index = self._nvme_count if name is None else int(name[4:])
        self._nvme_count = max(self._nvme_count, ctrl_index + 1)
        name = name or "nvme%d" % ctrl_index
        bar_size = max(16 * 1024, cmb.size_bytes if cmb is not None else 0)
        fn = self.endpoint(parent, ids=ids, class_code=CLASS_NVME, driver="nvme", p2pmem=p2pmem, **kwargs)
        if cmb is not None and cmb.bir:
            bar = (cmb_bar[0], cmb_bar[1], 0x0C) if cmb_bar is not None else self._bar(bar_size)
            fn.bars = [self._bar(16 * 1024)] + [(0, 0, 0)] * (cmb.bir - 1) + [bar]
        ctrl_path = fn.path + "/nvme/" + name
        attrs = {
            "transport": "pcie",
            "model": "QEMU NVMe Ctrl",
            "serial": "serial-%s" % name,
            "firmware_rev": "8.0.0",
            "state": "live",
            "address": fn.bdf,
            "cntlid": "0",
            "subsysnqn": "nqn.2019-08.org.qemu:serial-%s" % name,
            "dev": "250:%d" % ctrl_index,
        }
        if cmb is not None and cmb.cmbsz:
            attrs["cmbsz"] = "%u" % cmb.cmbsz
            attrs["cmbloc"] = "%u" % cmb.cmbloc
            attrs["cmb"] = "cmbloc : x%08x\ncmbsz  : x%08x" % (cmb.cmbloc, cmb.cmbsz)
        self._class_device(ctrl_path, attrs)
        self._link("/sys/class/nvme/" + name, ctrl_path)
        self._link(ctrl_path + "/device", fn.path)
        ns_names = []
        for nsid in range(1, namespaces + 1):
            if multipath:
                head = "nvme%dn%d" % (subsystem, nsid)
                path_node = "nvme%dc%dn%d" % (subsystem, ctrl_index, nsid)
                self._class_device(ctrl_path + "/" + path_node, {"nsid": str(nsid)})
                # Hidden path nodes are block devices too (no /dev node), as a 6.1 guest shows.
                self._link("/sys/block/" + path_node, ctrl_path + "/" + path_node)
                self._link("/sys/class/block/" + path_node, ctrl_path + "/" + path_node)
                head_path = "/sys/devices/virtual/nvme-subsystem/nvme-subsys%d/%s" % (subsystem, head)
                self._class_device(head_path, {"nsid": str(nsid), "size": "131072"})
                self._link("/sys/block/" + head, head_path)
                self._link("/sys/class/block/" + head, head_path)
                self._link(
                    "/sys/class/nvme-subsystem/nvme-subsys%d" % subsystem,
                    "/sys/devices/virtual/nvme-subsystem/nvme-subsys%d" % subsystem,
                )
                ns_names.append(head)
            else:
                ns = "nvme%dn%d" % (ctrl_index, nsid)
                ns_path = ctrl_path + "/" + ns
                self._class_device(ns_path, {"nsid": str(nsid), "size": "131072", "dev": "259:%d" % nsid})
                self._link("/sys/block/" + ns, ns_path)
                self._link("/sys/class/block/" + ns, ns_path)
                ns_names.append(ns)
        device = NvmeDevice(function=fn, name=name, namespaces=ns_names, cmb=cmb)
        self.nvme_devices.append(device)
        return device

    def nvme_fabrics(self, name: str, transport: str = "tcp", namespaces: int = 1) -> str:
        """An NVMe-oF controller: no PCI parent (/sys/devices/virtual/nvme-fabrics/ctl/nvmeX)."""
        ctrl_path = "/sys/devices/virtual/nvme-fabrics/ctl/" + name
        self._class_device(ctrl_path, {"transport": transport, "state": "live", "address": "traddr=192.0.2.1"})
        self._link("/sys/class/nvme/" + name, ctrl_path)
        for nsid in range(1, namespaces + 1):
            ns = "%sn%d" % (name, nsid)
            self._class_device(ctrl_path + "/" + ns, {"nsid": str(nsid)})
            self._link("/sys/block/" + ns, ctrl_path + "/" + ns)
        return name

    def rdma_nic(
        self,
        parent: Union[Function, str],
        name: str = "mlx5_0",
        netdev: str = "eth0",
        ids: Tuple[int, int] = MELLANOX_CX5,
        driver: str = "mlx5_core",
        **kwargs,  # type: ignore[no-untyped-def]
    ) -> Function:
        """A PCI RDMA NIC: the function, its infiniband device and its netdev."""
        fn = self.endpoint(parent, ids=ids, class_code=CLASS_ETHERNET, driver=driver, **kwargs)
        ib_path = fn.path + "/infiniband/" + name
        self._class_device(ib_path, {"node_type": "1: CA", "fw_ver": "16.35.1012"})
        self._file(ib_path + "/ports/1/gid_attrs/ndevs/0", netdev + "\n")
        self._link("/sys/class/infiniband/" + name, ib_path)
        self._link(ib_path + "/device", fn.path)
        self.net(netdev, fn)
        return fn

    def net(self, name: str, function: Optional[Function] = None) -> None:
        path = (function.path + "/net/" + name) if function is not None else "/sys/devices/virtual/net/" + name
        self._class_device(path, {"operstate": "up", "address": "52:54:00:12:34:56"})
        self._link("/sys/class/net/" + name, path)
        if function is not None:
            self._link(path + "/device", function.path)

    def rxe(self, name: str = "rxe0", netdev: str = "eth0") -> None:
        """Soft-RoCE: a virtual infiniband device with a ``parent`` netdev attribute."""
        path = "/sys/devices/virtual/infiniband/" + name
        self._class_device(path, {"node_type": "1: CA", "parent": netdev})
        self._file(path + "/ports/1/gid_attrs/ndevs/0", netdev + "\n")
        self._link("/sys/class/infiniband/" + name, path)

    def siw(self, name: str = "siw0", netdev: str = "eth0") -> None:
        path = "/sys/devices/virtual/infiniband/" + name
        self._class_device(path, {"node_type": "1: CA"})
        self._file(path + "/ports/1/gid_attrs/ndevs/0", netdev + "\n")
        self._link("/sys/class/infiniband/" + name, path)

    def block(self, name: str, slaves: Iterable[str] = (), backing_file: Optional[str] = None) -> None:
        """A virtual block device (dm-N, mdN, loopN) with its slaves or backing file."""
        path = "/sys/devices/virtual/block/" + name
        self._class_device(path, {"size": "131072"})
        os.makedirs(self.host_path(path + "/slaves"), exist_ok=True)
        for slave in slaves:
            self._link(path + "/slaves/" + slave, self._block_path(slave))
        if backing_file is not None:
            self._file(path + "/loop/backing_file", backing_file + "\n")
        self._link("/sys/block/" + name, path)
        self._link("/sys/class/block/" + name, path)

    def _block_path(self, name: str) -> str:
        target = os.readlink(self.host_path("/sys/block/" + name))
        return os.path.normpath(os.path.join("/sys/block", target))

    def _class_device(self, path: str, attrs: Dict[str, str]) -> None:
        os.makedirs(self.host_path(path), exist_ok=True)
        for key, value in attrs.items():
            self._file(path + "/" + key, value + "\n")

    # -- writing ---------------------------------------------------------------------------
    def _fix_bus_ranges(self) -> None:
        def walk(fn: Function) -> int:
            highest = fn.secondary_bus if fn.secondary_bus is not None else fn.bus
            for child in children.get(fn.bdf, []):
                highest = max(highest, walk(child))
            if fn.secondary_bus is not None:
                fn.subordinate_bus = highest
            return highest

        children: Dict[str, List[Function]] = {}
        for fn in self.order:
            if fn.parent is not None:
                children.setdefault(fn.parent.bdf, []).append(fn)
        for fn in self.order:
            if fn.parent is None and fn.physfn is None:
                walk(fn)
        # Linux numbers buses depth-first; a bridge added to an earlier port after later
        # ports got their buses would make ranges overlap, which lspci and the kernel reject.
        ranges = sorted(
            (fn.host.name, fn.secondary_bus, fn.subordinate_bus or 0, fn.bdf)
            for fn in self.order
            if fn.secondary_bus is not None
        )
        open_ranges: List[Tuple[str, int, int, str]] = []
        for entry in ranges:
            host, low, _high, bdf = entry
            while open_ranges and (open_ranges[-1][0] != host or open_ranges[-1][2] < low):
                open_ranges.pop()
            if open_ranges and not self._below(bdf, open_ranges[-1][3]):
                outer = open_ranges[-1]
                raise ValueError(
                    "bus ranges of %s [%02x-%02x] and %s overlap: add devices depth-first"
                    % (outer[3], outer[1], outer[2], bdf)
                )
            open_ranges.append(entry)

    def _below(self, bdf: str, ancestor: str) -> bool:
        fn: Optional[Function] = self.functions[bdf]
        while fn is not None:
            if fn.bdf == ancestor:
                return True
            fn = fn.parent
        return False

    def write(self) -> None:
        """Write every function not written yet; rewrite bridges whose bus range changed."""
        self._fix_bus_ranges()
        for fn in self.order:
            if fn.bdf in self._written:
                if fn.is_bridge:
                    self._file(fn.path + "/config", fn.config())
                continue
            self._write_function(fn)
            self._written.add(fn.bdf)

    def _write_function(self, fn: Function) -> None:
        path = fn.path
        host = self.host_path(path)
        os.makedirs(host, exist_ok=True)
        files: Dict[str, str] = {
            "vendor": "0x%04x\n" % fn.vendor,
            "device": "0x%04x\n" % fn.device,
            "subsystem_vendor": "0x%04x\n" % (0 if fn.is_bridge else fn.vendor),
            "subsystem_device": "0x%04x\n" % (0 if fn.is_bridge else fn.device),
            "class": "0x%06x\n" % fn.class_code,
            "revision": "0x01\n",
            "irq": "11\n",
            "enable": "1\n",
            "numa_node": "%d\n" % fn.numa_node,
            "resource": self._resource_text(fn),
        }
        if not fn.minimal:
            self._extra_attributes(fn, files)
        for key, value in files.items():
            with open(host + "/" + key, "w") as handle:
                handle.write(value)
        with open(host + "/config", "wb") as handle:
            handle.write(fn.config())
        if not fn.minimal:
            self._link(path + "/subsystem", "/sys/bus/pci")
        self._write_links(fn)

    @staticmethod
    def _extra_attributes(fn: Function, files: Dict[str, str]) -> None:
        """The rest of what sysfs shows for a function (pci-sysfs.c), lspci does not need."""
        files.update({
            "local_cpus": "3\n",
            "local_cpulist": "0-1\n",
            "broken_parity_status": "0\n",
            "msi_bus": "1\n",
            "d3cold_allowed": "1\n",
            "modalias": "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X\n"
            % (
                fn.vendor,
                fn.device,
                fn.vendor,
                fn.device,
                (fn.class_code >> 16) & 0xFF,
                (fn.class_code >> 8) & 0xFF,
                fn.class_code & 0xFF,
            ),
        })
        if fn.port_type is not None and fn.port_type not in ("rciep", "rc_event_collector"):
            speeds = {1: "2.5", 2: "5.0", 3: "8.0", 4: "16.0", 5: "32.0", 6: "64.0"}
            files["current_link_speed"] = "%s GT/s PCIe\n" % speeds[fn.link_speed]
            files["current_link_width"] = "%d\n" % fn.link_width
            files["max_link_speed"] = "%s GT/s PCIe\n" % speeds[fn.max_link_speed or fn.link_speed]
            files["max_link_width"] = "%d\n" % (fn.max_link_width or fn.link_width)
        if fn.is_bridge:
            files["secondary_bus_number"] = "%d\n" % (fn.secondary_bus or 0)
            files["subordinate_bus_number"] = "%d\n" % (fn.subordinate_bus or 0)

    def _write_links(self, fn: Function) -> None:
        path = fn.path
        host = self.host_path(path)
        self._link("/sys/bus/pci/devices/" + fn.bdf, path)
        if fn.driver:
            driver_dir = "/sys/bus/pci/drivers/" + fn.driver
            os.makedirs(self.host_path(driver_dir), exist_ok=True)
            self._link(path + "/driver", driver_dir)
            self._link(driver_dir + "/" + fn.bdf, path)
        if fn.iommu_group is not None:
            group = "/sys/kernel/iommu_groups/%d" % fn.iommu_group
            os.makedirs(self.host_path(group + "/devices"), exist_ok=True)
            self._link(path + "/iommu_group", group)
            self._link(group + "/devices/" + fn.bdf, path)
        if fn.physfn is not None:
            self._link(path + "/physfn", fn.physfn.path)
            index = fn.physfn.virtfns.index(fn)
            self._link(fn.physfn.path + "/virtfn%d" % index, path)
        if fn.virtfns:
            self._file(path + "/sriov_totalvfs", "%d\n" % len(fn.virtfns))
            self._file(path + "/sriov_numvfs", "%d\n" % len(fn.virtfns))
        if fn.p2pmem is not None:
            size, available, published = fn.p2pmem
            os.makedirs(host + "/p2pmem", exist_ok=True)
            self._file(path + "/p2pmem/size", "%d\n" % size)
            self._file(path + "/p2pmem/available", "%d\n" % available)
            self._file(path + "/p2pmem/published", "%d\n" % int(published))

    @staticmethod
    def _resource_text(fn: Function) -> str:
        # resource_show(): one line per resource (BARs 0-5, ROM, bridge windows), start end flags.
        lines = []
        count = 17 if fn.is_bridge else 13
        bars = list(fn.bars) + [(0, 0, 0)] * count
        for index in range(count):
            start, size, flags = bars[index] if index < 6 and not fn.is_bridge else (0, 0, 0)
            if size:
                lines.append("0x%016x 0x%016x 0x%016x" % (start, start + size - 1, 0x00140204 | (flags & 0x8) << 10))
            else:
                lines.append("0x%016x 0x%016x 0x%016x" % (0, 0, 0))
        return "\n".join(lines) + "\n"


def fabric(
    tree: SysfsTree,
    endpoints: int,
    per_switch: int = 16,
    functions_per_port: int = 8,
    providers: int = 64,
    cmb: Optional[Cmb] = None,
) -> Tuple[List[str], List[str]]:
    """A large switched fabric: returns (provider BDFs, client BDFs).

    Each domain gets root ports, each root port a switch with ``per_switch`` downstream
    ports, each port a multifunction device of ``functions_per_port`` functions. Domains
    are added as bus numbers run out, so any count fits. The first ``providers``
    functions (spread over the fabric) carry published p2pmem.
    """
    cmb = cmb or Cmb(cmbsz=0x1_0000 | (2 << 8) | 0x1F, cmbloc=0x2)
    buses_per_switch = 2 + per_switch
    switches_per_domain = min(31, (0xFF - 1) // buses_per_switch)
    per_switch_endpoints = per_switch * functions_per_port
    switches = (endpoints + per_switch_endpoints - 1) // per_switch_endpoints
    clients: List[str] = []
    all_functions: List[Function] = []
    made = 0
    for index in range(switches):
        domain, local = divmod(index, switches_per_domain)
        tree.host_bridge(domain, 0, device=QEMU_Q35_HOST if domain == 0 else (0x8086, 0x09A2))
        rp = tree.root_port("%04x:00:%02x.0" % (domain, local + 1))
        sw = tree.switch(rp, downstream=per_switch)
        for port in [rp, sw.up] + sw.down:
            port.minimal = True
        for port in sw.down:
            count = min(functions_per_port, endpoints - made)
            if count <= 0:
                break
            for function in range(count):
                fn = tree.endpoint(
                    port,
                    ids=QEMU_NVME,
                    class_code=CLASS_NVME,
                    slot=0,
                    function=function,
                    multifunction=count > 1,
                    driver="nvme",
                )
                fn.minimal = True
                all_functions.append(fn)
            made += count
    step = max(1, len(all_functions) // max(1, providers))
    provider_fns = all_functions[::step][:providers]
    for fn in provider_fns:
        fn.p2pmem = (cmb.size_bytes, cmb.size_bytes, True)
    clients = [fn.bdf for fn in all_functions]
    return [fn.bdf for fn in provider_fns], clients


__all__ = [
    "ACS_CR",
    "ACS_DT",
    "ACS_EC",
    "ACS_RR",
    "ACS_SV",
    "ACS_TB",
    "ACS_UF",
    "Cmb",
    "Function",
    "HostBridge",
    "KERNEL_IOMMU_ACS",
    "NvmeDevice",
    "SysfsTree",
    "Switch",
    "build_config",
    "fabric",
]
