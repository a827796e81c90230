"""PCIe topology presets of the lab node, as QEMU q35 device lists.

One preset is the single source for the lab VM (``p2pctl lab up --topology``), for the
docs' diagrams and for the test fixtures captured from guests. Every device is placed
explicitly (bus and slot), so that guest BDFs are stable between runs and hosts.

CMB sizes are powers of two of at least 2 MiB: Linux skips a CMB whose size or BAR
is not 2 MiB aligned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

# QEMU's q35 puts its own devices at 00:00.0 (host bridge) and 00:1f.x (ICH9). The lab
# adds the boot disk and the management NIC on the root bus, away from the test topology.
BOOT_DISK_SLOT = 0x02
MGMT_NIC_SLOT = 0x03

INTEL_CPU = "Skylake-Client-v1"
AMD_ZEN_CPU = "EPYC"


@dataclass(frozen=True)
class NvmeDrive:
    """An emulated NVMe controller with one namespace."""

    id: str
    bus: str
    slot: int = 0
    function: int = 0
    cmb_mb: int = 0
    pmr_mb: int = 0
    multifunction: bool = False
    size_mb: int = 64

    def qemu_args(self, drive_path: str) -> List[str]:
        props = [
            "nvme",
            "id=%s" % self.id,
            "serial=%s" % self.id,
            "drive=%s-disk" % self.id,
            "bus=%s" % self.bus,
            "addr=%02x.%x" % (self.slot, self.function),
        ]
        if self.multifunction:
            props.append("multifunction=on")
        if self.cmb_mb:
            props.append("cmb_size_mb=%d" % self.cmb_mb)
        args = ["-drive", "file=%s,if=none,id=%s-disk,format=raw" % (drive_path, self.id)]
        if self.pmr_mb:
            # QEMU puts the PMR on BAR 4; it is the closest model of a card that exposes
            # memory on BAR 4 without a CMB (the pseudo-CMB quirk's devices).
            args += ["-object", "memory-backend-ram,id=%s-pmr,size=%dM,share=on" % (self.id, self.pmr_mb)]
            props.append("pmrdev=%s-pmr" % self.id)
        return args + ["-device", ",".join(props)]


# Each port kind: its QEMU device model and the vendor:device ID the guest sees.
PORT_MODELS: Dict[str, Tuple[str, str]] = {
    "root": ("pcie-root-port", "1b36:000c"),
    "switch-up": ("x3130-upstream", "104c:8232"),
    "switch-down": ("xio3130-downstream", "104c:8233"),
}


@dataclass(frozen=True)
class Topology:
    name: str
    summary: str
    cpu: str
    # Ports in creation order: (kind, id, parent bus, slot, chassis) where kind is
    # "root", "switch-up" or "switch-down".
    ports: Tuple[Tuple[str, str, str, int, int], ...]
    drives: Tuple[NvmeDrive, ...]
    nic_bus: Optional[str] = None
    iommu: bool = False
    diagram: str = ""
    # Kernel command line additions the preset needs to show its case.
    cmdline: Tuple[str, ...] = field(default_factory=tuple)
    # Ansible variables a node of this preset needs, written into the lab inventory.
    inventory_vars: Dict[str, Any] = field(default_factory=dict)

    def ports_above(self, bus: str) -> List[Tuple[str, str]]:
        """(kind, id) of each port from the root bus down to ``bus``: the bridges a guest finds above a device."""
        parents = {port_id: (kind, parent) for kind, port_id, parent, _slot, _chassis in self.ports}
        chain: List[Tuple[str, str]] = []
        while bus in parents:
            kind, parent = parents[bus]
            chain.insert(0, (kind, bus))
            bus = parent
        return chain

    def qemu_args(self, drive_paths: Dict[str, str]) -> List[str]:
        """The topology part of the QEMU command line (machine, CPU, ports, drives, NIC)."""
        machine = "q35,kernel-irqchip=split" if self.iommu else "q35"
        args = ["-machine", machine, "-cpu", self.cpu]
        if self.iommu:
            args += ["-device", "intel-iommu,intremap=on"]
        for kind, port_id, parent, slot, chassis in self.ports:
            props = [PORT_MODELS[kind][0], "id=%s" % port_id, "bus=%s" % parent, "addr=%02x.0" % slot]
            if kind != "switch-up":
                props += ["chassis=%d" % chassis, "slot=%d" % chassis]
            args += ["-device", ",".join(props)]
        for drive in self.drives:
            args += drive.qemu_args(drive_paths[drive.id])
        if self.nic_bus:
            args += [
                "-netdev",
                "user,id=p2pnic",
                "-device",
                "e1000e,netdev=p2pnic,bus=%s,addr=00.0,romfile=" % self.nic_bus,
            ]
        return args


def switch_ports(
    prefix: str, parent: str, slot: int, chassis: int, downstream: int
) -> List[Tuple[str, str, str, int, int]]:
    """The upstream port of a switch below ``parent`` and its ``downstream`` ports, in creation order."""
    ports = [("switch-up", "%sup" % prefix, parent, slot, 0)]
    for index in range(downstream):
        ports.append(("switch-down", "%sd%d" % (prefix, index), "%sup" % prefix, index, chassis + index))
    return ports


_SWITCH_PORTS = tuple(
    [("root", "rp1", "pcie.0", 0x04, 1)] + switch_ports("sw1", "rp1", 0, 10, 4) + [("root", "rp2", "pcie.0", 0x05, 2)]
)

PRESETS: Dict[str, Topology] = {}


def _register(topology: Topology) -> None:
    PRESETS[topology.name] = topology


_register(
    Topology(
        name="switch",
        summary="one switch with two CMB drives, a plain drive and a NIC; a CMB drive on a second root port",
        cpu=INTEL_CPU,
        ports=_SWITCH_PORTS,
        drives=(
            NvmeDrive("cmb0", bus="sw1d0", cmb_mb=64),
            NvmeDrive("cmb1", bus="sw1d1", cmb_mb=64),
            NvmeDrive("plain0", bus="sw1d2"),
            NvmeDrive("cmb2", bus="rp2", cmb_mb=32),
        ),
        nic_bus="sw1d3",
        diagram="""\
