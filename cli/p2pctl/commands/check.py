"""``p2pctl check``: the node's P2P checks with why, fix and evidence."""

from __future__ import annotations

import sys
from typing import Dict, Tuple

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import FAIL, POLICIES, WARN
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.report import judge_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from ansible_collections.p2pdma.storage.plugins.module_utils.views.text import format_report
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
@click.option(
    "--accept",
    "accepts",
    multiple=True,
    metavar="ID=REASON",
    callback=lambda _ctx, _param, value: _parse_accepts(value),
    help="Accept a known WARN (check id, for example rdma:rxe0) for the reason given; repeat for several. "
    "It stays in the report, marked accepted, and no longer counts for the exit status.",
)
@root_option
@json_option
def check(
    providers: Tuple[str, ...],
    clients: Tuple[str, ...],
    policy: str,
    accepts: Dict[str, str],
    root_spec: str,
    as_json: bool,
) -> None:
    """Run the node's P2PDMA checks: kernel, providers, locality, ACS/IOMMU, RDMA, namespaces.

    Prints a table of status, check id, why and fix, then the provider/client pairs judged
    as a matrix. Without --client every published provider is judged against every NVMe
    controller and RDMA device. --json prints the node report (format
    p2pdma.storage/report/v1). The checks are described in docs/checks.md.

    Exit status: 0 all PASS, 3 some WARN and no FAIL, 4 some FAIL, 2 on bad input.
    """
    _results, report = judge_node(read_node(open_root(root_spec)), list(providers), list(clients), policy, accepts)
    if as_json:
        echo_json(report)
    else:
        click.echo(format_report(report))
    worst = report["status"]
    if worst == FAIL:
        sys.exit(EXIT_FAIL)
    if worst == WARN:
        sys.exit(EXIT_WARN)


def _parse_accepts(values: Tuple[str, ...]) -> Dict[str, str]:
    accepts: Dict[str, str] = {}
    for value in values:
        check_id, sep, reason = value.partition("=")
        if not sep or not check_id.strip() or not reason.strip():
            raise click.BadParameter("%r is not ID=REASON, for example rdma:rxe0='control traffic only'" % value,
                                     param_hint="--accept")
        accepts[check_id.strip()] = reason.strip()
    return accepts
