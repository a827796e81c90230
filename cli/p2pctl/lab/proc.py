"""Running the host tools the lab needs (argv lists, never shell strings)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Dict, List, Optional, Sequence

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

# The Debian package that ships each host tool, for the fix in the error message.
TOOL_PACKAGES: Dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap",
    "sfdisk": "fdisk",
    "losetup": "mount",
    "partx": "util-linux",
    "mkfs.ext4": "e2fsprogs",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


def require_tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not path:
        raise P2PError(
            "the lab needs %s, which is not installed" % name,
            fix="apt-get install %s (or run scripts/bootstrap)" % TOOL_PACKAGES.get(name, name),
        )
    return path


def run(
    argv: Sequence[str],
    what: str,
    env: Optional[Dict[str, str]] = None,
    input_text: Optional[str] = None,
    timeout: Optional[float] = None,
) -> str:
    """Run ``argv``; on failure raise a P2PError that says what failed and shows the end of its output."""
    try:
        done = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise P2PError(
            "%s did not finish within %d s" % (what, timeout or 0), fix="see the command: %s" % " ".join(argv)
        ) from None
    if done.returncode != 0:
        raise P2PError(
            "%s failed (exit %d): %s" % (what, done.returncode, tail(done.stderr or done.stdout, 8)),
            fix="run it by hand to see the whole output: %s" % " ".join(argv),
        )
    return done.stdout


def tail(text: str, lines: int) -> str:
    kept: List[str] = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)
