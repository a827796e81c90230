"""Ansible against a directly booted lab node: playbooks/check.yml on its first boot and after a reboot.

The node runs the lab's P2PDMA kernel with the lab's minimal init (no systemd), so this proves
that the collection's playbooks run on such a node, and that a node that boots again gives the
same answer as on its first, cold boot. The inventory holds this node only (the lab's hosts.yml
lists every running node of the machine).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import yaml

from p2pctl.lab.fleet import Lab
from p2pctl.lab.node import BOOT_LAB_KERNEL, LabNode

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = "switch"
# The switch preset's CMB drives below one switch (cmb0, cmb1): the kernel takes this path (bus_addr).
# Named by PCI address: the kernel probes NVMe controllers asynchronously, so which drive is
# nvme0 changes from boot to boot (the first CI run of this test met cmb1 as nvme0).
PROVIDERS = ["0000:03:00.0"]
CLIENTS = ["0000:04:00.0"]
# Controller and namespace names in the reasons, for the same cause.
KERNEL_NVME_NAME = re.compile(r"\bnvme\d+(n\d+)?\b")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabNode]:
    lab = Lab()
    name = os.environ.get("P2PLAB_TEST_PREFIX", "test-") + "playbook"
    lab_node = lab.up(name, topology=TOPOLOGY, boot=BOOT_LAB_KERNEL, log=print)
    try:
        yield lab_node
    finally:
        lab.destroy(name)


def play(node: LabNode, directory: Path, playbook: Path, extra_vars: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Run ``playbook`` on this node only; the results of its tasks on the node."""
    inventory = Lab().inventory()
    hosts = inventory["all"]["children"]["p2plab"]["hosts"]
    inventory["all"]["children"]["p2plab"]["hosts"] = {node.name: hosts[node.name]}
    inventory_file = directory / "hosts.yml"
    inventory_file.write_text(yaml.safe_dump(inventory))
    # ansible-core's oneline callback: one "host | STATUS => {result}" line per task result.
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="oneline")
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory_file),
            str(playbook),
            "-e",
            json.dumps(extra_vars),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    prefix = "%s | SUCCESS => " % node.name
    return [json.loads(line[len(prefix) :]) for line in done.stdout.splitlines() if line.startswith(prefix)]


def check_results(node: LabNode, directory: Path) -> List[Dict[str, Any]]:
    """The p2p_check task's checks from check.yml, without what moves between boots: evidence, NVMe names."""
    extra_vars = {"p2p_check_providers": PROVIDERS, "p2p_check_clients": CLIENTS}
    results = play(node, directory, REPO / "playbooks" / "check.yml", extra_vars)
    (check_task,) = [result for result in results if "checks" in result]
    return [
        {"id": check["id"], "status": check["status"], "why": KERNEL_NVME_NAME.sub("nvme*", check["why"])}
        for check in check_task["checks"]
    ]


def test_check_yml_answers_the_same_after_a_reboot_as_on_the_cold_boot(node: LabNode, tmp_path: Path) -> None:
    cold = check_results(node, tmp_path)
    statuses = {check["id"]: check["status"] for check in cold}
    assert statuses["kernel-p2pdma"] == "PASS", cold
    assert statuses["locality:0000:03:00.0"] == "PASS", cold
    node.reboot()
    assert check_results(node, tmp_path) == cold


TRIAL_BOOT_WAIT = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Read the boot before the reboot
      ansible.builtin.slurp:
        src: /proc/sys/kernel/random/boot_id
      register: before

    - name: Reboot the lab init's way, in the background (as kernel_install asks for its trial boot)
      ansible.builtin.shell: sleep 2 && kill -TERM 1
      async: 60
      poll: 0

    - name: Wait on the serial console and SSH
      p2pdma.storage.trial_boot_wait:
        console_log: "{{ console_log }}"
        offset: "{{ offset }}"
        release: "{{ release }}"
        host: "{{ ansible_host }}"
        port: "{{ ansible_port }}"
        timeout: 300
      delegate_to: localhost
      register: waited

    - name: Reconnect
      ansible.builtin.wait_for_connection:
        timeout: 120

    - name: Read the boot after it
      ansible.builtin.slurp:
        src: /proc/sys/kernel/random/boot_id
      register: after

    - name: Report
      ansible.builtin.debug:
        msg: "{{ {'waited': waited, 'rebooted': before.content != after.content} }}"
"""


def test_trial_boot_wait_returns_once_the_rebooted_node_answers_ssh(node: LabNode, tmp_path: Path) -> None:
    """trial_boot_wait on a real reboot: its success path (its failures: tests/unit/test_console.py)."""
    release = node.run(["uname", "-r"]).strip()
    playbook = tmp_path / "trial_boot_wait.yml"
    playbook.write_text(TRIAL_BOOT_WAIT)
    extra_vars = {"console_log": str(node.serial_log), "offset": node.serial_log.stat().st_size, "release": release}
    (report,) = [result["msg"] for result in play(node, tmp_path, playbook, extra_vars) if "msg" in result]
    assert report["rebooted"]
    assert report["waited"]["release"] == release
    assert report["waited"]["console"], report