pcie.0 (q35 host bridge 8086:29c0)
 +- rp1 root port
 |   +- sw1 x3130 switch upstream
 |       +- sw1d0 -- nvme cmb0   CMB 64 MiB
 |       +- sw1d1 -- nvme cmb1   CMB 64 MiB
 |       +- sw1d2 -- nvme plain0 (no CMB)
 |       +- sw1d3 -- e1000e NIC
 +- rp2 root port -- nvme cmb2   CMB 32 MiB
""",
    )
)

_register(
    Topology(
        name="cascade",
        summary="a switch below a switch: CMB drives at two depths",
        cpu=INTEL_CPU,
        ports=tuple(
            [("root", "rp1", "pcie.0", 0x04, 1)]
            + switch_ports("sw1", "rp1", 0, 10, 3)
            + switch_ports("sw2", "sw1d2", 0, 20, 2)
        ),
        drives=(
            NvmeDrive("cmb0", bus="sw1d0", cmb_mb=64),
            NvmeDrive("plain0", bus="sw1d1"),
            NvmeDrive("cmb1", bus="sw2d0", cmb_mb=64),
        ),
        nic_bus="sw2d1",
        diagram="""\
pcie.0 (q35 host bridge)
 +- rp1 root port
     +- sw1 switch
         +- sw1d0 -- nvme cmb0 CMB 64 MiB
         +- sw1d1 -- nvme plain0
         +- sw1d2 -- sw2 switch
                      +- sw2d0 -- nvme cmb1 CMB 64 MiB
                      +- sw2d1 -- e1000e NIC
