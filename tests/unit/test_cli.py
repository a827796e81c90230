"""p2pctl topology, distance, check and snapshot on real trees, through the installed entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import List

import pytest

from tests.support.nodes import CMB_16M, NVMET_READY_CONFIG, PUBLISHED_16M, switch_node
from tests.support.sysfs_tree import ACS_CR, ACS_RR, SysfsTree

P2PCTL = os.path.join(os.path.dirname(sys.executable), "p2pctl")
# One pair, as distance --json and the node report's pairs give it.
PAIR_KEYS = {
    "provider", "client", "client_name", "map_type", "distance", "acs_redirect", "path", "reason", "kernel_params",
    "fix",
}


def p2pctl(*args: str) -> subprocess.CompletedProcess:
    """Run the real entry point, error boundary included."""
    return subprocess.run([P2PCTL, *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory) -> str:
    """The switch node, plus two functions of one device below a root port with ACS redirect on, and rxe0."""
    tree = switch_node(tmp_path_factory.mktemp("cli") / "node")
    acs_port = tree.root_port("00:03.0", acs_ctrl=ACS_RR | ACS_CR)
    tree.multifunction(acs_port, 2, driver="nvme")
    tree.rxe(netdev="eth0")
    return tree.root


def test_topology_text_shows_the_tree_with_its_p2p_facts(node_dir):
    result = p2pctl("topology", "--root", node_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "pci0000:00 (host bridge: 0000:00:00.0 not whitelisted)"
    provider = next(line for line in lines if "0000:03:00.0" in line)
    assert "nvme0 nvme0n1 p2pmem 16 MiB free 16 MiB published" in provider
    assert provider.startswith("| ")  # drawn below the root port and the switch
    assert "(Switch Downstream Port)" in next(line for line in lines if "0000:02:00.0" in line)
    assert "ACS-redirect:RR+CR" in next(line for line in lines if "0000:00:03.0" in line)
    assert "mlx5_0 eth0" in next(line for line in lines if "0000:05:00.0" in line)


def test_topology_json_is_a_nested_tree(node_dir):
    result = p2pctl("topology", "--root", node_dir, "--json")
    view = json.loads(result.stdout)
    (host,) = view["host_bridges"]
    root_port = next(c for c in host["children"] if c["bdf"] == "0000:00:01.0")
    upstream = root_port["children"][0]
    assert upstream["port_type"] == "switch_upstream"
    drive = upstream["children"][0]["children"][0]
    assert drive["nvme"] == ["nvme0"]
    assert drive["p2pmem"] == {
        "size": CMB_16M.size_bytes, "available": CMB_16M.size_bytes, "published": True, "allocate": False,
    }
    assert drive["link"]["current_width"] == 4


def test_distance_json_has_the_documented_shape(node_dir):
    result = p2pctl("distance", "--root", node_dir, "--json", "nvme0", "mlx5_0", "nvme1n1")
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert set(verdict) == {"provider", "supported", "distance", "clients"}
    assert verdict["provider"] == "0000:03:00.0"
    assert (verdict["supported"], verdict["distance"]) == (True, 8)
    assert [set(c) for c in verdict["clients"]] == [PAIR_KEYS] * 2
    assert [(c["client"], c["map_type"], c["distance"]) for c in verdict["clients"]] == [
        ("0000:05:00.0", "bus_addr", 4),
        ("0000:04:00.0", "bus_addr", 4),
    ]


def test_distance_exits_1_when_a_client_is_not_supported(node_dir):
    result = p2pctl("distance", "--root", node_dir, "--json", "0000:03:00.0", "nvme2")
    assert result.returncode == 1
    verdict = json.loads(result.stdout)
    assert (verdict["supported"], verdict["distance"]) == (False, -1)
    (client,) = verdict["clients"]
    assert client["map_type"] == "not_supported"
    assert "not in the P2PDMA whitelist" in client["reason"]


@pytest.mark.parametrize(
    "device, message",
    [
        ("0000:00:01.0", "0000:00:01.0 is not a p2pmem provider: a root port has no p2pmem"),
        ("0000:01:00.0", "0000:01:00.0 is not a p2pmem provider: a switch upstream has no p2pmem"),
        ("nvme1", "nvme1 (0000:04:00.0) is not a p2pmem provider: 0000:04:00.0 (nvme1) has no CMB"),
    ],
)
def test_distance_refuses_a_device_that_is_not_a_provider(node_dir, device, message):
    result = p2pctl("distance", "--root", node_dir, device, "mlx5_0")
    _assert_one_line_error(result, message)
    assert "fix: name one of the providers here: 0000:03:00.0 (nvme0)" in result.stderr


def test_distance_refuses_a_vf(tmp_path):
    tree = switch_node(tmp_path / "node")
    (vf, _) = tree.sriov(tree.functions["0000:05:00.0"], 2)
    result = p2pctl("distance", "--root", tree.root, vf.bdf, "nvme0")
    _assert_one_line_error(result, "%s is not a p2pmem provider: a VF of 0000:05:00.0 has no p2pmem" % vf.bdf)


def test_distance_names_the_acs_ports_to_clear(tmp_path):
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG)
    switch = tree.switch(tree.root_port("00:01.0", acs_ctrl=0), downstream=2, acs_ctrl=ACS_RR | ACS_CR)
    drive = tree.nvme(switch.down[0], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    tree.rdma_nic(switch.down[1])
    result = p2pctl("distance", "--root", tree.root, "--json", drive.bdf, "mlx5_0")
    assert result.returncode == 1
    (pair,) = json.loads(result.stdout)["clients"]
    assert pair["kernel_params"][0] == "pci=disable_acs_redir=0000:02:00.0;0000:02:01.0"
    assert pair["path"] == [drive.bdf, "0000:02:00.0", "0000:01:00.0", "0000:02:01.0", "0000:04:00.0"]
    assert "pci=disable_acs_redir=0000:02:00.0;0000:02:01.0" in pair["fix"]


def test_check_json_is_the_node_report_and_exits_4_on_fail(node_dir):
    result = p2pctl("check", "--root", node_dir, "--json", "--client", "mlx5_0", "--client", "nvme2n1")
    assert result.returncode == 4
    report = json.loads(result.stdout)
    assert set(report) == {
        "format", "host", "root", "kernel", "policy", "status", "summary", "checks", "pairs", "tree",
        "accept_unmatched"}
    assert report["format"] == "p2pdma.storage/report/v1"
    assert report["kernel"]["rules"] == {"version": "6.1", "whitelist_entries": 10, "note": None}
    assert report["status"] == "FAIL" and report["summary"]["FAIL"] >= 1
    assert all(
        set(r) == {"id", "status", "why", "fix", "evidence", "accepted", "accept_reason"} for r in report["checks"]
    )
    by_id = {r["id"]: r for r in report["checks"]}
    assert by_id["locality"]["status"] == "FAIL"
    assert by_id["rdma:rxe0"]["status"] == "WARN"
    assert all(set(pair) == PAIR_KEYS for pair in report["pairs"])
    assert {(p["client_name"], p["map_type"]) for p in report["pairs"]} == {
        ("mlx5_0", "bus_addr"), ("nvme2n1", "not_supported")}


def test_an_accepted_warn_stays_listed_and_no_longer_counts(tmp_path):
    tree = switch_node(tmp_path / "node")
    tree.rxe(name="rxe0", netdev="eth1")
    accept = "rdma:rxe0=soft-RoCE carries the management network only"
    result = p2pctl("check", "--root", tree.root, "--client", "mlx5_0", "--accept", accept, "--json")
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    (record,) = [c for c in report["checks"] if c["id"] == "rdma:rxe0"]
    assert (record["status"], record["accepted"]) == ("WARN", True)
    assert record["accept_reason"] == "soft-RoCE carries the management network only"
    assert (report["status"], report["summary"]["WARN"], report["summary"]["accepted"]) == ("PASS", 0, 1)
    text = p2pctl("check", "--root", tree.root, "--client", "mlx5_0", "--accept", accept).stdout
    assert "accepted: soft-RoCE carries the management network only" in text
    assert text.splitlines()[-1].endswith("0 WARN, 0 FAIL, 1 WARN accepted")


def test_an_accept_without_a_reason_is_refused():
    result = p2pctl("check", "--accept", "rdma:rxe0")
    assert result.returncode == 2 and "is not ID=REASON" in result.stderr


def test_check_without_clients_judges_the_matrix(node_dir):
    result = p2pctl("check", "--root", node_dir)
    lines = result.stdout.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("PROVIDER \\ CLIENT"))
    assert lines[header].split()[3:] == ["nvme0", "nvme1", "nvme2", "mlx5_0"]
    assert lines[header + 1].split() == ["0000:03:00.0", "bus_addr", "0", "bus_addr", "4", "refused", "bus_addr", "4"]
    report = json.loads(p2pctl("check", "--root", node_dir, "--json").stdout)
    assert [(p["client_name"], p["distance"]) for p in report["pairs"]] == [
        ("nvme0", 0), ("nvme1", 4), ("nvme2", -1), ("mlx5_0", 4)]
    (matrix,) = [c for c in report["checks"] if c["id"] == "pairs"]
    assert matrix["status"] == "PASS" and "no provider can serve nvme2" in matrix["why"]


def test_check_exit_code_for_warn_only(tmp_path):
    tree = switch_node(tmp_path / "node")
    tree.rxe(name="rxe0", netdev="eth1")
    result = p2pctl("check", "--root", tree.root, "--client", "mlx5_0")
    assert result.returncode == 3, result.stdout
    assert "WARN   rdma:rxe0" in result.stdout


def test_check_exit_code_when_all_pass(tmp_path):
    tree = switch_node(tmp_path / "node")
    result = p2pctl("check", "--root", tree.root, "--provider", "nvme0", "--client", "mlx5_0", "--policy", "switch")
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].endswith("0 WARN, 0 FAIL")


def test_check_help_documents_the_exit_codes():
    result = p2pctl("check", "--help")
    assert "0 all PASS, 3 some WARN and no FAIL, 4 some FAIL, 2 on bad input" in " ".join(result.stdout.split())


def test_snapshot_then_judge_offline(node_dir, tmp_path):
    snapshot = str(tmp_path / "node.tar.gz")
    written = p2pctl("snapshot", "--root", node_dir, "-o", snapshot)
    assert written.returncode == 0, written.stderr
    live = p2pctl("distance", "--root", node_dir, "--json", "nvme0", "mlx5_0", "nvme2")
    offline = p2pctl("distance", "--root", snapshot, "--json", "nvme0", "mlx5_0", "nvme2")
    assert offline.returncode == live.returncode == 1
    assert json.loads(offline.stdout) == json.loads(live.stdout)


@pytest.mark.parametrize(
    "args, message",
    [
        (["distance", "0000:zz:00.0", "nvme1"], "'0000:zz:00.0' is not a PCI address"),
        (["distance", "nvme0", "0000:01:00"], "'0000:01:00' is not a PCI address"),
        (["distance", "nvme0", "00:1f.8"], "'00:1f.8' is not a PCI address"),
        (["distance", "nvme0", "nvme9"], "unknown device 'nvme9'"),
        (["check", "--provider", "0000:09:00.0"], "no PCI device 0000:09:00.0"),
    ],
)
def test_bad_device_names_give_one_line_with_a_fix(node_dir, args, message):
    result = p2pctl(*args, "--root", node_dir)
    _assert_one_line_error(result, message)


def test_an_unknown_device_in_a_snapshot_names_the_snapshot_file():
    snapshot = os.path.join(os.path.dirname(__file__), "..", "fixtures", "guests", "switch", "snapshot.tar.gz")
    result = p2pctl("distance", "nvme0", "nvme9", "--root", snapshot)
    _assert_one_line_error(result, "unknown device 'nvme9' (root %s)" % snapshot)


def test_a_root_that_is_a_plain_file_is_refused(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("not a node\n")
    _assert_one_line_error(p2pctl("topology", "--root", str(plain)), "notes.txt is neither a directory nor")


def test_a_tar_that_is_not_a_snapshot_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("not a node\n")
    other = tmp_path / "other.tar.gz"
    subprocess.run(["tar", "czf", str(other), "-C", str(tmp_path / "data"), "."], check=True)
    _assert_one_line_error(p2pctl("check", "--root", str(other)), "is a tar archive but not a p2pctl snapshot")


def test_a_missing_root_is_refused(tmp_path):
    _assert_one_line_error(p2pctl("distance", "--root", str(tmp_path / "gone"), "a", "b"), "does not exist")


def test_unreadable_config_space_is_a_warning_naming_the_file(tmp_path):
    # What a non-root user sees: 64 bytes of config space, so ACS is unknown.
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG)
    sw = tree.switch(tree.root_port("00:01.0", config_bytes=64), downstream=2)
    tree.nvme(sw.down[0], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    tree.rdma_nic(sw.down[1])
    result = p2pctl("check", "--root", tree.root, "--json")
    assert result.returncode == 3
    (record,) = [r for r in json.loads(result.stdout)["checks"] if r["id"] == "config-space"]
    assert record["status"] == "WARN"
    assert "/sys/bus/pci/devices/0000:00:01.0/config" in record["why"]
    assert "run as root" in record["fix"]
    assert "Traceback" not in result.stderr


def _assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    lines: List[str] = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("p2pctl: error: ")
    assert message in lines[0]
    assert "; fix: " in lines[0]


def test_topology_shows_vfs_and_every_host_bridge(tmp_path):
    tree = SysfsTree(tmp_path / "node", iommu=True)
    nic = tree.rdma_nic(tree.root_port("00:01.0"))
    tree.sriov(nic, 2)
    tree.host_bridge(1, 0x80, device=(0x8086, 0x09A2))  # Ice Lake Xeon: whitelisted in 6.1
    tree.nvme(tree.root_port("0001:80:01.0"))
    result = p2pctl("topology", "--root", tree.root)
    lines = result.stdout.splitlines()
    assert "pci0001:80 (host bridge: 0001:80:00.0 whitelisted)" in lines
    vf = next(line for line in lines if "0000:01:00.2" in line)
    assert vf.startswith("  `-") and "VF of 0000:01:00.0" in vf and "iommu_group 4" in vf
    assert lines[-1].startswith("  `-0001:81:00.0") and "nvme0" in lines[-1]
