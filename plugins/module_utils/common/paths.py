# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where things are: the collection's own files and the cache of expensive artifacts.

Every caller asks here, so that a checkout, an editable install and an installed
collection find the same playbooks and ``kernel-src/``, and so that ``P2PCTL_CACHE``
moves every cache at once (tests, CI and benches point it at their own directory).
"""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

CACHE_VARIABLE = "P2PCTL_CACHE"


def collection_root() -> Path:
    """The directory holding galaxy.yml (an installed collection: MANIFEST.json), found from this file."""
    here = Path(__file__).resolve()
    for directory in here.parents:
        if (directory / "galaxy.yml").is_file() or (directory / "MANIFEST.json").is_file():
            return directory
    raise P2PError(
        "no collection root (a directory with galaxy.yml or MANIFEST.json) above %s" % here,
        fix="run p2pctl from a checkout of p2pdma.storage or install the collection with ansible-galaxy",
    )


def cache_root() -> Path:
    """``$P2PCTL_CACHE``, else ``$XDG_CACHE_HOME/p2pctl``, else ``~/.cache/p2pctl``."""
    override = os.environ.get(CACHE_VARIABLE)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "p2pctl"


def playbook_path(name: str) -> Path:
    """``playbooks/<name>.yml`` of the collection; P2PError naming the ones there when it is missing."""
    playbooks = collection_root() / "playbooks"
    path = playbooks / (name if name.endswith((".yml", ".yaml")) else name + ".yml")
    if not path.is_file():
        known = sorted(p.stem for p in playbooks.glob("*.yml")) if playbooks.is_dir() else []
        raise P2PError(
            "no playbook %s" % path,
            fix="use one of: %s" % (", ".join(known) or "none (the collection has no playbooks/ directory)"),
        )
    return path


def kernel_src() -> Path:
    """The project's kernel patch series and config fragments (``kernel-src/``)."""
    return collection_root() / "kernel-src"


__all__ = ["CACHE_VARIABLE", "cache_root", "collection_root", "kernel_src", "playbook_path"]
