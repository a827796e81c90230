"""Synthetic twins of the lab's QEMU topologies, built with the sysfs tree builder.

``build_topology(tree, topology)`` lays out the same ports, drives and NIC that
``Topology.qemu_args()`` gives QEMU, so that a guest's captured sysfs tree and the
builder's tree can be compared function by function (tests/unit/test_sysfs_tree_guests.py).
``projection(node)`` is what that comparison looks at: what the engine decides from.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Cmb, Node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import parse_bdf
from p2pctl.lab.topologies import AMD_ZEN_CPU, Topology
from tests.support.sysfs_tree import (
    ACS_CR,
    ACS_EC,
    ACS_RR,
    CLASS_ETHERNET,
    KERNEL_IOMMU_ACS,
    QEMU_SWITCH_DOWN,
    QEMU_SWITCH_UP,
    Function,
    HostBridge,
    SysfsTree,
)

E1000E = (0x8086, 0x10D3)


def qemu_cmb(size_mb: int) -> Cmb:
    """What QEMU's nvme model puts in CMBSZ/CMBLOC for cmb_size_mb: SZU 1 MiB, SQS LISTS RDS WDS, BAR 2."""
    return Cmb(cmbsz=(size_mb << 12) | (2 << 8) | 0x1D, cmbloc=0x2)


def cpu_of(topology: Topology) -> tuple:
    return ("AuthenticAMD", 23) if topology.cpu == AMD_ZEN_CPU else ("GenuineIntel", 6)


def build_topology(
    tree: SysfsTree,
    topology: Topology,
    expanders: Optional[Mapping[str, int]] = None,
    cmdline: Sequence[str] = (),
) -> Dict[str, Function]:
    """Add ``topology``'s ports, drives and NIC to ``tree``; returns each QEMU id's function.

    ``expanders`` maps a pxb-pcie id to its bus number (a host bridge of its own).
    With ``topology.iommu`` the root ports carry what the guest kernel sets for an IOMMU,
    less what a ``pci=disable_acs_redir=`` in ``cmdline`` (6.1 semantics) clears again.
    """
    buses: Dict[str, HostBridge] = {"pcie.0": tree.host_bridge(0, 0)}
    for bus_id, bus_nr in (expanders or {}).items():
        buses[bus_id] = tree.host_bridge(0, bus_nr)
    placed: Dict[str, Function] = {}
    root_acs = KERNEL_IOMMU_ACS if topology.iommu else 0
    for kind, port_id, parent, slot, _chassis in topology.ports:
        if kind == "root":
            host = buses[parent]
            placed[port_id] = tree.root_port("%04x:%02x:%02x.0" % (host.domain, host.bus, slot), acs_ctrl=root_acs)
        elif kind == "switch-up":
            placed[port_id] = tree.bridge(placed[parent], "switch_upstream", QEMU_SWITCH_UP, slot=slot)
        else:
            placed[port_id] = tree.bridge(placed[parent], "switch_downstream", QEMU_SWITCH_DOWN, slot=slot)
    for drive in topology.drives:
        cmb = qemu_cmb(drive.cmb_mb) if drive.cmb_mb else None
        size = drive.cmb_mb << 20
        nvme = tree.nvme(
            placed[drive.bus],
            cmb=cmb,
            p2pmem=(size, size, True) if cmb is not None else None,
            slot=drive.slot,
            function=drive.function,
            multifunction=drive.multifunction or drive.function > 0,
        )
        placed[drive.id] = nvme.function
    if topology.nic_bus:
        placed["nic"] = tree.endpoint(placed[topology.nic_bus], ids=E1000E, class_code=CLASS_ETHERNET, driver="e1000e")
    cleared = set(_disable_acs_redir(list(topology.cmdline) + list(cmdline)))
    for fn in placed.values():
        if fn.bdf in cleared and fn.acs_cap is not None:
            fn.acs_ctrl &= ~(ACS_RR | ACS_CR | ACS_EC)
    return placed


def _disable_acs_redir(words: Sequence[str]) -> List[str]:
    """The addresses named by pci=disable_acs_redir= (the plain address form only)."""
    found: List[str] = []
    for word in words:
        if not word.startswith("pci="):
            continue
        for option in word[4:].split(","):
            key, _, value = option.partition("=")
            if key == "disable_acs_redir":
                found = [parse_bdf(entry) for entry in value.split(";") if entry]
    return found


def projection(node: Node, roots: Optional[set] = None) -> Dict[str, dict]:
    """Per function below ``roots`` (root-bus BDFs; default: every root port): what verdicts use."""
    if roots is None:
        roots = {b for b, fn in node.functions.items() if fn.port_type == "root_port" and fn.upstream_bdf is None}
    view: Dict[str, dict] = {}
    for bdf, fn in node.functions.items():
        chain = node.chains[bdf]
        if chain[-1] not in roots:
            continue
        entry = {
            "id": fn.ident,
            "port_type": fn.port_type,
            "bridge": fn.is_bridge,
            "upstream": fn.upstream_bdf,
            "host_bridge": fn.host_bridge,
            "acs_present": None if fn.acs is None else fn.acs.present,
            "acs_redirects": None if fn.acs is None else fn.acs.redirects,
            "p2pmem": None if fn.p2pmem is None else (fn.p2pmem.size, fn.p2pmem.published),
        }
        for ctrl in node.nvme_for_bdf(bdf):
            cmb = ctrl.cmb
            entry["cmb"] = None if cmb is None else (cmb.sz, cmb.szu, cmb.bir, cmb.wds, cmb.rds, cmb.sqs)
        view[bdf] = entry
    return view


__all__ = ["E1000E", "build_topology", "cpu_of", "projection", "qemu_cmb"]
