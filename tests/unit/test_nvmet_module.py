"""p2pdma.storage.nvmet run by ansible-playbook against localhost, on a configfs-shaped tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import read_target
from tests.support.configfs_tree import ConfigfsTree
from tests.unit.test_nvmet_plan import H1, S1

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
KEY = "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:"

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    target: &target
      root: "{{ node_root }}"
      hosts:
        - nqn: %(host)s
          dhchap: {key: "%(key)s", hash: hmac(sha384)}
      subsystems:
        - nqn: %(subsystem)s
          attr: {allow_any_host: false}
          allowed_hosts: [%(host)s]
          namespaces:
            - {nsid: 1, device: {path: /dev/nvme0n1}}
      ports:
        - portid: 1
          addr: {trtype: tcp, adrfam: ipv4, traddr: 192.0.2.10, trsvcid: "4420"}
          subsystems: [%(subsystem)s]
  tasks:
    - name: Check mode plans without writing
      p2pdma.storage.nvmet: *target
      check_mode: true
      diff: true
      register: checked

    - name: Converge
      p2pdma.storage.nvmet: *target
      register: first

    - name: Converge again
      p2pdma.storage.nvmet: *target
      register: second

    - name: A malformed NQN is refused
      p2pdma.storage.nvmet:
        root: "{{ node_root }}"
        subsystems: [{nqn: store1}]
      register: bad_nqn
      ignore_errors: true

    - name: A transport outside the choices is refused by the argument spec
      p2pdma.storage.nvmet:
        root: "{{ node_root }}"
        ports: [{portid: 2, addr: {trtype: iwarp}}]
      register: bad_trtype
      ignore_errors: true

    - name: Keep what the module returned
      ansible.builtin.copy:
        dest: "{{ results_file }}"
        content: "{{ {'checked': checked, 'first': first, 'second': second, 'bad_nqn': bad_nqn,
                      'bad_trtype': bad_trtype} | to_json }}"
""" % {"host": H1, "subsystem": S1, "key": KEY}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("nvmet")
    # The kernel makes the default groups (allowed_hosts, namespaces, a port's subsystems) on mkdir; a plain
    # directory does not, so the objects that hold links exist already, made as the kernel makes them.
    tree = ConfigfsTree(str(base / "node"))
    tree.device("/dev/nvme0n1")
    tree.host(H1)
    tree.subsystem(S1)
    tree.port(1)
    before = read_target(tree.root).to_dict()
    playbook = base / "nvmet.yml"
    playbook.write_text(textwrap.dedent(PLAYBOOK))
    results_file = base / "results.json"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"])
    extra_vars = {"node_root": tree.root.root, "results_file": str(results_file), "ansible_python_interpreter":
                  sys.executable}
    result = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
         "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, cwd=REPO, env=env, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {"results": json.loads(results_file.read_text()), "before": before, "tree": tree,
            "output": result.stdout}


def test_check_mode_reports_the_changes_it_would_make(run):
    checked = run["results"]["checked"]
    assert checked["changed"] is True
    assert [a["op"] for a in checked["actions"]] == [a["op"] for a in run["results"]["first"]["actions"]]
    assert checked["diff"]["before"] == run["before"]
    assert checked["diff"]["after"]["subsystems"][0]["namespaces"][0]["device"]["path"] == "/dev/nvme0n1"


def test_the_run_makes_configfs_match_and_a_second_run_changes_nothing(run):
    assert run["results"]["first"]["changed"] is True
    assert run["results"]["second"]["changed"] is False
    assert run["results"]["second"]["actions"] == []
    after = read_target(run["tree"].root).to_dict()
    assert after["ports"][0]["subsystems"] == [S1]
    assert after["subsystems"][0]["allowed_hosts"] == [H1]
    assert after["subsystems"][0]["namespaces"][0]["enable"] == 1
    assert after["hosts"][0]["dhchap"]["key"] == KEY


def test_secrets_never_reach_the_output(run):
    assert KEY not in json.dumps(run["results"])
    assert KEY not in run["output"]
    assert run["results"]["first"]["diff"]["after"]["hosts"][0]["dhchap"]["key"] == "********"


def test_refusals_are_one_line_failures(run):
    assert run["results"]["bad_nqn"]["failed"] is True
    assert "subsystem NQN 'store1' is not in the NVMe spec's format; fix: " in run["results"]["bad_nqn"]["msg"]
    assert run["results"]["bad_trtype"]["failed"] is True
    assert "trtype" in run["results"]["bad_trtype"]["msg"]
