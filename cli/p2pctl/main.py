"""The ``p2pctl`` command group.

Each command only parses its arguments and calls the library; the one error boundary
is :func:`main`, which turns a :class:`P2PError` into a one-line message and exit 2.
"""

from __future__ import annotations

import sys

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from p2pctl.commands.check import check
from p2pctl.commands.datapath import datapath
from p2pctl.commands.distance import distance
from p2pctl.commands.kernel import kernel
from p2pctl.commands.lab import lab
from p2pctl.commands.snapshot import snapshot
from p2pctl.commands.topology import topology

EXIT_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="p2pdma-storage", prog_name="p2pctl")
def cli() -> None:
    """Provision and check Linux storage nodes for PCIe peer-to-peer DMA."""


cli.add_command(kernel)
cli.add_command(lab)
cli.add_command(snapshot)
cli.add_command(topology)
cli.add_command(distance)
cli.add_command(check)
cli.add_command(datapath)


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
