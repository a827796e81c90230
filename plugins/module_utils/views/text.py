# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Views of a node for people and for JSON: the annotated PCI tree and the check table.

The text tree is drawn from the same nested dicts that ``--json`` prints, so both
always carry the same facts.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import FAIL, PASS, WARN, human_bytes
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Node, PciFunction
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import bdf_sort_key
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.rules import cpu_supports_p2pdma, rules_for
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import MapType

# Base class and subclass (the upper 16 bits of the class code), as pci.ids names them.
_CLASS_NAMES = {
    0x0100: "SCSI storage controller",
    0x0101: "IDE interface",
    0x0104: "RAID bus controller",
    0x0106: "SATA controller",
    0x0107: "Serial Attached SCSI controller",
    0x0108: "Non-Volatile memory controller",
    0x0180: "Mass storage controller",
    0x0200: "Ethernet controller",
    0x0207: "Infiniband controller",
    0x0208: "Fabric controller",
    0x0280: "Network controller",
    0x0300: "VGA compatible controller",
    0x0302: "3D controller",
    0x0380: "Display controller",
    0x0403: "Audio device",
    0x0500: "RAM memory",
    0x0580: "Memory controller",
    0x0600: "Host bridge",
    0x0601: "ISA bridge",
    0x0604: "PCI bridge",
    0x0680: "Bridge",
    0x0700: "Serial controller",
    0x0806: "IOMMU",
    0x0880: "System peripheral",
    0x0b40: "Co-processor",
    0x0c03: "USB controller",
    0x0c05: "SMBus",
    0x1200: "Processing accelerators",
    0x1280: "Processing accelerators",
}

_PORT_TYPE_NAMES = {
    "root_port": "Root Port",
    "switch_upstream": "Switch Upstream Port",
    "switch_downstream": "Switch Downstream Port",
    "endpoint": "Endpoint",
    "legacy_endpoint": "Legacy Endpoint",
    "rc_endpoint": "Root Complex Integrated Endpoint",
    "rc_event_collector": "Root Complex Event Collector",
    "pcie_to_pci_bridge": "PCIe to PCI Bridge",
    "pci_to_pcie_bridge": "PCI to PCIe Bridge",
}


# Base classes, for subclasses the table above does not name.
_BASE_CLASS_NAMES = {
    0x00: "Unclassified device",
    0x01: "Mass storage controller",
    0x02: "Network controller",
    0x03: "Display controller",
    0x04: "Multimedia controller",
    0x05: "Memory controller",
    0x06: "Bridge",
    0x07: "Communication controller",
    0x08: "Generic system peripheral",
    0x0C: "Serial bus controller",
    0x12: "Processing accelerators",
    0xFF: "Unassigned class",
}


def class_name(class_code: Optional[int]) -> str:
    if class_code is None:
        return "unknown class"
    named = _CLASS_NAMES.get(class_code >> 8) or _BASE_CLASS_NAMES.get(class_code >> 16)
    return named or "Class %04x" % (class_code >> 8)


class _Names:
    """Kernel device names (NVMe, namespaces, RDMA, netdevs) by the PCI function they sit on."""

    def __init__(self, node: Node) -> None:
        self.nvme: Dict[str, List[str]] = {}
        self.namespaces: Dict[str, List[str]] = {}
        self.rdma: Dict[str, List[str]] = {}
        self.netdevs: Dict[str, List[str]] = {}
        for ctrl in node.nvme.values():
            if ctrl.bdf:
                self.nvme.setdefault(ctrl.bdf, []).append(ctrl.name)
                self.namespaces.setdefault(ctrl.bdf, []).extend(ns.block_device for ns in ctrl.namespaces)
        for rdma in node.rdma.values():
            if rdma.bdf:
                self.rdma.setdefault(rdma.bdf, []).append(rdma.name)
        for netdev in node.netdevs.values():
            if netdev.bdf:
                self.netdevs.setdefault(netdev.bdf, []).append(netdev.name)


