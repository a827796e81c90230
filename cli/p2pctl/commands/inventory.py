"""``p2pctl inventory``: write a starter inventory, add nodes to one."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from p2pctl import inventory as library

INVENTORY_HELP = "The inventory: a YAML file, or a directory holding hosts.yml (as init writes it)."


@click.group()
def inventory() -> None:
    """Write and edit the Ansible inventory p2pctl provision reads."""


@inventory.command()
@click.argument("directory", default="inventory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--group", default=library.DEFAULT_GROUP, show_default=True, help="The group of the storage nodes.")
def init(directory: Path, group: str) -> None:
    """Write a commented starter inventory: DIRECTORY/hosts.yml and DIRECTORY/group_vars/all.yml.

    Existing files are never overwritten. Then add nodes with 'p2pctl inventory add-node' and
    run 'p2pctl provision --inventory DIRECTORY'.
    """
    for path in library.init(directory, group):
        click.echo("wrote %s" % path)


@inventory.command("add-node")
@click.argument("name")
@click.option("--address", required=True, help="Host name or IP address Ansible connects to (ansible_host).")
@click.option("--port", type=click.IntRange(1, 65535), help="SSH port (ansible_port); Ansible's default when omitted.")
@click.option("--user", help="SSH user (ansible_user); Ansible's default when omitted.")
@click.option("--group", default=library.DEFAULT_GROUP, show_default=True, help="The group to add it to.")
@click.option("--inventory", "-i", "inventory_path", default="inventory", show_default=True,
              type=click.Path(path_type=Path), help=INVENTORY_HELP)
def add_node(name: str, address: str, port: Optional[int], user: Optional[str], group: str,
             inventory_path: Path) -> None:
    """Add node NAME to the inventory, keeping its comments and order.

    A name or address already in the inventory is refused, naming the file.
    """
    path = library.add_node(inventory_path, name, address, port, user, group)
    click.echo("added %s to %s (group %s)" % (name, path, group))
