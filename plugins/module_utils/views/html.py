# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report as one self-contained HTML page: inline CSS and inline SVG, no script, nothing fetched.

A row per node with its status; below, per node, the checks that count against it with why and
fix, and a picture of the PCI tree its judged pairs involve (host bridge, root ports, switches,
providers, clients) beside the matrix of each pair's verdict. Drawn from the fleet document
alone (format fleet/v1), so a saved ``--json`` renders the same page.
"""

from __future__ import annotations

from html import escape
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fleet import NODE_STATUSES, failing_checks
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import MapType
from ansible_collections.p2pdma.storage.plugins.module_utils.views.text import pair_cell

# One colour per node status and per pair verdict; the page's legend and the tests read the same table.
STATUS_COLOURS = {
    "PASS": "#2e7d32",
    "WARN": "#ef8f00",
    "FAIL": "#c62828",
    "ERROR": "#6a1b9a",
    "UNREACHABLE": "#455a64",
}
VERDICT_COLOURS = {
    MapType.BUS_ADDR: "#a5d6a7",
    MapType.THRU_HOST_BRIDGE: "#ffe082",
    MapType.NOT_SUPPORTED: "#ef9a9a",
}
_VERDICT_WORDS = {
    MapType.BUS_ADDR: "bus_addr: the transfer turns below the host bridge",
    MapType.THRU_HOST_BRIDGE: "host_bridge: through a whitelisted host bridge",
    MapType.NOT_SUPPORTED: "refused by the kernel",
}
_ROLE_FILLS = {"host_bridge": "#fff3e0", "bridge": "#eceff1", "provider": "#bbdefb", "client": "#dcedc8"}
_PORT_LABELS = {
    "root_port": "Root Port",
    "switch_upstream": "Switch upstream",
    "switch_downstream": "Switch downstream",
    "pcie_to_pci_bridge": "PCIe-PCI bridge",
}

_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _MARGIN = 132, 40, 10, 28, 8
_CELL_W, _CELL_H, _LABEL_W = 104, 26, 120

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #212121; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .4em; border-bottom: 1px solid #cfd8dc; }
table { border-collapse: collapse; margin: .4em 0; }
th, td { border: 1px solid #cfd8dc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eceff1; }
td.status { color: #fff; font-weight: bold; text-align: center; min-width: 7em; }
.fix { color: #37474f; }
.fix::before { content: "fix: "; font-weight: bold; }
.message { font-family: monospace; white-space: pre-wrap; }
figure { margin: .5em 0; overflow-x: auto; }
svg text { font: 11px system-ui, sans-serif; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; border: 1px solid #90a4ae; }
"""


def render_fleet_html(fleet: Mapping[str, Any], title: str = "P2PDMA fleet report") -> str:
    """The whole page for a fleet document."""
    nodes = fleet["nodes"]
    counts = ", ".join("%d %s" % (fleet["summary"][s], s) for s in NODE_STATUSES if fleet["summary"][s])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>%s</title><style>%s</style></head><body>'
        % (escape(title), _CSS),
        "<h1>%s</h1>" % escape(title),
        '<p>Fleet status <b>%s</b>: %d node(s), %s. Format %s.</p>'
        % (escape(fleet["status"]), len(nodes), escape(counts or "no nodes"), escape(fleet["format"])),
        _node_table(nodes),
        _legend(),
    ]
    parts.extend(_node_section(entry) for entry in nodes)
    parts.append("</body></html>")
    return "\n".join(parts)


def _status_cell(status: str) -> str:
    return '<td class="status" style="background:%s">%s</td>' % (STATUS_COLOURS[status], escape(status))


