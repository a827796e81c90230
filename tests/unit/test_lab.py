"""The lab's library API without booting a guest: node state, inventory, image cache key, faults.

Each test points the lab at its own cache directory (P2PCTL_CACHE), so real node
directories, pidfiles and inventories are built under tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from p2pctl.lab import node as node_module
from p2pctl.lab.fleet import Lab
from p2pctl.lab.image import BASE_PACKAGES, ImageSpec
from p2pctl.lab.node import LabNode
from p2pctl.lab.topologies import PRESETS, get_topology


@pytest.fixture(autouse=True)
def lab_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("P2PCTL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def make_node(name: str, topology: str = "switch", port: int = 2222) -> LabNode:
    node = LabNode(name)
    node.dir.mkdir(parents=True)
    node.config_file.write_text(json.dumps({"topology": topology, "ssh_port": port, "base_image": "/nonexistent"}))
    return node


def test_unknown_topology_names_the_choices() -> None:
    with pytest.raises(P2PError, match="unknown lab topology 'nope'.*fix: choose one of: acs, cascade"):
        get_topology("nope")


@pytest.mark.parametrize("name", ["", "../etc", "a b", "x/y"])
def test_node_names_that_are_not_plain_words_are_refused(name: str) -> None:
    with pytest.raises(P2PError, match="invalid lab node name"):
        LabNode(name)


def test_down_on_a_node_that_never_existed_says_so() -> None:
    with pytest.raises(P2PError, match="there is no lab node named 'ghost'"):
        Lab().down("ghost")


def test_down_on_a_stopped_node_reports_it_was_not_running() -> None:
    node = make_node("stopped")
    node.pidfile.write_text("%d\n" % os.getpid())
    assert Lab().down("stopped") is False
    assert not node.pidfile.exists()


def test_a_node_saved_by_a_newer_p2pctl_is_listed_with_the_settings_this_one_knows() -> None:
    node = make_node("newer")
    saved = json.loads(node.config_file.read_text())
    node.config_file.write_text(json.dumps(dict(saved, boot="lab-kernel", trace_dma=True)))
    assert node.config().boot == "lab-kernel"
    assert [(row.name, row.topology, row.running) for row in Lab().status()] == [("newer", "switch", False)]


def test_a_pidfile_naming_another_process_is_not_taken_for_the_node() -> None:
    node = make_node("reused")
    # This test's own PID is alive but is not a QEMU with this node's overlay open.
    node.pidfile.write_text("%d\n" % os.getpid())
    assert node.pid() is None
    assert not node.is_running()


@contextmanager
def running_as_qemu(node: LabNode) -> Iterator[None]:
    """A real process whose command line holds the node's overlay path stands in for its QEMU."""
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)", str(node.overlay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sleeper.stdout is not None and sleeper.stdout.readline() == "ready\n"
        node.pidfile.write_text("%d\n" % sleeper.pid)
        yield
    finally:
        sleeper.kill()
        sleeper.wait()


def test_inventory_lists_only_running_nodes_with_what_ansible_needs(lab_cache: Path) -> None:
    running = make_node("alive", port=40022)
    make_node("asleep", topology="epyc", port=40023)
    with running_as_qemu(running):
        path = Lab().write_inventory()
    inventory = yaml.safe_load(path.read_text())["all"]
    hosts = inventory["children"]["p2plab"]["hosts"]
    assert path == lab_cache / "lab" / "hosts.yml"
    assert list(hosts) == ["alive"]
    assert hosts["alive"]["ansible_port"] == 40022
    assert hosts["alive"]["ansible_user"] == "root"
    assert hosts["alive"]["ansible_ssh_private_key_file"] == str(lab_cache / "lab" / "id_ed25519")
    assert hosts["alive"]["ansible_ssh_common_args"] == "-F %s" % (lab_cache / "lab" / "ssh_config")
    assert "ServerAliveInterval 15" in (lab_cache / "lab" / "ssh_config").read_text()
    assert hosts["alive"]["kernel_install_serial_log"] == str(running.serial_log)
    # The lab kernel is the small built-in one, from a fragment that exists in this checkout.
    assert inventory["vars"]["kernel_build_config_base"] == "tinyconfig"
    assert all(Path(fragment).is_file() for fragment in inventory["vars"]["kernel_build_extra_fragments"])


# Ansible's own connection variables: the only ones a lab inventory may use besides the roles' documented ones.
ANSIBLE_CONNECTION_VARIABLES = {
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_ssh_private_key_file",
    "ansible_ssh_common_args",
    "ansible_python_interpreter",
}


def documented_role_variables() -> set:
    roles = Path(__file__).resolve().parents[2] / "roles"
    return {
        name
        for spec in roles.glob("*/meta/argument_specs.yml")
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values()
        for name in entry["options"]
    }