""",
    )
)

_ROOTPORT_PORTS = tuple(("root", "rp%d" % n, "pcie.0", 0x03 + n, n) for n in range(1, 5))
_ROOTPORT_DRIVES = (
    NvmeDrive("cmb0", bus="rp1", cmb_mb=64),
    NvmeDrive("cmb1", bus="rp2", cmb_mb=64),
    NvmeDrive("plain0", bus="rp3"),
)
_ROOTPORT_DIAGRAM = """\
pcie.0 (q35 host bridge 8086:29c0, not whitelisted)
 +- rp1 root port -- nvme cmb0 CMB 64 MiB
 +- rp2 root port -- nvme cmb1 CMB 64 MiB
 +- rp3 root port -- nvme plain0
 +- rp4 root port -- e1000e NIC
"""

_register(
    Topology(
        name="rootports",
        summary="every device on its own root port, Intel CPU model: host-bridge paths are not supported",
        cpu=INTEL_CPU,
        ports=_ROOTPORT_PORTS,
        drives=_ROOTPORT_DRIVES,
        nic_bus="rp4",
        diagram=_ROOTPORT_DIAGRAM,
    )
)

_register(
    Topology(
        name="epyc",
        summary="as rootports, with an AMD Zen CPU model: paths through the host bridge are supported",
        cpu=AMD_ZEN_CPU,
        ports=_ROOTPORT_PORTS,
        drives=_ROOTPORT_DRIVES,
        nic_bus="rp4",
        diagram=_ROOTPORT_DIAGRAM.replace("not whitelisted", "not whitelisted, but AMD family 17h+ CPU"),
    )
)

_register(
    Topology(
        name="acs",
        summary="two functions of one CMB device below a root port whose ACS redirect the guest IOMMU turns on",
        cpu=INTEL_CPU,
        ports=(("root", "rp1", "pcie.0", 0x04, 1), ("root", "rp2", "pcie.0", 0x05, 2)),
        drives=(
            NvmeDrive("cmb0", bus="rp1", function=0, multifunction=True, cmb_mb=64),
            NvmeDrive("cmb1", bus="rp1", function=1, cmb_mb=64),
        ),
        nic_bus="rp2",
        iommu=True,
        cmdline=("intel_iommu=on",),
        diagram="""\
pcie.0 (q35 host bridge) + intel-iommu
 +- rp1 root port (ACS: RR|CR set by the guest kernel because of the IOMMU)
 |   +- 00.0 nvme cmb0 CMB 64 MiB (multifunction)
 |   +- 00.1 nvme cmb1 CMB 64 MiB
 +- rp2 root port -- e1000e NIC
""",
    )
)

_register(
    Topology(
        name="pseudo-cmb",
        summary="an NVMe drive with memory on BAR 4 (QEMU PMR) and no CMB, next to a CMB drive under a switch",
        cpu=INTEL_CPU,
        ports=_SWITCH_PORTS,
        drives=(
            NvmeDrive("pmr0", bus="sw1d0", pmr_mb=32),
            NvmeDrive("cmb0", bus="sw1d1", cmb_mb=64),
        ),
        nic_bus="sw1d3",
        # QEMU's nvme (1b36:0010) has no pseudo-CMB entry in the driver: the patched kernel
        # learns it from the nvme.pseudo_cmb parameter that kernel_install writes.
        inventory_vars={"kernel_install_pseudo_cmb_ids": ["1b36:0010"]},
        diagram="""\
pcie.0 (q35 host bridge)
 +- rp1 root port
 |   +- sw1 switch
 |       +- sw1d0 -- nvme pmr0  32 MiB on BAR 4, CMBSZ = 0 (pseudo-CMB)
 |       +- sw1d1 -- nvme cmb0  CMB 64 MiB
 |       +- sw1d3 -- e1000e NIC
 +- rp2 root port (empty)
""",
    )
)


def get_topology(name: str) -> Topology:
    try:
        return PRESETS[name]
    except KeyError:
        raise P2PError(
            "unknown lab topology %r" % name,
            fix="choose one of: %s" % ", ".join(sorted(PRESETS)),
        ) from None
