"""``p2pctl snapshot``: capture what the model reads, for offline judging and bug reports."""

from __future__ import annotations

import sys

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import (
    open_root,
    write_snapshot,
    write_snapshot_stream,
)
from p2pctl.commands.common import root_option

STDOUT = "-"


@click.command(short_help="Capture what p2pctl reads, to judge the node offline.")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE.tar.gz|-",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    help="Write the snapshot here; '-' writes it to stdout.",
)
@root_option
def snapshot(output: str, root_spec: str) -> None:
    """Capture exactly the sysfs and procfs files p2pctl reads, symlinks kept.

    Any p2pctl command takes the result as --root, on any machine. With '-o -' the
    archive is the only thing written to stdout; messages go to stderr.
    """
    root = open_root(root_spec)
    if output == STDOUT:
        if sys.stdout.isatty():
            raise P2PError(
                "refusing to write a snapshot (a gzip'd tar) to a terminal",
                fix="redirect stdout to a file or a pipe, e.g. 'ssh NODE sudo p2pctl snapshot -o - > NODE.tar.gz'",
            )
        manifest = write_snapshot_stream(root, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        manifest = write_snapshot(root, output)
    click.echo("wrote %s (kernel %s, %s)" % ("the snapshot to stdout" if output == STDOUT else output,
                                             manifest.kernel_release or "unknown", manifest.taken_at),
               err=output == STDOUT)
    if not manifest.as_root:
        click.echo(
            "warning: not run as root: PCI config space beyond 64 bytes was not readable, so ACS is unknown "
            "in this snapshot; run 'p2pctl snapshot' as root",
            err=True,
        )
    if manifest.unreadable:
        click.echo(
            "warning: %d files could not be read, e.g. %s" % (len(manifest.unreadable), manifest.unreadable[0]),
            err=True,
        )
