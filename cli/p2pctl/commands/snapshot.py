"""``p2pctl snapshot``: capture what the model reads, for offline judging and bug reports."""

from __future__ import annotations

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root, write_snapshot
from p2pctl.commands.common import root_option


@click.command(short_help="Capture what p2pctl reads, to judge the node offline.")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE.tar.gz",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the snapshot here.",
)
@root_option
def snapshot(output: str, root_spec: str) -> None:
    """Capture exactly the sysfs and procfs files p2pctl reads, symlinks kept.

    Any p2pctl command takes the result as --root, on any machine.
    """
    manifest = write_snapshot(open_root(root_spec), output)
    click.echo("wrote %s (kernel %s, %s)" % (output, manifest.kernel_release or "unknown", manifest.taken_at))
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
