"""All lab nodes on this host, and the Ansible inventory of the running ones."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import yaml

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.files import write_atomic
from p2pctl.lab.cache import lab_dir, ssh_key_path
from p2pctl.lab.labkernel import LAB_FRAGMENTS, LAB_KERNEL_SERIES
from p2pctl.lab.node import SSH_TIMEOUT, LabNode, Log, no_log
from p2pctl.lab.ssh import ensure_ssh_config, ssh_config_path
from p2pctl.lab.topologies import get_topology

INVENTORY_GROUP = "p2plab"


@dataclass(frozen=True)
class NodeStatus:
    name: str
    topology: str
    running: bool
    ssh_port: int
    pid: Optional[int]


def lab_vars() -> Dict[str, Any]:
    """Variables for every play against the lab, the build host (implicit localhost) included.

    A lab guest needs only the small built-in lab kernel: building from the node's running
    Debian config would take hours on a laptop or CI machine.
    """
    return {
        # Localhost is the controller: run its modules with the interpreter that runs Ansible.
        # The nodes' own ansible_python_interpreter overrides this.
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        # Lab nodes run Debian 13, whose kernel series (linux-source-6.12, kernel-src/patches/6.12) this is.
        "kernel_build_version": LAB_KERNEL_SERIES,
        "kernel_build_config_base": "tinyconfig",
        "kernel_build_extra_fragments": [str(fragment) for fragment in LAB_FRAGMENTS],
    }


class Lab:
    """The lab of this host: its nodes and ``hosts.yml``, rewritten whenever a node starts or stops."""

    @property
    def inventory_path(self) -> Path:
        return lab_dir() / "hosts.yml"

    def node(self, name: str) -> LabNode:
        return LabNode(name)

    def nodes(self) -> List[LabNode]:
        nodes_dir = lab_dir() / "nodes"
        if not nodes_dir.is_dir():
            return []
        return [LabNode(entry.name) for entry in sorted(nodes_dir.iterdir()) if (entry / "node.json").exists()]

    def status(self) -> List[NodeStatus]:
        statuses = []
        for node in self.nodes():
            config = node.config()
            pid = node.pid()
            statuses.append(NodeStatus(node.name, config.topology, pid is not None, config.ssh_port, pid))
        return statuses

    def only_running_node(self) -> LabNode:
        """The node a command means when it names none: the one running node."""
        running = [node for node in self.nodes() if node.is_running()]
        if len(running) == 1:
            return running[0]
        if not running:
            raise P2PError("no lab node is running", fix="start one with p2pctl lab up")
        raise P2PError(
            "%d lab nodes are running (%s)" % (len(running), ", ".join(node.name for node in running)),
            fix="name the node",
        )

    def up(
        self,
        name: str,
        topology: Optional[str] = None,
        ssh_port: Optional[int] = None,
        ssh_timeout: Optional[float] = None,
        log: Log = no_log,
        boot: Optional[str] = None,
        trace_dma: bool = False,
        kernel_args: Sequence[str] = (),
    ) -> LabNode:
        node = self.node(name)
        # Two `lab up` at once must not claim the same SSH port or build the image twice:
        # starting QEMU is done under the lab's lock, the long wait for SSH is not.
        with self._locked():
            started = node.start(topology, ssh_port, log, boot, trace_dma, kernel_args)
        try:
            timeout = SSH_TIMEOUT if ssh_timeout is None else ssh_timeout
            if started:
                node.wait_ready(timeout, log)
            else:
                node.wait_ssh(timeout)
        finally:
            with self._locked():
                self.write_inventory()
        return node

    def down(self, name: str, log: Log = no_log) -> bool:
        node = self.node(name)
        with self._locked():
            was_running = node.down(log)
            self.write_inventory()
        return was_running

    def destroy(self, name: str, log: Log = no_log) -> None:
        node = self.node(name)
        node.config()
        with self._locked():
            node.destroy(log)
            self.write_inventory()

    def inventory(self) -> Dict[str, Any]:
        hosts: Dict[str, Any] = {}
        for node in self.nodes():
            if not node.is_running():
                continue
            config = node.config()
            hosts[node.name] = {
                "ansible_host": "127.0.0.1",
                "ansible_port": config.ssh_port,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(ssh_key_path()),
                "ansible_ssh_common_args": "-F %s" % ssh_config_path(),
                "ansible_python_interpreter": "/usr/bin/python3",
                # A node that does not come back on a new kernel is explained from its console.
                "kernel_install_serial_log": str(node.serial_log),
                **get_topology(config.topology).inventory_vars,
            }
        return {"all": {"vars": lab_vars(), "children": {INVENTORY_GROUP: {"hosts": hosts}}}}

    def write_inventory(self) -> Path:
        path = self.inventory_path
        path.parent.mkdir(parents=True, exist_ok=True)
        ensure_ssh_config()
        write_atomic(
            path,
            "# Written by p2pctl lab: the running lab nodes. Rewritten on every lab up/down.\n"
            + yaml.safe_dump(self.inventory(), sort_keys=False),
        )
        return path

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lab_dir().mkdir(parents=True, exist_ok=True)
        with open(lab_dir() / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
