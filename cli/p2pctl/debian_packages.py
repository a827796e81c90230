"""The Debian packages each capability of p2pctl needs beyond Python, installed when a command first needs them.

Judging a node (check, topology, distance, snapshot) needs Python only, so a storage node gets a venv and nothing
else. The lab brings in QEMU and debootstrap the first time ``p2pctl lab`` runs, the kernel pipeline its compiler
the first time ``p2pctl kernel`` runs. ``scripts/bootstrap --all`` installs every list up front (CI does), through
this module's command line: ``python -m p2pctl.debian_packages lab kernel test``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

CAPABILITIES: Dict[str, Tuple[str, ...]] = {
    # Lab nodes: QEMU under TCG, a Debian image built with debootstrap on a partitioned disk, SSH into the guests.
    "lab": (
        "qemu-system-x86",
        "qemu-utils",
        "ovmf",
        "debootstrap",
        "openssh-client",
        "fdisk",
        "dosfstools",
        "e2fsprogs",
        "cpio",
        "xz-utils",
        "zstd",
        "rsync",
        "kmod",
        "busybox-static",
    ),
    # Kernel packages: make bindeb-pkg with ccache, from Debian's linux-source, a tarball or git.
    "kernel": (
        "build-essential",
        "bc",
        "bison",
        "flex",
        "libelf-dev",
        "libssl-dev",
        "dwarves",
        "ccache",
        "fakeroot",
        "debhelper",
        "rsync",
        "cpio",
        "xz-utils",
        "zstd",
        "kmod",
        "git",
    ),
    # The project's own tests: ansible-test's shellcheck sanity test, C headers for wheels without a binary, and a
    # headless browser that renders the fleet report's HTML to a screenshot.
    "test": ("shellcheck", "python3-dev", "git", "chromium"),
}


def missing(packages: Sequence[str]) -> List[str]:
    """The packages dpkg does not list as installed (one dpkg-query for all; it names unknown ones on stderr)."""
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages], capture_output=True, text=True, check=False
    ).stdout
    installed = {line.split(" ", 1)[0] for line in listed.splitlines() if line.endswith(" install ok installed")}
    return [package for package in packages if package not in installed]


def ensure(*capabilities: str) -> None:
    """Install the Debian packages of ``capabilities`` that are missing; nothing to do costs one dpkg-query each."""
    if not shutil.which("dpkg-query"):
        # Not Debian: the commands name the tool they miss when they need it.
        return
    wanted = sorted({package for capability in capabilities for package in CAPABILITIES[capability]})
    absent = missing(wanted)
    if not absent:
        return
    what = " and ".join(capabilities)
    if os.geteuid() != 0:
        raise P2PError(
            "p2pctl's %s commands need Debian packages that are not installed: %s" % (what, " ".join(absent)),
            fix="run this command once as root, or apt-get install %s" % " ".join(absent),
        )
    click.echo("p2pctl: installing what %s needs: %s" % (what, " ".join(absent)), err=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", *absent]):
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            raise P2PError(
                "`%s` failed while installing what %s needs" % (" ".join(argv), what),
                fix="fix the apt sources or the network, then run the command again",
            )


if __name__ == "__main__":
    unknown = sorted(set(sys.argv[1:]) - set(CAPABILITIES))
    if unknown:
        sys.exit("usage: python -m p2pctl.debian_packages {%s}..." % ",".join(CAPABILITIES))
    try:
        ensure(*sys.argv[1:])
    except P2PError as err:
        sys.exit("p2pctl: error: %s" % err)
