"""p2pdma.storage.p2p_facts and p2p_check run for real by ansible-playbook against localhost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support.nodes import CMB_16M, switch_node

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Facts from the tree
      p2pdma.storage.p2p_facts:
        root: "{{ node_root }}"

    - name: A provider and clients behind one switch
      p2pdma.storage.p2p_check:
        root: "{{ node_root }}"
        providers: [nvme0]
        clients: [mlx5_0, nvme1n1]
        policy: switch
      register: good

    - name: The same in check mode
      p2pdma.storage.p2p_check:
        root: "{{ node_root }}"
        providers: [nvme0]
        clients: [mlx5_0, nvme1n1]
        policy: switch
      check_mode: true
      register: checked

    - name: A client on another root port fails the task
      p2pdma.storage.p2p_check:
        root: "{{ node_root }}"
        providers: [nvme0]
        clients: [nvme2n1]
      register: far
      ignore_errors: true

    - name: Warnings fail the task with fail_on=warn
      p2pdma.storage.p2p_check:
        root: "{{ node_root }}"
        fail_on: warn
      register: strict
      ignore_errors: true

    - name: Accepting the known WARN makes the node PASS
      p2pdma.storage.p2p_check:
        root: "{{ node_root }}"
        providers: [nvme0]
        clients: [mlx5_0, nvme1n1]
        fail_on: warn
        accept:
          rdma:rxe0: soft-RoCE carries the management network only
      register: accepted

    - name: fail_on never reports a FAIL without failing
      p2pdma.storage.p2p_check:
        root: "{{ node_root }}"
        providers: [nvme0]
        clients: [nvme2n1]
        fail_on: never
      register: reported

    - name: An unknown device is a one-line failure
      p2pdma.storage.p2p_check:
        root: "{{ node_root }}"
        clients: [nvme9]
      register: unknown
      ignore_errors: true

    - name: A policy outside the choices is refused by the argument spec
      p2pdma.storage.p2p_check:
        root: "{{ node_root }}"
        policy: anywhere
      register: bad_policy
      ignore_errors: true

    - name: Keep what the modules returned
      ansible.builtin.copy:
        dest: "{{ results_file }}"
        content: "{{ {'facts': ansible_facts.p2pdma, 'good': good, 'checked': checked, 'far': far,
                      'strict': strict, 'unknown': unknown, 'bad_policy': bad_policy,
                      'accepted': accepted, 'reported': reported} | to_json }}"
"""


# The p2p_check action judges in Ansible's own process on a local connection without become; with become
# (su, which root may use without a password) the module runs in a process of its own, as on a remote node.
# Every test below holds for both.
WAYS = {
    "in the controller's process": {},
    "as a module process": {"ansible_become": True, "ansible_become_method": "su"},
}


@pytest.fixture(scope="module", params=sorted(WAYS))
def results(request, tmp_path_factory):
    base = tmp_path_factory.mktemp("modules")
    tree = switch_node(base / "node")
    tree.rxe("rxe0", netdev="eth0")
    playbook = base / "check.yml"
    playbook.write_text(textwrap.dedent(PLAYBOOK))
    results_file = base / "results.json"
    _play(playbook, dict(WAYS[request.param], node_root=tree.root, results_file=str(results_file)))
    return json.loads(results_file.read_text())


