"""Where the lab keeps its cached artifacts and its per-node state."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable


def cache_root() -> Path:
    """``~/.cache/p2pctl`` (or ``$P2PCTL_CACHE``, so tests and CI can point elsewhere)."""
    override = os.environ.get("P2PCTL_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "p2pctl"


def lab_dir() -> Path:
    """The lab's state: SSH key, inventory and one directory per node."""
    return cache_root() / "lab"


def content_hash(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        # Length-prefixed, so that moving bytes between two parts changes the hash.
        digest.update(b"%d:" % len(part))
        digest.update(part)
    return digest.hexdigest()[:16]


def ssh_key_path() -> Path:
    """The lab's own SSH key (ed25519); its public half is baked into the image."""
    return lab_dir() / "id_ed25519"