def _node_table(nodes: Sequence[Mapping[str, Any]]) -> str:
    columns = ("Node", "Status", "Kernel", "PASS / WARN / FAIL", "First problem")
    header = "".join("<th>%s</th>" % name for name in columns)
    rows = ["<table><tr>%s</tr>" % header]
    for entry in nodes:
        report = entry["report"]
        if report is None:
            kernel, counts, first = "-", "-", entry["message"] or ""
        else:
            summary = report["summary"]
            kernel = report["kernel"]["release"] or "unknown"
            counts = "%d / %d / %d" % (summary["PASS"], summary["WARN"], summary["FAIL"])
            problems = failing_checks(report)
            first = "%s: %s" % (problems[0]["id"], problems[0]["why"]) if problems else ""
        rows.append(
            '<tr class="node" data-host="%s"><td><a href="#node-%s">%s</a></td>%s<td>%s</td><td>%s</td><td>%s</td></tr>'
            % (
                escape(entry["host"]),
                escape(entry["host"]),
                escape(entry["host"]),
                _status_cell(entry["status"]),
                escape(kernel),
                counts,
                escape(first),
            )
        )
    rows.append("</table>")
    return "\n".join(rows)


def _legend() -> str:
    verdicts = " ".join('<span style="background:%s">%s</span>' % (VERDICT_COLOURS[kind], escape(words))
                        for kind, words in _VERDICT_WORDS.items())
    devices = " ".join('<span style="background:%s">%s</span>' % (fill, role.replace("_", " "))
                       for role, fill in _ROLE_FILLS.items())
    return '<p class="legend">Pairs: %s<br>Devices: %s</p>' % (verdicts, devices)


