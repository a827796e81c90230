"""``p2pctl datapath``: copy bytes through a provider's p2pmem, verify them, and measure them."""

from __future__ import annotations

import sys
from typing import Optional

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.copy import run_copy
from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.plan import parse_size, plan_copy
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from p2pctl.commands.common import echo_json, json_option, root_option

EXIT_NOT_P2P = 1


def _rate(value: Optional[float]) -> str:
    return "?" if value is None else "%.1f MB/s" % (value / 1e6)


def _ratio(value: Optional[float]) -> str:
    return "?" if value is None else "%.2f" % value


def format_result(result: dict) -> str:
    limit = result["link_limit"]
    lines = [
        "%d bytes, p2p_used %s, %.3f s: %s through p2pmem, %s through host memory"
        % (result["bytes"], "yes" if result["p2p_used"] else "NO", result["seconds"],
           _rate(result["throughput"]), _rate(result["host_memory_throughput"])),
        "link limit %s at %s; p2p/host %s, p2p/link %s"
        % (_rate(limit["bytes_per_second"]), limit["limiting_hop"] or "?",
           _ratio(result["ratio_to_host_memory"]), _ratio(result["ratio_to_link_limit"])),
        "sha256 source %s" % result["sha256"]["source"],
    ]
    if result["sha256"]["destination"]:
        lines.append("sha256 destination %s" % result["sha256"]["destination"])
    lines += ["  %s" % line for line in result["evidence"]]
    return "\n".join(lines)


@click.command(short_help="Copy bytes through a provider's p2pmem and verify them.")
@click.argument("source")
@click.argument("destination", required=False)
@click.option("--provider", required=True, metavar="BDF|nvmeX", help="The device whose p2pmem is the buffer.")
@click.option("--size", "size_text", required=True, metavar="N", help="Bytes to copy: 4096, 64M, 1G.")
@click.option("--offset", "offset_text", default="0", show_default=True, metavar="O",
              help="Byte offset of the range in both namespaces.")
@click.option("--force", is_flag=True, help="Overwrite a destination that is mounted, held or holds a filesystem.")
@click.option("--dry-run", is_flag=True, help="Run every refusal and say what would be written; no I/O.")
@root_option
@json_option
def datapath(
    source: str,
    destination: Optional[str],
    provider: str,
    size_text: str,
    offset_text: str,
    force: bool,
    dry_run: bool,
    root_spec: str,
    as_json: bool,
) -> None:
    """Copy SIZE bytes from SOURCE to DESTINATION through the p2pmem of PROVIDER, then prove it.

    SOURCE and DESTINATION are NVMe namespaces (nvme2n1 or /dev/nvme2n1). The copy
    reads into the provider's mmapped p2pmem and writes from it with O_DIRECT, checks
    the sha256 of both ranges, repeats the copy through host memory, and reports both
    throughputs against the narrowest link on the path. Without DESTINATION only the
    read half runs. THE COPY OVERWRITES DESTINATION.

    Exit status: 0 when the kernel used p2pmem and the bytes match, 1 when the copy
    ran without p2pmem, 2 when it was refused or failed (nothing is written on refusal).
    """
    root = open_root(root_spec)
    plan = plan_copy(read_node(root), source, destination, provider, parse_size(size_text),
                     parse_size(offset_text), force)
    if dry_run:
        if as_json:
            echo_json(plan.to_dict())
        else:
            click.echo("would %s" % plan.describe())
        return
    result = run_copy(plan, root)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_result(result))
    if not result["p2p_used"]:
        sys.exit(EXIT_NOT_P2P)
