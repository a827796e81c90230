"""``p2pctl check``: the node's P2P checks with why, fix and evidence."""

from __future__ import annotations

import sys
from typing import Tuple

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import (
    FAIL,
    POLICIES,
    WARN,
    run_checks,
    worst_status,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from ansible_collections.p2pdma.storage.plugins.module_utils.views.text import format_checks
from p2pctl.commands.common import echo_json, json_option, root_option

EXIT_WARN = 3
EXIT_FAIL = 4


@click.command(short_help="Run the P2PDMA checks: PASS/WARN/FAIL with why and fix.")
@click.option(
    "--provider",
    "providers",
    multiple=True,
    metavar="DEVICE",
    help="A p2pmem provider to judge (BDF or nvmeX); repeat for several. Default: every device with p2pmem.",
)
@click.option(
    "--client",
    "clients",
    multiple=True,
    metavar="DEVICE",
    help="A P2P client (BDF, nvmeX, nvmeXnY, RDMA device or netdev); repeat for several.",
)
@click.option(
    "--policy",
    type=click.Choice(POLICIES),
    default="kernel",
    show_default=True,
    help="kernel: accept what the kernel accepts; switch: require bus_addr (a path that turns at a "
    "switch), as the original P2PDMA series did.",
)
@root_option
@json_option
def check(providers: Tuple[str, ...], clients: Tuple[str, ...], policy: str, root_spec: str, as_json: bool) -> None:
    """Run the node's P2PDMA checks: kernel, providers, locality, ACS/IOMMU, RDMA, namespaces.

    Prints a table of status, check id, why and fix (or, with --json, a list of
    {id, status, why, fix, evidence}). The checks are described in docs/checks.md.

    Exit status: 0 all PASS, 3 some WARN and no FAIL, 4 some FAIL, 2 on bad input.
    """
    results = run_checks(read_node(open_root(root_spec)), list(providers), list(clients), policy)
    if as_json:
        echo_json([result.to_dict() for result in results])
    else:
        click.echo(format_checks(results))
    worst = worst_status(results)
    if worst == FAIL:
        sys.exit(EXIT_FAIL)
    if worst == WARN:
        sys.exit(EXIT_WARN)
