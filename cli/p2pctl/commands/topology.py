"""``p2pctl topology``: the PCIe tree as P2PDMA sees it."""

from __future__ import annotations

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from ansible_collections.p2pdma.storage.plugins.module_utils.views.text import format_topology, topology_view
from p2pctl.commands.common import echo_json, json_option, root_option


@click.command(short_help="The PCI tree like lspci -tv, annotated for P2PDMA.")
@root_option
@json_option
def topology(root_spec: str, as_json: bool) -> None:
    """Show the PCI tree like 'lspci -tv', annotated for P2PDMA.

    Each line shows the function's vendor:device and class, its port type, the NVMe,
    RDMA and network devices on it, p2pmem size/free/published, ACS redirect, link
    speed and width (current/max), IOMMU group and driver. Each host bridge says
    whether the kernel's whitelist knows it.
    """
    view = topology_view(read_node(open_root(root_spec)))
    if as_json:
        echo_json(view)
    else:
        click.echo(format_topology(view))
