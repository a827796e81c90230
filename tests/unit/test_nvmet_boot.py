"""The saved target and its restore at boot, on configfs-shaped trees.

A "boot" is a second, empty configfs tree with the node's devices: the restore must rebuild
in it exactly what the first tree held, leave out and report what is missing, and say so
in its exit status.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet import boot
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import apply_actions, read_target
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import target_from_dict
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.plan import plan_target
from tests.support.configfs_tree import ConfigfsTree
from tests.unit.test_nvmet_plan import H1, S1, declaration

KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:"
DEVICES = ("/dev/nvme0n1", "/dev/nvme1n1")

# What nvmetcli's reader (nvmet/nvme.py, Root.restore and the setup() of Host, Port, ANAGroup,
# Subsystem and Namespace) takes from the file: required keys it indexes, the lists it walks,
# and attribute groups whose items it writes as <group>_<name>. Our extensions (p2pmem,
# buffered_io) are keys it never reads.
_GROUP = {"type": "object", "additionalProperties": {"type": "string"}}
NVMETCLI_SCHEMA = {
    "type": "object",
    "properties": {
        "hosts": {"type": "array", "items": {
            "type": "object", "required": ["nqn"],
            "properties": {"nqn": {"type": "string"}, "dhchap": _GROUP},
        }},
        "ports": {"type": "array", "items": {
            "type": "object", "required": ["portid"],
            "properties": {
                "portid": {"type": "integer"}, "addr": _GROUP, "param": _GROUP,
                "subsystems": {"type": "array", "items": {"type": "string"}},
                "referrals": {"type": "array"},
                "ana_groups": {"type": "array", "items": {
                    "type": "object", "required": ["grpid"],
                    "properties": {"grpid": {"type": "integer"}, "ana": _GROUP},
                }},
            },
        }},
        "subsystems": {"type": "array", "items": {
            "type": "object", "required": ["nqn"],
            "properties": {
                "nqn": {"type": "string"}, "attr": _GROUP,
                "allowed_hosts": {"type": "array", "items": {"type": "string"}},
                "namespaces": {"type": "array", "items": {
                    "type": "object", "required": ["nsid"],
                    "properties": {
                        "nsid": {"type": "integer"}, "device": _GROUP, "enable": {"enum": [0, 1]},
                        "ana_grpid": {"type": "integer"},
                    },
                }},
            },
        }},
    },
}


def loopback_declaration() -> dict:
    wanted = declaration()
    wanted["hosts"][0]["dhchap"] = {"key": KEY, "hash": "hmac(sha384)"}
    wanted["ports"][0]["addr"]["traddr"] = "127.0.0.1"
    wanted["ports"].append({"portid": 2, "addr": {"trtype": "loop"}, "subsystems": [S1]})
    wanted["subsystems"][0]["namespaces"][0]["buffered_io"] = 1
    return wanted


def node(base: str) -> ConfigfsTree:
    tree = ConfigfsTree(base)
    for path in DEVICES:
        tree.device(path)
    return tree


@pytest.fixture
def running(tmp_path) -> ConfigfsTree:
    tree = node(str(tmp_path / "running"))
    desired = target_from_dict(loopback_declaration())
    apply_actions(tree.writer, plan_target(desired, read_target(tree.root), P2PJudge(tree.root)).actions)
    return tree


@pytest.fixture
def saved(running, tmp_path) -> str:
    path = str(tmp_path / "config.json")
    assert boot.write_if_changed(path, boot.saved_text(read_target(running.root)), boot.SAVED_MODE)
    return path


def test_the_saved_file_is_private_stable_and_nvmetcli_shaped(running, saved):
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert not boot.write_if_changed(saved, boot.saved_text(read_target(running.root)), boot.SAVED_MODE)
    data = json.loads(Path(saved).read_text())
    jsonschema.validate(data, NVMETCLI_SCHEMA)
    assert data["hosts"][0]["dhchap"]["key"] == KEY
    assert data["subsystems"][0]["namespaces"][0]["buffered_io"] == 1


def test_restore_at_boot_rebuilds_exactly_what_was_saved(running, saved, tmp_path):
    booted = node(str(tmp_path / "booted"))
    report = boot.restore(booted.root, boot.load_target(saved), timeout=0, writer=booted.writer)
    assert report.failed == []
    assert read_target(booted.root).to_dict() == read_target(running.root).to_dict()
    assert "device /dev/nvme0n1" in report.waited_for and "address 127.0.0.1" in report.waited_for
    # A second restore over the restored target changes nothing.
    assert boot.restore(booted.root, boot.load_target(saved), timeout=0, writer=booted.writer).actions == 0


def test_restore_waits_for_a_device_that_comes_late(saved, tmp_path):
    booted = node(str(tmp_path / "booted"))
    os.unlink(booted.root.host_path(DEVICES[1]))
    naps = []

    def device_appears(seconds: float) -> None:
        naps.append(seconds)
        booted.device(DEVICES[1])

    report = boot.restore(booted.root, boot.load_target(saved), timeout=3600, sleep=device_appears,
                          writer=booted.writer)
    assert report.failed == [] and len(naps) == 1
    assert [ns.nsid for ns in read_target(booted.root).subsystem(S1).namespaces] == [1, 2]


def test_what_never_comes_is_left_out_and_listed(running, saved, tmp_path):
    data = json.loads(Path(saved).read_text())
    data["ports"][0]["addr"]["traddr"] = "192.0.2.10"  # TEST-NET-1: never on this machine
    with open(saved, "w") as handle:
        json.dump(data, handle)
    booted = node(str(tmp_path / "booted"))
    os.unlink(booted.root.host_path(DEVICES[1]))
    report = boot.restore(booted.root, boot.load_target(saved), timeout=0, writer=booted.writer)
    assert report.failed == [
        "port 1: address 192.0.2.10 is not on this node",
        "subsystem %s namespace 2: device /dev/nvme1n1 does not exist" % S1,
    ]
    restored = read_target(booted.root)
    assert [p.portid for p in restored.ports] == [2]
    assert [ns.nsid for ns in restored.subsystem(S1).namespaces] == [1]
    assert restored.host(H1) is not None


def test_the_journal_lines_say_what_was_waited_for_and_what_failed(saved, tmp_path):
    booted = node(str(tmp_path / "booted"))
    shutil.rmtree(booted.root.host_path("/dev"))
    report = boot.restore(booted.root, boot.load_target(saved), timeout=0, writer=booted.writer)
    lines = report.lines()
    assert lines[0] == "waited 0.0 s for device /dev/nvme0n1, device /dev/nvme1n1, address 127.0.0.1"
    assert [line for line in lines if line.startswith("FAILED")] == [
        "FAILED: subsystem %s namespace %d: device %s does not exist" % (S1, nsid, path)
        for nsid, path in ((1, DEVICES[0]), (2, DEVICES[1]))
    ]


def test_the_entry_point_exits_non_zero_when_nvmet_is_not_loaded(saved, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert boot.main(["restore", "--config", saved, "--root", str(tmp_path / "empty"), "--timeout", "0"]) == 1
    assert "FAILED: nvmet is not loaded" in capsys.readouterr().out


def test_the_unit_is_ordered_after_what_the_target_names(saved, tmp_path):
    data = json.loads(Path(saved).read_text())
    data["subsystems"][0]["namespaces"][1]["device"]["path"] = "/dev/disk/by-path/pci-0000:05:00.0-nvme-1"
    target = target_from_dict(data)
    unit = boot.restore_unit(target, "/usr/local/lib/p2pdma-storage/p2pdma-nvmet", 90).splitlines()
    by_path = r"dev-disk-by\x2dpath-pci\x2d0000:05:00.0\x2dnvme\x2d1.device"
    assert "Wants=%s dev-nvme0n1.device network-online.target" % by_path in unit
    assert ("After=sys-kernel-config.mount systemd-modules-load.service %s dev-nvme0n1.device "
            "network-online.target" % by_path) in unit
    assert "ExecStartPre=-/sbin/modprobe -a nvmet nvme-loop nvmet-tcp" in unit
    target.ports = [port for port in target.ports if port.addr["trtype"] == "loop"]
    assert not any("network-online" in line for line in boot.restore_unit(target, "/p", 90).splitlines())


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape is not installed")
@pytest.mark.parametrize("path", ["/dev/nvme0n1", "/dev/disk/by-path/pci-0000:05:00.0-nvme-1", "/dev/.x/a b"])
def test_unit_names_are_systemds_own(path):
    expected = subprocess.run(["systemd-escape", "--path", path], capture_output=True, text=True, check=True)
    assert boot.systemd_escape_path(path) == expected.stdout.strip()


PSK = "NVMeTLSkey-1:01:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj/jBqb2:"


def test_a_psk_already_in_the_keyring_is_not_inserted_again(tmp_path):
    psk = {"hostnqn": H1, "subnqn": S1, "key": PSK}
    assert boot.psk_identity(psk) == "NVMe0R01 %s %s" % (H1, S1)
    tree = node(str(tmp_path))
    keys = tree.root.host_path("/proc/keys")
    os.makedirs(os.path.dirname(keys))
    with open(keys, "w") as handle:
        handle.write("1c4f2b3a I--Q---     1 perm 3f010000     0     0 psk       NVMe0R01 %s %s: 32\n" % (H1, S1))

    def never(argv):  # type: ignore[no-untyped-def]
        pytest.fail("ran %s for a key the keyring holds" % argv)

    assert boot.insert_psks(tree.root, [psk], never) == []


def test_a_malformed_psk_is_refused_before_any_command():
    with pytest.raises(P2PError, match="interchange format"):
        boot.psk_identity({"hostnqn": H1, "subnqn": S1, "key": "secret"})


def test_the_restore_program_runs_on_the_packages_the_role_installs(tmp_path):
    """The role copies only some module_utils packages to the node: the entry point must import from them alone."""
    repo = Path(__file__).resolve().parents[2]
    packages = yaml.safe_load((repo / "roles/nvmet/vars/main.yml").read_text())["__nvmet_module_utils_packages"]
    installed = tmp_path / "ansible_collections/p2pdma/storage/plugins/module_utils"
    for package in packages:
        (installed / package).mkdir(parents=True)
        for source in (repo / "plugins/module_utils" / package).glob("*.py"):
            shutil.copy(source, installed / package / source.name)
    shutil.copy(repo / "roles/nvmet/files/p2pdma-nvmet", tmp_path / "p2pdma-nvmet")
    # -S: without site-packages, where this checkout is installed (editable) and would answer the imports.
    done = subprocess.run([sys.executable, "-I", "-S", str(tmp_path / "p2pdma-nvmet"), "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "restore" in done.stdout
