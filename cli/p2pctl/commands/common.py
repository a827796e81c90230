"""Options and output helpers shared by the commands that read a node."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def root_option(func: F) -> F:
    """``--root DIR|SNAPSHOT.tar.gz``: the node to read, ``/`` by default."""
    return click.option(
        "--root",
        "root_spec",
        default="/",
        show_default=True,
        metavar="DIR|SNAPSHOT.tar.gz",
        help="Read this tree laid out like / (for example a copy of a node's /sys and /proc), "
        "or a snapshot written by 'p2pctl snapshot', instead of the running node.",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def echo_json(value: Any) -> None:
    # Indented for a person at a terminal; compact into a pipe or file, where the C
    # encoder writes a large node's tree several times faster than the indenting one.
    click.echo(json.dumps(value, indent=2 if sys.stdout.isatty() else None))


def minutes(seconds: float) -> str:
    """A duration as m:ss."""
    return "%d:%02d" % divmod(int(seconds), 60)
