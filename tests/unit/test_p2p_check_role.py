"""The p2pdma.storage.p2p_check role through playbooks/check.yml, judging snapshots with a local connection.

Each inventory host points p2p_check_root at a tree or a captured guest snapshot, as a fleet judged offline
would: the role must show every non-PASS check with its fix before it fails a host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.nodes import switch_node

REPO = Path(__file__).resolve().parents[2]
BIN = os.path.dirname(sys.executable)
PSEUDO_CMB = REPO / "tests" / "fixtures" / "guests" / "pseudo-cmb" / "snapshot.tar.gz"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> subprocess.CompletedProcess:
    base = tmp_path_factory.mktemp("role")
    inventory = {
        "all": {
            "hosts": {
                # nvme2n1 sits on another root port of an Intel node: the locality check FAILs.
                "far": {"p2p_check_root": switch_node(base / "far").root, "p2p_check_clients": ["nvme2n1"]},
                # The captured pseudo-CMB guest: WARNs only, so the default p2p_check_fail_on passes it.
                "pseudo": {"p2p_check_root": str(PSEUDO_CMB)},
                # The same guest, strict, with its WARNs accepted.
                "strict": {
                    "p2p_check_root": str(PSEUDO_CMB),
                    "p2p_check_fail_on": "warn",
                    "p2p_check_accept": {
                        "rdma": "this lab guest has no NIC",
                        "provider:0000:03:00.0": "the PMR drive waits for the pseudo-CMB kernel",
                        "provider:0000:04:00.0": "submission queues in the CMB are fine here",
                    },
                },
            },
            "vars": {"ansible_python_interpreter": sys.executable},
        }
    }
    (base / "hosts.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"],
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", str(base / "hosts.json"), "playbooks/check.yml"],
        capture_output=True, text=True, cwd=REPO, env=env, check=False,
    )


def _recap(run: subprocess.CompletedProcess, host: str) -> str:
    return next(line for line in run.stdout.splitlines() if line.startswith(host + " ") and "ok=" in line)


def test_a_fail_is_shown_with_its_fix_before_the_host_fails(run):
    assert run.returncode == 2, run.stdout + run.stderr
    shown = run.stdout.index("FAIL locality: no published provider can serve nvme2n1")
    failed = run.stdout.index("TASK [p2pdma.storage.p2p_check : Fail the host")
    assert shown < failed
    assert "; fix: move 0000:06:00.0 behind switch 0000:01:00.0" in run.stdout[shown:failed]
    assert "failed=1" in _recap(run, "far")


def test_warns_are_ansible_warnings_and_do_not_fail_by_default(run):
    assert "[WARNING]: provider:0000:03:00.0: 0000:03:00.0 (nvme0) has no p2pmem" in run.stderr
    assert "failed=0" in _recap(run, "pseudo")


def test_accepted_warns_let_a_strict_host_pass(run):
    assert "WARN rdma: no RDMA device" in run.stdout and "accepted: this lab guest has no NIC" in run.stdout
    assert "failed=0" in _recap(run, "strict")