def _function_view(node: Node, fn: PciFunction, names: _Names) -> dict:
    acs: Dict[str, object] = {"known": fn.acs is not None}
    if fn.acs is not None:
        acs["present"] = fn.acs.present
        acs["redirect"] = fn.acs.redirect_flags
    return {
        "bdf": fn.bdf,
        "id": fn.ident,
        "class": None if fn.class_code is None else "%06x" % fn.class_code,
        "class_name": class_name(fn.class_code),
        "port_type": fn.port_type,
        "driver": fn.driver,
        "physfn": fn.physfn,
        "link": dict(fn.link.to_dict(), text=fn.link.describe()),
        "acs": acs,
        "iommu_group": fn.iommu_group,
        "numa_node": fn.numa_node,
        "p2pmem": None if fn.p2pmem is None else fn.p2pmem.to_dict(),
        "nvme": sorted(names.nvme.get(fn.bdf, [])),
        "namespaces": sorted(set(names.namespaces.get(fn.bdf, []))),
        "rdma": sorted(names.rdma.get(fn.bdf, [])),
        "netdevs": sorted(names.netdevs.get(fn.bdf, [])),
        "children": [_function_view(node, node.functions[child], names) for child in _sorted(fn.children)],
    }


def _sorted(bdfs: Sequence[str]) -> List[str]:
    return sorted(bdfs, key=bdf_sort_key)


def topology_view(node: Node) -> dict:
    """The node as a nested tree: host bridges, then every function below its bridge."""
    rules = rules_for(node)
    names = _Names(node)
    on_root_bus: Dict[str, List[str]] = {}
    for fn in node.functions.values():
        # A function whose parent bridge is missing from sysfs still has to be shown somewhere.
        if fn.parent_bdf is None or fn.parent_bdf not in node.functions:
            on_root_bus.setdefault(fn.host_bridge, []).append(fn.bdf)
    host_bridges = []
    for host in sorted(on_root_bus):
        device = node.host_bridge_device(host)
        entry = None if device is None or device.vendor is None or device.device is None else rules.lookup(
            device.vendor, device.device
        )
        host_bridges.append(
            {
                "name": host,
                "whitelist_device": None if device is None else device.bdf,
                "whitelisted": entry is not None,
                "whitelist_entry": None if entry is None else entry.to_dict(),
                "children": [_function_view(node, node.functions[b], names) for b in _sorted(on_root_bus[host])],
            }
        )
    kernel = node.kernel
    return {
        "kernel": {
            "release": kernel.release,
            "arch": kernel.arch,
            "cpu_vendor": kernel.cpu_vendor,
            "cpu_family": kernel.cpu_family,
            "rules": rules.version_text,
            "whitelist_entries": len(rules.whitelist),
            "cpu_allows_host_bridge_p2p": cpu_supports_p2pdma(kernel),
            "iommu_in_use": kernel.iommu_in_use,
        },
        "host_bridges": host_bridges,
        "problems": [problem.to_dict() for problem in node.problems],
    }


def _describe_function(view: dict) -> str:
    words = [view["bdf"], "[%s]" % view["id"], view["class_name"]]
    if view["port_type"] in _PORT_TYPE_NAMES and view["port_type"] not in ("endpoint", "legacy_endpoint"):
        words.append("(%s)" % _PORT_TYPE_NAMES[view["port_type"]])
    if view["physfn"]:
        words.append("VF of %s" % view["physfn"])
    for key in ("nvme", "namespaces", "rdma", "netdevs"):
        if view[key]:
            words.append(",".join(view[key]))
    p2pmem = view["p2pmem"]
    if p2pmem is not None:
        words.append(
            "p2pmem %s free %s %s"
            % (
                human_bytes(p2pmem["size"]),
                human_bytes(p2pmem["available"]),
                "published" if p2pmem["published"] else "NOT-published",
            )
        )
    acs = view["acs"]
    if not acs["known"]:
        words.append("ACS:unknown")
    elif acs["redirect"]:
        words.append("ACS-redirect:%s" % "+".join(acs["redirect"]))
    link = view["link"]
    if link["current_speed"] or link["max_speed"]:
        words.append("link %s" % link["text"])
    if view["iommu_group"] is not None:
        words.append("iommu_group %d" % view["iommu_group"])
    if view["driver"]:
        words.append("driver %s" % view["driver"])
    return " ".join(words)


