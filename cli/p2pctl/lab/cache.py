"""Where the lab keeps its cached artifacts and its per-node state."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import cache_root


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
