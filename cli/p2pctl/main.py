"""The ``p2pctl`` command group.

Each command only parses its arguments and calls the library; the one error boundary
is :func:`main`, which turns a :class:`P2PError` into a one-line message and exit 2.
"""

from __future__ import annotations

import functools
import sys

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from p2pctl import debian_packages
from p2pctl.commands.check import check
from p2pctl.commands.datapath import datapath
from p2pctl.commands.distance import distance
from p2pctl.commands.inventory import inventory
from p2pctl.commands.kernel import kernel
from p2pctl.commands.lab import lab
from p2pctl.commands.provision import provision
from p2pctl.commands.snapshot import snapshot
from p2pctl.commands.topology import topology

EXIT_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="p2pdma-storage", prog_name="p2pctl")
def cli() -> None:
    """Provision and check Linux storage nodes for PCIe peer-to-peer DMA."""


def needs_debian_packages(capability: str, command: click.Command) -> click.Command:
    """Make every leaf of ``command`` install ``capability``'s Debian packages before it runs.

    Leaves, not the group: a leaf's callback runs after its own arguments parsed, so ``--help`` installs nothing.
    """
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            needs_debian_packages(capability, subcommand)
        return command
    callback = command.callback
    assert callback is not None

    @functools.wraps(callback)
    def run_with_packages(*args, **kwargs):
        debian_packages.ensure(capability)
        return callback(*args, **kwargs)

    command.callback = run_with_packages
    return command


# Judging a node (snapshot, topology, distance, check) needs Python only; the lab and the kernel pipeline bring in
# their Debian packages the first time one of their commands runs.
cli.add_command(needs_debian_packages("kernel", kernel))
cli.add_command(needs_debian_packages("lab", lab))
cli.add_command(snapshot)
cli.add_command(topology)
cli.add_command(distance)
cli.add_command(check)
cli.add_command(datapath)
cli.add_command(provision)
cli.add_command(inventory)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except P2PError as exc:
        click.echo("p2pctl: error: %s" % exc, err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
