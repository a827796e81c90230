# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the collection and the caches are, on the controller.

The collection root is found from this file's own place, four levels down at
``plugins/module_utils/common/paths.py``. That holds in the three ways the collection reaches a controller:
a checkout (the root holds ``galaxy.yml``), ``ansible-galaxy collection install`` (``MANIFEST.json``) and
``pip install`` (site-packages' ``ansible_collections/p2pdma/storage`` holds ``galaxy.yml`` as package data).
Modules shipped to a node do not use it: there module_utils travel alone inside the module's zip.
"""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

# A checkout and a pip install carry galaxy.yml; ansible-galaxy turns it into MANIFEST.json.
_ROOT_MARKERS = ("galaxy.yml", "MANIFEST.json")


def collection_root() -> Path:
    """The directory of the p2pdma.storage collection (playbooks/, roles/, kernel-src/, docs/)."""
    root = Path(__file__).resolve().parents[3]
    if not any((root / marker).is_file() for marker in _ROOT_MARKERS):
        raise P2PError(
            "%s is not the p2pdma.storage collection: it has neither %s" % (root, " nor ".join(_ROOT_MARKERS)),
            fix="reinstall p2pctl with `pip install` from the project, or install the collection with ansible-galaxy",
        )
    return root


def cache_root() -> Path:
    """Where p2pctl keeps images, kernel trees, packages and lab state.

    ``$P2PCTL_CACHE`` first (tests and CI point it elsewhere), then ``$XDG_CACHE_HOME/p2pctl``,
    then ``~/.cache/p2pctl``. An empty variable counts as unset, as the XDG spec says.
    """
    override = os.environ.get("P2PCTL_CACHE")
    if override:
        return Path(override).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache).expanduser() if xdg_cache else Path.home() / ".cache"
    return base / "p2pctl"
