"""How everything reaches a lab node over SSH: one ssh_config file, written by the lab.

The lab's own commands, its Ansible inventory (``ansible_ssh_common_args: -F <file>``) and molecule's
scenarios (create copies the file next to molecule's instance config) all read this file, so the
options are defined here only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple

from p2pctl.lab.cache import lab_dir

SSH_OPTIONS: Tuple[Tuple[str, str], ...] = (
    # Every node is a fresh guest with a new host key, often on a port another node used before.
    ("StrictHostKeyChecking", "no"),
    ("UserKnownHostsFile", "/dev/null"),
    ("LogLevel", "ERROR"),
    ("IdentitiesOnly", "yes"),
    # Keepalives: a guest that reboots under QEMU's user networking never resets the old TCP connection,
    # so an SSH client or ControlPersist master open across the reboot would otherwise wait forever.
    ("ServerAliveInterval", "15"),
    ("ServerAliveCountMax", "4"),
)


def ssh_config_path() -> Path:
    return lab_dir() / "ssh_config"


def ensure_ssh_config() -> Path:
    """The lab's ssh_config (``ssh -F``), written when missing or out of date."""
    path = ssh_config_path()
    text = "# Written by p2pctl lab: how ssh, Ansible and molecule reach lab nodes.\nHost *\n" + "".join(
        "    %s %s\n" % option for option in SSH_OPTIONS
    )
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path