def _draw(views: List[dict], prefix: str, lines: List[str]) -> None:
    for index, view in enumerate(views):
        last = index == len(views) - 1
        lines.append(prefix + ("`-" if last else "+-") + _describe_function(view))
        _draw(view["children"], prefix + ("  " if last else "| "), lines)


def format_topology(view: dict) -> str:
    """The tree as text, like ``lspci -tv`` with the P2PDMA facts on each line."""
    kernel = view["kernel"]
    lines = [
        "kernel %s (rules %s, %d whitelist entries), %s, CPU %s family %s: host-bridge paths %s, IOMMU %s"
        % (
            kernel["release"] or "unknown",
            kernel["rules"],
            kernel["whitelist_entries"],
            kernel["arch"] or "unknown arch",
            kernel["cpu_vendor"] or "unknown",
            kernel["cpu_family"] if kernel["cpu_family"] is not None else "?",
            "allowed by the CPU rule" if kernel["cpu_allows_host_bridge_p2p"] else "need a whitelisted host bridge",
            "in use" if kernel["iommu_in_use"] else "not in use",
        )
    ]
    for host in view["host_bridges"]:
        if host["whitelist_device"] is None:
            status = "no whitelist candidate device"
        else:
            status = "%s %s" % (
                host["whitelist_device"],
                "whitelisted" if host["whitelisted"] else "not whitelisted",
            )
        lines.append("%s (host bridge: %s)" % (host["name"], status))
        _draw(host["children"], "", lines)
    for problem in view["problems"]:
        lines.append("warning: %s: %s; fix: %s" % (problem["path"], problem["message"], problem["fix"]))
    return "\n".join(lines)


def format_report(report: Mapping[str, Any]) -> str:
    """A node report as text: the checks (fix below each non-PASS), the pairs judged, the counts."""
    checks = report["checks"]
    id_width = max([len("ID")] + [len(c["id"]) for c in checks])
    lines = ["%-6s %-*s %s" % ("STATUS", id_width, "ID", "WHY / FIX")]
    indent = " " * (7 + id_width + 1)
    for check in checks:
        lines.append("%-6s %-*s %s" % (check["status"], id_width, check["id"], check["why"]))
        if check["fix"]:
            lines.append("%sfix: %s" % (indent, check["fix"]))
        if check["accepted"]:
            lines.append("%saccepted: %s" % (indent, check["accept_reason"]))
    for check_id, reason in sorted(report["accept_unmatched"].items()):
        lines.append("note: --accept %s (%s) matched no WARN" % (check_id, reason))
    if report["pairs"]:
        lines.append("")
        lines.extend(format_matrix(report["pairs"]))
        lines.append("")
    counts = report["summary"]
    line = "%d PASS, %d WARN, %d FAIL" % (counts[PASS], counts[WARN], counts[FAIL])
    lines.append(line + (", %d WARN accepted" % counts["accepted"] if counts["accepted"] else ""))
    return "\n".join(lines)


_CELL = {MapType.BUS_ADDR: "bus_addr", MapType.THRU_HOST_BRIDGE: "host_bridge"}


def pair_cell(pair: Mapping[str, Any]) -> str:
    """A pair's verdict in a few words: the kernel's map type and distance, or "refused"."""
    kind = _CELL.get(pair["map_type"])
    return "%s %d" % (kind, pair["distance"]) if kind else "refused"


def format_matrix(pairs: Sequence[Mapping[str, Any]]) -> List[str]:
    """Providers down, clients across; each cell the kernel's map type and distance, or "refused"."""
    providers = list(dict.fromkeys(pair["provider"] for pair in pairs))
    clients = list(dict.fromkeys(pair["client_name"] or pair["client"] or "?" for pair in pairs))
    cells = {(pair["provider"], pair["client_name"] or pair["client"] or "?"): pair_cell(pair) for pair in pairs}
    first = max(len("PROVIDER \\ CLIENT"), *(len(p) for p in providers))
    widths = [max(len(c), *(len(cells.get((p, c), "-")) for p in providers)) for c in clients]
    rows = [["PROVIDER \\ CLIENT"] + clients] + [[p] + [cells.get((p, c), "-") for c in clients] for p in providers]
    return [
        "  ".join([row[0].ljust(first)] + [cell.ljust(width) for cell, width in zip(row[1:], widths)]).rstrip()
        for row in rows
    ]
