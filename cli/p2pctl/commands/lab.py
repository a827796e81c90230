"""``p2pctl lab``: local QEMU storage nodes to provision and test against."""

from __future__ import annotations

import json
import os
from typing import List, Optional, Tuple

import click

from p2pctl.lab.dmatrace import GUEST_RESOURCES_COMMAND, TRACE_FILE, landings, read_trace
from p2pctl.lab.fleet import Lab
from p2pctl.lab.node import BOOT_MODES, DEFAULT_NODE, DEFAULT_TOPOLOGY, SSH_TIMEOUT
from p2pctl.lab.topologies import PRESETS


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def lab() -> None:
    """Lab nodes: Debian 13 VMs in QEMU with emulated PCIe P2P topologies."""


@lab.command()
@click.option(
    "--topology",
    default=None,
    metavar="NAME",
    help="PCIe topology preset (%s); default %s, or the node's own if it exists."
    % (", ".join(sorted(PRESETS)), DEFAULT_TOPOLOGY),
)
@click.option("--name", default=DEFAULT_NODE, show_default=True, help="Node name (several nodes can run at once).")
@click.option("--ssh-port", type=int, default=None, help="Local port forwarded to the node's SSH; default: a free one.")
@click.option("--timeout", type=float, default=SSH_TIMEOUT, show_default=True, help="Seconds to wait for SSH.")
@click.option(
    "--boot",
    type=click.Choice(BOOT_MODES),
    default=None,
    help="For a new node: grub (Debian's kernel through GRUB and systemd; the default) or lab-kernel "
    "(the lab's P2PDMA kernel loaded by QEMU, a minimal init and sshd: seconds).",
)
@click.option(
    "--trace-dma",
    is_flag=True,
    help="Record QEMU's pci_nvme_map_addr events (every address the NVMe drives DMA to) for this run of "
    "the node; read them back with p2pctl lab dma.",
)
@click.option(
    "--kernel-arg",
    "kernel_args",
    multiple=True,
    metavar="ARG",
    help="Append ARG to the lab kernel's command line for this run (boot lab-kernel; repeat for several), "
    "for example nvme.use_cmb_sqes=0.",
)
def up(
    topology: Optional[str], name: str, ssh_port: Optional[int], timeout: float, boot: Optional[str],
    trace_dma: bool, kernel_args: Tuple[str, ...],
) -> None:
    """Start a lab node (building the cached image first if needed) and print the inventory path."""
    the_lab = Lab()
    the_lab.up(
        name, topology=topology, ssh_port=ssh_port, ssh_timeout=timeout, log=_progress, boot=boot,
        trace_dma=trace_dma, kernel_args=kernel_args,
    )
    click.echo(str(the_lab.inventory_path))


@lab.command()
def status() -> None:
    """List the lab nodes and whether they run."""
    the_lab = Lab()
    rows = the_lab.status()
    if not rows:
        click.echo("no lab nodes; start one with p2pctl lab up")
        return
    width = max(len(row.name) for row in rows) + 2
    line = "%%-%ds %%-11s %%-8s %%-6s %%s" % width
    click.echo(line % ("NODE", "TOPOLOGY", "STATE", "PORT", "PID"))
    for row in rows:
        state = "running" if row.running else "stopped"
        click.echo(line % (row.name, row.topology, state, row.ssh_port if row.running else "-", row.pid or "-"))
    click.echo("inventory: %s" % the_lab.inventory_path)


class _CommandAfterDoubleDash(click.Command):
    """Keeps everything after ``--`` as the guest command, so NODE stays optional before it."""

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        if "--" in args:
            split = args.index("--")
            ctx.meta["guest_command"] = args[split + 1 :]
            args = args[:split]
        return super().parse_args(ctx, args)


@lab.command(cls=_CommandAfterDoubleDash)
@click.argument("node", required=False)
@click.pass_context
def ssh(ctx: click.Context, node: Optional[str]) -> None:
    """Open a root shell on NODE (default: the one running node), or run the command after `--`."""
    the_lab = Lab()
    target = the_lab.node(node) if node else the_lab.only_running_node()
    target.require_running()
    argv = target.ssh_argv(ctx.meta.get("guest_command", []))
    os.execvp(argv[0], argv)


@lab.command()
@click.argument("node", default=DEFAULT_NODE)
def down(node: str) -> None:
    """Power NODE off; its disk stays for the next `lab up`."""
    if Lab().down(node, log=_progress):
        click.echo("%s: stopped" % node)
    else:
        click.echo("%s: was not running" % node)


@lab.command()
@click.argument("node", default=DEFAULT_NODE)
def destroy(node: str) -> None:
    """Stop NODE and delete its disk, drives and logs (the cached base image stays)."""
    Lab().destroy(node, log=_progress)
    click.echo("%s: destroyed" % node)


@lab.command()
@click.argument("node", default=DEFAULT_NODE)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def dma(node: str, as_json: bool) -> None:
    """Where NODE's NVMe drives DMAed since it started with --trace-dma: bytes per PCI BAR, and to system memory.

    Addresses are mapped onto the BARs of the guest's /sys/bus/pci/devices/*/resource.
    """
    target = Lab().node(node)
    target.require_running()
    trace_lines = read_trace(target.dir / TRACE_FILE)
    resources = target.run(["sh"], input_text=GUEST_RESOURCES_COMMAND)
    rows = [row.to_dict() for row in landings(trace_lines, resources)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo("%-24s %-26s %9d events %14d bytes" % (
            row["where"], row.get("range", ""), row["events"], row["bytes"]))