def _node_section(entry: Mapping[str, Any]) -> str:
    host = escape(entry["host"])
    parts = ['<section id="node-%s"><h2>%s: %s</h2>' % (host, host, escape(entry["status"]))]
    report = entry["report"]
    if report is None:
        parts.append('<p class="message">%s</p></section>' % escape(entry["message"] or "no message"))
        return "\n".join(parts)
    problems = failing_checks(report)
    if problems:
        parts.append('<table class="checks"><tr><th>Status</th><th>Check</th><th>Why / fix</th></tr>')
        for check in problems:
            fix = '<div class="fix">%s</div>' % escape(check["fix"]) if check["fix"] else ""
            parts.append(
                "<tr>%s<td>%s</td><td>%s%s</td></tr>"
                % (_status_cell(check["status"]), escape(check["id"]), escape(check["why"]), fix)
            )
        parts.append("</table>")
    else:
        parts.append("<p>Every check passed%s.</p>" % (" or was accepted" if report["summary"]["accepted"] else ""))
    if report.get("tree"):
        parts.append('<figure>%s %s</figure>' % (topology_svg(report["tree"]), matrix_svg(report["pairs"])))
    else:
        parts.append("<p>No provider/client pair judged: no published p2pmem, or no client.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def topology_svg(tree: Sequence[Mapping[str, Any]]) -> str:
    """The PCI tree of a report's ``tree``: host bridges on top, each function below its parent bridge."""
    children: Dict[str, List[str]] = {}
    boxes: Dict[str, Tuple[str, str, str]] = {}  # id -> (first line, second line, role)
    hosts: List[str] = []
    for fn in tree:
        parent = fn["parent"] or fn["host_bridge"]
        if fn["parent"] is None and fn["host_bridge"] not in boxes:
            hosts.append(fn["host_bridge"])
            boxes[fn["host_bridge"]] = ("Host bridge", fn["host_bridge"], "host_bridge")
        children.setdefault(parent, []).append(fn["bdf"])
        first = fn["name"] or _PORT_LABELS.get(fn["port_type"] or "", fn["port_type"] or "device")
        if fn["role"] != "bridge":
            first = "%s (%s)" % (first, fn["role"])
        boxes[fn["bdf"]] = (first, _short_bdf(fn["bdf"]), fn["role"])
    columns: Dict[str, float] = {}
    depths: Dict[str, int] = {}

    def place(box: str, depth: int, next_column: int) -> int:
        depths[box] = depth
        kids = children.get(box, [])
        if not kids:
            columns[box] = next_column
            return next_column + 1
        for kid in kids:
            next_column = place(kid, depth + 1, next_column)
        columns[box] = (columns[kids[0]] + columns[kids[-1]]) / 2
        return next_column

    width_in_columns = 0
    for host in hosts:
        width_in_columns = place(host, 0, width_in_columns)
    width = _MARGIN * 2 + width_in_columns * (_BOX_W + _GAP_X)
    height = _MARGIN * 2 + (max(depths.values()) + 1) * (_BOX_H + _GAP_Y)

    def corner(box: str) -> Tuple[float, float]:
        return _MARGIN + columns[box] * (_BOX_W + _GAP_X), _MARGIN + depths[box] * (_BOX_H + _GAP_Y)

    shapes = []
    for parent, kids in children.items():
        px, py = corner(parent)
        for kid in kids:
            kx, ky = corner(kid)
            shapes.append('<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#78909c"/>'
                          % (px + _BOX_W / 2, py + _BOX_H, kx + _BOX_W / 2, ky))
    for box, (first, second, role) in boxes.items():
        x, y = corner(box)
        shapes.append(
            '<g class="device %s"><rect x="%.0f" y="%.0f" width="%d" height="%d" rx="4" fill="%s" stroke="#546e7a"/>'
            '<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>'
            '<text x="%.0f" y="%.0f" text-anchor="middle">%s</text></g>'
            % (role, x, y, _BOX_W, _BOX_H, _ROLE_FILLS[role], x + _BOX_W / 2, y + 16, escape(first[:22]),
               x + _BOX_W / 2, y + 31, escape(second))
        )
    return _svg(width, height, "PCI tree of the judged pairs", shapes)


def matrix_svg(pairs: Sequence[Mapping[str, Any]]) -> str:
    """Providers down, clients across; each cell the kernel's verdict for that pair, coloured by map type."""
    providers = list(dict.fromkeys(pair["provider"] for pair in pairs))
    clients = list(dict.fromkeys(_client(pair) for pair in pairs))
    width = _LABEL_W + len(clients) * _CELL_W + _MARGIN
    height = (len(providers) + 1) * _CELL_H + _MARGIN
    shapes = ['<text x="4" y="17">provider \\ client</text>']
    for column, client in enumerate(clients):
        shapes.append('<text x="%d" y="17" text-anchor="middle">%s</text>'
                      % (_LABEL_W + column * _CELL_W + _CELL_W // 2, escape(client[:16])))
    for row, provider in enumerate(providers):
        shapes.append('<text x="4" y="%d">%s</text>' % ((row + 1) * _CELL_H + 17, escape(_short_bdf(provider))))
    for pair in pairs:
        x = _LABEL_W + clients.index(_client(pair)) * _CELL_W
        y = (providers.index(pair["provider"]) + 1) * _CELL_H
        shapes.append(
            '<g class="pair %s"><rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="#fff"/>'
            '<text x="%d" y="%d" text-anchor="middle">%s</text></g>'
            % (pair["map_type"], x, y, _CELL_W, _CELL_H, VERDICT_COLOURS[pair["map_type"]], x + _CELL_W // 2,
               y + 17, escape(pair_cell(pair)))
        )
    return _svg(width, height, "verdict of each provider/client pair", shapes)


def _svg(width: float, height: float, label: str, shapes: Sequence[str]) -> str:
    return '<svg width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">%s</svg>' % (
        width, height, width, height, escape(label), "".join(shapes))


def _client(pair: Mapping[str, Any]) -> str:
    return pair["client_name"] or pair["client"] or "?"


def _short_bdf(bdf: str) -> str:
    # Domain 0000 is the only one on most nodes; the rest of the address is what lspci shows.
    return bdf[5:] if bdf.startswith("0000:") else bdf


__all__ = ["STATUS_COLOURS", "VERDICT_COLOURS", "matrix_svg", "render_fleet_html", "topology_svg"]