@pytest.mark.parametrize("topology", sorted(PRESETS))
def test_the_lab_inventory_uses_only_documented_variables(topology: str) -> None:
    node = make_node("n", topology=topology, port=40025)
    with running_as_qemu(node):
        inventory = Lab().inventory()["all"]
    hosts = inventory["children"]["p2plab"]["hosts"].values()
    used = set(inventory["vars"]) | {name for host in hosts for name in host}
    assert used - ANSIBLE_CONNECTION_VARIABLES - documented_role_variables() == set()


def test_a_pseudo_cmb_node_tells_kernel_install_which_device_needs_the_quirk(lab_cache: Path) -> None:
    node = make_node("pseudo", topology="pseudo-cmb", port=40024)
    with running_as_qemu(node):
        hosts = yaml.safe_load(Lab().write_inventory().read_text())["all"]["children"]["p2plab"]["hosts"]
    assert hosts["pseudo"]["kernel_install_pseudo_cmb_ids"] == ["1b36:0010"]


def test_status_shows_each_node_and_its_topology() -> None:
    make_node("b", topology="acs")
    make_node("a", topology="cascade")
    assert [(row.name, row.topology, row.running) for row in Lab().status()] == [
        ("a", "cascade", False),
        ("b", "acs", False),
    ]


def test_a_node_keeps_the_topology_it_was_created_with() -> None:
    make_node("fixed", topology="switch")
    with pytest.raises(P2PError, match="created with topology 'switch', not 'acs'"):
        LabNode("fixed").up(topology_name="acs")


def test_a_node_made_before_boot_modes_boots_through_grub_and_keeps_that() -> None:
    make_node("old")
    assert LabNode("old").config().boot == "grub"
    with pytest.raises(P2PError, match="created to boot grub, not lab-kernel; fix: use another --name"):
        LabNode("old").up(boot="lab-kernel")


def test_a_port_in_use_is_refused_before_qemu_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(P2PError, match="port 127.0.0.1:%d is already in use" % port):
            node_module._claim_port(port)


def test_missing_qemu_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    with pytest.raises(P2PError, match="needs qemu-system-x86_64.*apt-get install qemu-system-x86"):
        LabNode("fresh").up()


def test_image_cache_key_follows_the_package_list_and_the_key() -> None:
    base = ImageSpec(ssh_public_key="ssh-ed25519 AAAA one")
    assert base.cache_key() == ImageSpec(ssh_public_key="ssh-ed25519 AAAA one").cache_key()
    assert base.cache_key() != ImageSpec(ssh_public_key="ssh-ed25519 AAAA two").cache_key()
    assert (
        base.cache_key()
        != ImageSpec(ssh_public_key="ssh-ed25519 AAAA one", base_packages=BASE_PACKAGES + ("vim",)).cache_key()
    )
    # The mirror only says where the packages come from, not what they are.
    assert (
        base.cache_key()
        == ImageSpec(ssh_public_key="ssh-ed25519 AAAA one", mirror="http://mirror.example/debian").cache_key()
    )


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs qemu-system-x86_64")
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_qemu_builds_the_machine_of_every_preset(preset: str, tmp_path: Path) -> None:
    node = make_node("check-%s" % preset, topology=preset)
    topology = get_topology(preset)
    for drive in topology.drives:
        (node.dir / ("nvme-%s.raw" % drive.id)).write_bytes(b"")
        os.truncate(node.dir / ("nvme-%s.raw" % drive.id), drive.size_mb << 20)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(node.overlay), "64M"], check=True)
    # -S: realize every device, then wait before running the guest. QEMU refuses a bad bus,
    # slot or property with a non-zero exit before it daemonizes.
    argv = node.qemu_argv("qemu-system-x86_64", topology, ssh_port=0) + ["-S"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert node.is_running()
    node._kill()
    assert not node.is_running()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_lab_docs_show_every_preset_diagram(preset: str) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "lab.md").read_text()
    assert get_topology(preset).diagram in docs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "--topology", "nope"], "p2pctl: error: unknown lab topology 'nope'; fix: choose one of: acs, cascade"),
        (["down", "ghost"], "p2pctl: error: there is no lab node named 'ghost'; fix: see p2pctl lab status"),
        (["ssh"], "p2pctl: error: no lab node is running; fix: start one with p2pctl lab up"),
        (
            ["ssh", "ghost", "--", "true"],
            "p2pctl: error: lab node 'ghost' is not running; fix: p2pctl lab up --name ghost",
        ),
    ],
)
def test_lab_commands_fail_with_one_line_and_exit_2(argv: list, message: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("p2pctl")), "lab", *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    assert "Traceback" not in done.stderr
