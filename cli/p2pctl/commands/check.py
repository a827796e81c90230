"""``p2pctl check``: the node's P2P checks with why, fix and evidence."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import click
from rich.console import Console

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import FAIL, PASS, POLICIES, WARN
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fleet import (
    ERROR,
    NODE_STATUSES,
    UNREACHABLE,
    fleet_document,
    judged_entry,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.report import judge_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from ansible_collections.p2pdma.storage.plugins.module_utils.views.html import render_fleet_html
from ansible_collections.p2pdma.storage.plugins.module_utils.views.text import format_report
from p2pctl.commands.common import echo_json, json_option, root_option

EXIT_WARN = 3
EXIT_FAIL = 4
EXIT_UNREACHABLE = 5
# A node's status, or a fleet's worst node's, as the exit status.
EXIT_STATUS = {PASS: 0, WARN: EXIT_WARN, FAIL: EXIT_FAIL, ERROR: EXIT_UNREACHABLE, UNREACHABLE: EXIT_UNREACHABLE}


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
@click.option(
    "--inventory",
    "-i",
    type=click.Path(exists=True),
    help="Judge every node of this Ansible inventory (the check playbook through ansible-runner) instead of "
    "this one. Host vars p2p_check_* (roles/p2p_check) apply per node; --provider, --client, --policy and "
    "--accept, when given, replace them on every node.",
)
@click.option("--limit", "-l", metavar="PATTERN", help="With --inventory: only the hosts matching this pattern.")
@click.option(
    "--forks",
    "-f",
    type=click.IntRange(min=1),
    help="With --inventory: how many nodes are judged at once. Default: Ansible's forks setting.",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the report to this file, one self-contained HTML page with the PCI tree and the pair "
    "matrix drawn (with --inventory: the fleet report, a row and a section per node).",
)
@json_option
@click.pass_context
def check(
    ctx: click.Context,
    providers: Tuple[str, ...],
    clients: Tuple[str, ...],
    policy: str,
    accepts: Dict[str, str],
    root_spec: str,
    inventory: Optional[str],
    limit: Optional[str],
    forks: Optional[int],
    html_file: Optional[str],
    as_json: bool,
) -> None:
    """Run the node's P2PDMA checks: kernel, providers, locality, ACS/IOMMU, RDMA, namespaces.

    Prints a table of status, check id, why and fix, then the provider/client pairs judged
    as a matrix. Without --client every published provider is judged against every NVMe
    controller and RDMA device. --json prints the node report (format
    p2pdma.storage/report/v1). The checks are described in docs/checks.md.

    With --inventory every node of the inventory is judged (the fleet report, docs/fleet.md):
    a table with a row per node, then each node's failing checks. A node that does not answer
    is UNREACHABLE, one whose check could not run is ERROR; the others are judged all the same.
    --json prints the fleet report (format p2pdma.storage/fleet/v1, a node report per node).
    --html writes either report as a page to open in a browser or attach to a ticket.

    Exit status: 0 all PASS, 3 some WARN and no FAIL, 4 some FAIL, 2 on bad input; with
    --inventory the worst node counts, and 5 when some node was UNREACHABLE or ERROR.
    """
    # Before anything is judged, not after: the page is written last.
    html_dir = Path(html_file or ".").resolve().parent
    if html_file and not (html_dir.is_dir() and os.access(html_dir, os.W_OK)):
        raise click.BadParameter("cannot write %s: %s is not a writable directory" % (html_file, html_dir),
                                 param_hint="--html")
    if inventory is None:
        for name, value in (("--limit", limit), ("--forks", forks)):
            if value is not None:
                raise click.UsageError("%s needs --inventory (it judges a fleet)" % name)
        _results, report = judge_node(read_node(open_root(root_spec)), list(providers), list(clients), policy, accepts)
        if as_json:
            echo_json(report)
        else:
            click.echo(format_report(report))
        if html_file:
            # A snapshot may not know its hostname: then the page is named after what was judged.
            node_name = report["host"] or report["root"]
            page = render_fleet_html(fleet_document([judged_entry(node_name, report)]),
                                     title="P2PDMA report of %s" % node_name)
            Path(html_file).write_text(page, encoding="utf-8")
        sys.exit(EXIT_STATUS[report["status"]])
    if ctx.get_parameter_source("root_spec") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--root and --inventory exclude each other: set p2p_check_root per host instead")
    fleet = _check_fleet(inventory, limit, forks, _fleet_vars(ctx, providers, clients, policy, accepts), as_json)
    if html_file:
        Path(html_file).write_text(render_fleet_html(fleet), encoding="utf-8")
    sys.exit(EXIT_STATUS[fleet["status"]])


def _fleet_vars(
    ctx: click.Context, providers: Tuple[str, ...], clients: Tuple[str, ...], policy: str, accepts: Dict[str, str]
) -> Dict[str, Any]:
    """The role variables the options given on the command line set for every node."""
    given = {
        "p2p_check_providers": list(providers),
        "p2p_check_clients": list(clients),
        "p2p_check_accept": accepts,
    }
    extravars = {name: value for name, value in given.items() if value}
    if ctx.get_parameter_source("policy") is not click.core.ParameterSource.DEFAULT:
        extravars["p2p_check_policy"] = policy
    return extravars


def _check_fleet(
    inventory: str, limit: Optional[str], forks: Optional[int], extravars: Dict[str, Any], as_json: bool
) -> Dict[str, Any]:
    from p2pctl.fleet import check_fleet, fleet_run, print_fleet  # only the fleet pays for ansible-runner

    console = Console(stderr=True, highlight=False)
    judged = {status: 0 for status in NODE_STATUSES}
    with console.status("judging the nodes of %s" % inventory) as status:

        def progress(entry: Dict[str, Any]) -> None:
            judged[entry["status"]] += 1
            status.update("judging the nodes of %s: %s" % (
                inventory, ", ".join("%d %s" % (n, s) for s, n in judged.items() if n)))

        fleet = check_fleet(fleet_run(str(Path(inventory).resolve()), limit, forks, extravars), progress)
    if not fleet["nodes"]:
        # Ansible runs a play on no hosts happily, also when it could not parse the inventory.
        raise P2PError(
            "no host of inventory %s%s was judged" % (inventory, " matches --limit %s" % limit if limit else ""),
            fix="see what Ansible reads from it: ansible-inventory -i %s --graph" % inventory,
        )
    if as_json:
        echo_json(fleet)
    else:
        print_fleet(fleet)
    return fleet


def _parse_accepts(values: Tuple[str, ...]) -> Dict[str, str]:
    accepts: Dict[str, str] = {}
    for value in values:
        check_id, sep, reason = value.partition("=")
        if not sep or not check_id.strip() or not reason.strip():
            raise click.BadParameter("%r is not ID=REASON, for example rdma:rxe0='control traffic only'" % value,
                                     param_hint="--accept")
        accepts[check_id.strip()] = reason.strip()
    return accepts
