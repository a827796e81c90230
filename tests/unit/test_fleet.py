"""p2pctl check --inventory: the check playbook over simulated nodes through ansible-runner, one report per node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fleet import (
    FLEET_FORMAT,
    failed_entry,
    fleet_document,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.report import REPORT_FORMAT, judge_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from tests.support.fleet import DEAD_NODE, GUESTS, simulated_fleet
from tests.unit.test_cli import p2pctl


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory) -> Path:
    """Three simulated nodes (acs, acs-disabled, acs-epyc snapshots) and one that does not answer."""
    return simulated_fleet(tmp_path_factory.mktemp("fleet"), 3)


def test_each_node_gets_the_report_its_own_check_gives(small_fleet):
    result = p2pctl("check", "--inventory", str(small_fleet), "--json")
    assert result.returncode == 5, result.stderr
    fleet = json.loads(result.stdout)
    assert (fleet["format"], fleet["status"]) == (FLEET_FORMAT, "UNREACHABLE")
    assert [entry["host"] for entry in fleet["nodes"]] == [DEAD_NODE, "node01", "node02", "node03"]
    dead, *judged = fleet["nodes"]
    assert (dead["status"], dead["report"]) == ("UNREACHABLE", None)
    assert "127.0.0.1 port 9" in dead["message"]
    hosts = yaml.safe_load(small_fleet.read_text())["all"]["hosts"]
    for entry in judged:
        _results, alone = judge_node(read_node(open_root(hosts[entry["host"]]["p2p_check_root"])))
        assert entry["report"] == alone
        assert (entry["status"], entry["report"]["format"]) == (alone["status"], REPORT_FORMAT)
    assert fleet["summary"] == {"PASS": 0, "WARN": 3, "FAIL": 0, "ERROR": 0, "UNREACHABLE": 1}


def test_text_has_a_row_per_node_and_each_node_problems(small_fleet):
    result = p2pctl("check", "--inventory", str(small_fleet), "--limit", "node0*")
    assert result.returncode == 3, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ node")]
    assert [tuple(cell.strip() for cell in row.split("│")[1:3]) for row in rows] == [
        ("node01", "WARN"), ("node02", "WARN"), ("node03", "WARN")]
    assert DEAD_NODE not in result.stdout
    assert "node01: WARN" in result.stdout and "fix: " in result.stdout
    assert result.stdout.rstrip().endswith("3 node(s): 3 WARN")


def test_options_given_apply_to_every_node(small_fleet):
    result = p2pctl("check", "--inventory", str(small_fleet), "--limit", "node0*", "--policy", "switch", "--json")
    assert result.returncode in (0, 3, 4), result.stderr
    assert {entry["report"]["policy"] for entry in json.loads(result.stdout)["nodes"]} == {"switch"}


def test_a_node_failing_its_host_vars_makes_the_fleet_fail(tmp_path):
    inventory = simulated_fleet(tmp_path, 2, dead=False)
    hosts = yaml.safe_load(inventory.read_text())
    rootports = str(GUESTS / "rootports" / "snapshot.tar.gz")
    # Two drives behind different root ports of an Intel host bridge: the kernel refuses the pair.
    hosts["all"]["hosts"]["node02"].update(
        p2p_check_root=rootports, p2p_check_providers=["0000:01:00.0"], p2p_check_clients=["nvme2"])
    inventory.write_text(yaml.safe_dump(hosts))
    result = p2pctl("check", "--inventory", str(inventory), "--json")
    assert result.returncode == 4, result.stderr
    fleet = json.loads(result.stdout)
    assert [(e["host"], e["status"]) for e in fleet["nodes"]] == [("node01", "WARN"), ("node02", "FAIL")]
    (failed,) = [c for c in fleet["nodes"][1]["report"]["checks"] if c["status"] == "FAIL"]
    assert failed["id"] == "locality:0000:01:00.0" and "share no upstream bridge" in failed["why"]


def test_a_node_whose_check_cannot_run_is_an_error_not_the_end(tmp_path):
    inventory = simulated_fleet(tmp_path, 2, dead=False)
    hosts = yaml.safe_load(inventory.read_text())
    hosts["all"]["hosts"]["node01"]["p2p_check_root"] = str(tmp_path / "no-such-snapshot.tar.gz")
    inventory.write_text(yaml.safe_dump(hosts))
    result = p2pctl("check", "--inventory", str(inventory), "--json")
    assert result.returncode == 5, result.stderr
    broken, judged = json.loads(result.stdout)["nodes"]
    assert broken["status"] == "ERROR" and "no-such-snapshot.tar.gz" in broken["message"]
    assert judged["status"] == "WARN" and judged["report"]["format"] == REPORT_FORMAT


def test_a_node_with_a_bad_variable_is_an_error_that_names_it(tmp_path):
    # The fleet run leaves out the role's argument validation (a task per host); the judging task's own
    # argument spec still refuses the value, for that node only.
    inventory = simulated_fleet(tmp_path, 2, dead=False)
    hosts = yaml.safe_load(inventory.read_text())
    hosts["all"]["hosts"]["node01"]["p2p_check_policy"] = "anywhere"
    inventory.write_text(yaml.safe_dump(hosts))
    result = p2pctl("check", "--inventory", str(inventory), "--json")
    assert result.returncode == 5, result.stderr
    broken, judged = json.loads(result.stdout)["nodes"]
    assert broken["status"] == "ERROR"
    assert "value of policy must be one of: kernel, switch, got: anywhere" in broken["message"]
    assert judged["status"] == "WARN"


def test_fifty_nodes_and_one_silent_node(tmp_path):
    inventory = simulated_fleet(tmp_path, 50)
    result = p2pctl("check", "--inventory", str(inventory), "--forks", "10", "--json")
    assert result.returncode == 5, result.stderr
    fleet = json.loads(result.stdout)
    judged = [entry for entry in fleet["nodes"] if entry["report"] is not None]
    assert len(judged) == 50 and {entry["report"]["format"] for entry in judged} == {REPORT_FORMAT}
    assert [entry["host"] for entry in fleet["nodes"] if entry["report"] is None] == [DEAD_NODE]
    assert fleet["summary"]["UNREACHABLE"] == 1


def test_the_worst_node_is_the_fleet_status():
    entries = [
        {"host": "node10", "status": "FAIL", "message": None, "report": None},
        {"host": "node9", "status": "PASS", "message": None, "report": None},
        failed_entry("node11", "ERROR", "no python"),
    ]
    fleet = fleet_document(entries)
    assert fleet["status"] == "ERROR"
    assert [entry["host"] for entry in fleet["nodes"]] == ["node9", "node10", "node11"]
    assert fleet_document([])["status"] == "PASS"


@pytest.mark.parametrize("option", [["--limit", "x"], ["--forks", "2"]])
def test_fleet_options_need_an_inventory(option):
    result = p2pctl("check", *option)
    assert result.returncode == 2 and "needs --inventory" in result.stderr


def test_an_html_file_that_cannot_be_written_is_refused_before_any_node_is_judged(small_fleet, tmp_path):
    page = tmp_path / "no-such-dir" / "fleet.html"
    result = p2pctl("check", "--inventory", str(small_fleet), "--html", str(page))
    assert result.returncode == 2 and "is not a writable directory" in result.stderr
    assert result.stdout == ""


def test_root_and_inventory_exclude_each_other(small_fleet):
    result = p2pctl("check", "--inventory", str(small_fleet), "--root", "/")
    assert result.returncode == 2 and "set p2p_check_root per host" in result.stderr


def test_help_documents_the_fleet_exit_codes():
    text = " ".join(p2pctl("check", "--help").stdout.split())
    assert "the worst node counts, and 5 when some node was UNREACHABLE or ERROR" in text


def test_the_report_tree_holds_every_pair_branch_up_to_its_host_bridge():
    _results, report = judge_node(read_node(open_root(str(GUESTS / "switch" / "snapshot.tar.gz"))))
    tree = {fn["bdf"]: fn for fn in report["tree"]}
    order = [fn["bdf"] for fn in report["tree"]]
    for pair in report["pairs"]:
        assert tree[pair["provider"]]["role"] == "provider" and pair["client"] in tree
    for fn in report["tree"]:
        assert fn["parent"] is None or order.index(fn["parent"]) < order.index(fn["bdf"])
    assert (tree["0000:00:04.0"]["port_type"], tree["0000:00:04.0"]["parent"]) == ("root_port", None)
    assert (tree["0000:01:00.0"]["port_type"], tree["0000:01:00.0"]["parent"]) == ("switch_upstream", "0000:00:04.0")
    assert (tree["0000:05:00.0"]["role"], tree["0000:05:00.0"]["name"]) == ("client", "nvme2")


def test_an_inventory_without_hosts_to_judge_is_bad_input(small_fleet, tmp_path):
    empty = tmp_path / "empty.yml"
    empty.write_text("all:\n  children: {}\n")
    result = p2pctl("check", "--inventory", str(empty))
    assert result.returncode == 2
    assert "no host of inventory %s was judged" % empty in result.stderr
    assert "ansible-inventory -i %s --graph" % empty in result.stderr
    result = p2pctl("check", "--inventory", str(small_fleet), "--limit", "no-such-node")
    assert result.returncode == 2
    assert "p2pctl: error: playbook check.yml failed (ansible-playbook exit 1): Specified inventory, host pattern " \
        "and/or --limit leaves us with no hosts to target." in result.stderr
