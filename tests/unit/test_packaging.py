"""A plain (non-editable) pip install ships every Python package of the CLI and the collection's module_utils."""

from __future__ import annotations

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
# Where each import prefix lives in the checkout, as pyproject's package-dir maps it.
PACKAGE_DIRS = {
    "p2pctl": REPO / "cli" / "p2pctl",
    "ansible_collections.p2pdma.storage.plugins.module_utils": REPO / "plugins" / "module_utils",
}


def test_every_package_in_the_checkout_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join([prefix, *init.parent.relative_to(directory).parts])
        for prefix, directory in PACKAGE_DIRS.items()
        for init in directory.rglob("__init__.py")
    }
    assert on_disk - listed == set()