def _play(playbook, extra_vars, *options: str) -> subprocess.CompletedProcess:
    """ansible-playbook on localhost with a local connection; it must succeed."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"])
    run = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), *options, "-i", "localhost,", "-c", "local", str(playbook),
         "-e", json.dumps(dict(extra_vars, ansible_python_interpreter=sys.executable))],
        capture_output=True, text=True, cwd=REPO, env=env, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def test_facts_hold_the_model(results):
    facts = results["facts"]
    assert facts["functions"]["0000:03:00.0"]["p2pmem"] == {
        "size": CMB_16M.size_bytes, "available": CMB_16M.size_bytes, "published": True, "allocate": False}
    assert facts["nvme"]["nvme0"]["cmb"]["publishable"] is True
    assert facts["rdma"]["rxe0"]["software"] == "rxe"
    assert facts["kernel"]["release"] == "6.1.0-28-amd64"


def test_check_returns_the_node_report_and_verdicts(results):
    good = results["good"]
    assert not good.get("failed") and good["changed"] is False
    assert good["format"] == "p2pdma.storage/report/v1"
    assert good["status"] == "WARN"  # rxe0 on the node: p2pmem is never used for it
    assert good["summary"] == {"PASS": len(good["checks"]) - 1, "WARN": 1, "FAIL": 0, "accepted": 0}
    assert {c["id"] for c in good["checks"] if c["status"] != "PASS"} == {"rdma:rxe0"}
    assert good["warnings"] == [next(
        "rdma:rxe0: %s; fix: %s" % (c["why"], c["fix"]) for c in good["checks"] if c["id"] == "rdma:rxe0")]
    assert [(p["client_name"], p["map_type"], p["distance"]) for p in good["pairs"]] == [
        ("mlx5_0", "bus_addr", 4), ("nvme1n1", "bus_addr", 4)]
    (verdict,) = good["verdicts"]
    assert (verdict["provider"], verdict["supported"], verdict["distance"]) == ("0000:03:00.0", True, 8)
    assert [c["map_type"] for c in verdict["clients"]] == ["bus_addr", "bus_addr"]


def test_check_mode_gives_the_same_answer(results):
    assert results["checked"]["checks"] == results["good"]["checks"]


def test_a_fail_fails_the_task_and_msg_names_the_first_fail_and_its_fix(results):
    far = results["far"]
    assert far["failed"] is True
    first = next(c for c in far["checks"] if c["status"] == "FAIL")
    assert first["id"] == "locality:0000:03:00.0" and "not in the P2PDMA whitelist" in first["why"]
    assert "first FAIL %s: %s; fix: %s" % (first["id"], first["why"], first["fix"]) in far["msg"]
    assert far["verdicts"][0]["clients"][0]["map_type"] == "not_supported"


def test_an_accepted_warn_is_reported_but_does_not_count(results):
    accepted = results["accepted"]
    assert not accepted.get("failed") and accepted["status"] == "PASS"
    (record,) = [c for c in accepted["checks"] if c["id"] == "rdma:rxe0"]
    assert (record["status"], record["accepted"]) == ("WARN", True)
    assert record["accept_reason"] == "soft-RoCE carries the management network only"
    assert accepted["summary"]["accepted"] == 1 and not accepted.get("warnings")


def test_fail_on_never_reports_a_fail(results):
    reported = results["reported"]
    assert not reported.get("failed") and reported["status"] == "FAIL"
    assert reported["msg"].startswith("FAIL: ")


def test_fail_on_warn(results):
    assert results["strict"]["failed"] is True
    assert "rdma:rxe0" in results["strict"]["msg"]


def test_unknown_device_and_bad_option_fail_with_one_line(results):
    assert results["unknown"]["failed"] is True
    assert results["unknown"]["msg"].startswith("unknown device 'nvme9'")
    assert "\n" not in results["unknown"]["msg"] and "; fix: pick one of" in results["unknown"]["msg"]
    assert "value of policy must be one of: kernel, switch" in results["bad_policy"]["msg"]


@pytest.mark.parametrize("way", sorted(WAYS))
def test_only_become_or_a_remote_node_starts_a_module_process(way, tmp_path):
    playbook = tmp_path / "one.yml"
    playbook.write_text(textwrap.dedent("""
        - hosts: localhost
          gather_facts: false
          tasks:
            - p2pdma.storage.p2p_check:
                root: "{{ node_root }}"
                fail_on: never
    """))
    run = _play(playbook, dict(WAYS[way], node_root=switch_node(tmp_path / "node").root), "-vvv")
    # -vvv shows each command a connection runs: the module's AnsiballZ payload, or nothing.
    assert ("AnsiballZ_p2p_check" in run.stdout) == bool(WAYS[way]), run.stdout
