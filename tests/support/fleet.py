"""A simulated fleet: many nodes judged on this machine, each from its own captured snapshot.

Every node has a local connection and its own ``p2p_check_root``: a copy of a guest fixture's
snapshot (tests/fixtures/guests), taken in turn, so each node reads a file of its own, as it
would read its own sysfs. One more node, ``dead``, answers no SSH connection.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

GUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "guests"
DEAD_NODE = "dead"


def guest_snapshots() -> List[Path]:
    return sorted(GUESTS.glob("*/snapshot.tar.gz"))


def simulated_fleet(directory: Path, nodes: int, dead: bool = True) -> Path:
    """Write the inventory (and each node's snapshot) of ``nodes`` simulated nodes under ``directory``."""
    snapshots = guest_snapshots()
    hosts: Dict[str, Dict[str, Any]] = {}
    for index in range(1, nodes + 1):
        name = "node%02d" % index
        root = directory / "snapshots" / ("%s.tar.gz" % name)
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(snapshots[(index - 1) % len(snapshots)], root)
        hosts[name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "p2p_check_root": str(root),
        }
    if dead:
        # The discard port on loopback: nothing listens, so SSH is refused at once.
        hosts[DEAD_NODE] = {"ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_user": "nobody"}
    inventory = directory / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=False))
    return inventory
