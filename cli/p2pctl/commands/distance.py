"""``p2pctl distance``: what the kernel decides for a provider and its clients."""

from __future__ import annotations

import sys
from typing import Tuple

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.report import pair_record
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import (
    Verdict,
    distance_many,
    publication,
    require_provider,
)
from p2pctl.commands.common import echo_json, json_option, root_option

EXIT_NOT_SUPPORTED = 1


def verdict_json(verdict: Verdict) -> dict:
    """The documented JSON shape of ``p2pctl distance --json``: each client is a report pair."""
    return {
        "provider": verdict.provider,
        "supported": verdict.supported,
        "distance": verdict.distance,
        "clients": [pair_record(pair) for pair in verdict.clients],
    }


def format_verdict(verdict: Verdict, provider_state: dict) -> str:
    lines = [
        "provider %s: %s, distance %d"
        % (verdict.provider, "supported" if verdict.supported else "NOT supported", verdict.distance)
    ]
    if provider_state["why"]:
        # The distance ignores publication, as the kernel's does; nvmet does not.
        lines.append("  note: %s; nvmet refuses it as p2pmem=<BDF> (ENODEV)" % provider_state["why"])
    for pair in verdict.clients:
        name = pair.client or "-"
        if pair.client_name:
            name = "%s (%s)" % (pair.client_name, name)
        lines.append("  %s: %s, distance %d" % (name, pair.map_type, pair.distance))
        lines.append("    why: %s" % pair.reason)
        if pair.path:
            lines.append("    path: %s" % " -> ".join(pair.path))
        if pair.fix:
            lines.append("    fix: %s" % pair.fix)
        if pair.kernel_params:
            lines.append("    kernel parameters: %s" % " ".join(pair.kernel_params))
    return "\n".join(lines)


@click.command(short_help="What the kernel decides for a provider and its clients.")
@click.argument("provider")
@click.argument("clients", nargs=-1, required=True)
@root_option
@json_option
def distance(provider: str, clients: Tuple[str, ...], root_spec: str, as_json: bool) -> None:
    """Say what the kernel decides for PROVIDER and each CLIENT, like pci_p2pdma_distance_many().

    PROVIDER and CLIENT are PCI addresses ([domain:]bus:dev.fn) or names: nvme0,
    nvme0n1, an RDMA device (mlx5_0) or a netdev. Each client gets the map type
    (bus_addr, thru_host_bridge, not_supported), distance, the devices whose ACS
    redirects, the reason and the fix. The total is -1 if any client is not supported.

    PROVIDER must have p2pmem: a root port, a VF or a drive without a CMB is refused,
    naming the providers the node has.

    Exit status: 0 if every client is supported, 1 if any is not, 2 on bad input.
    """
    node = read_node(open_root(root_spec))
    verdict = distance_many(node, require_provider(node, provider), list(clients))
    if as_json:
        echo_json(verdict_json(verdict))
    else:
        click.echo(format_verdict(verdict, publication(node, verdict.provider)))
    if not verdict.supported:
        sys.exit(EXIT_NOT_SUPPORTED)
