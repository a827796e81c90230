"""p2pctl provision: the real site playbook through ansible-runner on local-connection hosts judged from captured
guests' snapshots, with hosts that do not answer, a refused inventory and a real Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator

import pytest
import yaml

from p2pctl.provision import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_UNREACHABLE,
    KERNEL_INSTALL_FILES,
    KERNEL_INSTALL_TASKS,
    PHASE_ORDER,
    PHASES,
    Fleet,
    safety,
)
from p2pctl.runner import PlaybookRun, run_playbook
from tests.unit.test_cli import P2PCTL, p2pctl

CHECKOUT = Path(__file__).resolve().parents[2]
GUESTS = CHECKOUT / "tests" / "fixtures" / "guests" / "linux-6.12"


def snapshot_host(name: str, **more) -> dict:
    """A host judged from a captured lab guest, on this machine."""
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "p2p_check_root": str(GUESTS / name / "snapshot.tar.gz"), **more}


def write_inventory(path: Path, hosts: Dict[str, dict]) -> str:
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return str(path)


def by_host(stdout: str) -> Dict[str, dict]:
    return {entry["host"]: entry for entry in json.loads(stdout)["hosts"]}


def test_the_verify_phase_reports_every_node_and_one_that_does_not_answer(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "switch": snapshot_host("switch"),
        "rootports": snapshot_host("rootports"),
        # Nothing listens on the discard port: ssh is refused at once.
        "gone": {"ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_connection": "ssh"},
    })
    log = tmp_path / "run.log"
    result = p2pctl("provision", "--inventory", inventory, "--tags", "verify", "--forks", "4", "--json",
                    "--log", str(log))
    assert result.returncode == EXIT_UNREACHABLE, result.stderr
    hosts = by_host(result.stdout)
    for name in ("switch", "rootports"):
        assert hosts[name]["status"] == "ok" and hosts[name]["phase"] == "verify"
        assert hosts[name]["failed"] == 0 and hosts[name]["unreachable"] == 0
        # The node report's checks, as p2pctl check --json gives them.
        ids = {check["id"] for check in hosts[name]["checks"]}
        assert "kernel-p2pdma" in ids and {"status", "why", "fix"} <= set(hosts[name]["checks"][0])
    assert "provider:0000:02:00.0" in {c["id"] for c in hosts["rootports"]["checks"]}
    gone = hosts["gone"]
    assert (gone["status"], gone["unreachable"], gone["checks"]) == ("unreachable", 1, [])
    assert "Connection refused" in gone["errors"][0]
    assert "TASK [p2pdma.storage.p2p_check : Judge the node as its kernel would]" in log.read_text()


def test_the_summary_table_names_each_host_with_its_counts(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "hosts.yml", {"switch": snapshot_host("switch")})
    result = p2pctl("provision", "-i", inventory, "--tags", "verify", "--limit", "switch")
    assert result.returncode == 0, result.stdout + result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["host", "status", "phase", "ok", "changed", "failed", "unreachable", "checks",
                              "elapsed"]
    # The limit keeps the controller, which builds the kernel (here it only validates and checks arguments).
    assert [row.split()[:3] for row in rows] == [["localhost", "ok", "kernel_build"], ["switch", "ok", "verify"]]
    assert rows[1].split()[3:7] == ["5", "0", "0", "0"]


@pytest.mark.parametrize("limit", ["switch,rootports", "switch:rootports"])
def test_a_limit_of_several_hosts_keeps_each_of_them_and_the_controller(tmp_path: Path, limit: str) -> None:
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "switch": snapshot_host("switch"), "rootports": snapshot_host("rootports"), "other": snapshot_host("switch"),
    })
    result = p2pctl("provision", "-i", inventory, "--tags", "verify", "--limit", limit, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(by_host(result.stdout)) == {"localhost", "switch", "rootports"}


def test_validation_refuses_every_host_before_any_change(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "switch": snapshot_host("switch", kernel_instal_use_cmb_sqes=False),
        "rootports": snapshot_host("rootports"),
    })
    # Every phase asked for: validation must stop the run before the kernel build on this machine.
    result = p2pctl("provision", "-i", inventory, "--json")
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    hosts = by_host(result.stdout)
    assert {name: (h["status"], h["phase"], h["changed"]) for name, h in hosts.items()} == {
        "switch": ("refused", "validate", 0), "rootports": ("refused", "validate", 0),
        "localhost": ("refused", "validate", 0),
    }
    refusal = hosts["switch"]["errors"][0]
    assert "variable kernel_instal_use_cmb_sqes is declared by no role of p2pdma.storage" in refusal
    assert "fix: rename it to kernel_install_use_cmb_sqes" in refusal
    assert "validation found problems on switch" in hosts["rootports"]["errors"][0]


def test_a_tag_the_site_playbook_does_not_have_is_bad_input(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "hosts.yml", {"switch": snapshot_host("switch")})
    result = p2pctl("provision", "-i", inventory, "--tags", "verfy")
    assert result.returncode == EXIT_BAD_INPUT
    assert "'verfy' is no tag of the site playbook" in result.stderr


@pytest.fixture
def silent_ssh_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word: ssh waits there for the server's banner."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def test_ctrl_c_stops_the_run_and_says_where_each_node_was_left(tmp_path: Path, silent_ssh_port: int) -> None:
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "stuck": {"ansible_host": "127.0.0.1", "ansible_port": silent_ssh_port, "ansible_connection": "ssh",
                  "ansible_timeout": 300},
    })
    # A user's Ctrl-C reaches a foreground command; a test run started in the background by a
    # non-interactive shell ignores SIGINT, and its children would inherit that and never see it.
    process = subprocess.Popen([P2PCTL, "provision", "-i", inventory], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # Without a terminal, progress is a line per host and phase on stderr: the host has started validation.
        assert process.stderr is not None
        for line in process.stderr:
            if line.strip() == "stuck: validate":
                break
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED, stderr
    row = next(line for line in stdout.splitlines() if line.startswith("stuck"))
    assert row.split()[1:3] == ["interrupted", "validate"]
    assert "yes" in row.split() and "validation only; nothing changed" in row
    assert "Interrupted: provision again to continue" in stdout


def plays(playbook: Path) -> Iterator[str]:
    for entry in yaml.safe_load(playbook.read_text()):
        if "ansible.builtin.import_playbook" in entry:
            yield from plays(playbook.parent / entry["ansible.builtin.import_playbook"])
        else:
            yield entry["name"]


def test_every_play_of_the_site_playbook_is_a_phase_in_order() -> None:
    phases = [PHASES[name] for name in plays(CHECKOUT / "playbooks" / "site.yml")]
    assert phases == list(PHASE_ORDER)


def test_the_safety_tables_name_files_and_tasks_kernel_install_has() -> None:
    task_dir = CHECKOUT / "roles" / "kernel_install" / "tasks"
    assert set(KERNEL_INSTALL_FILES) <= {path.name for path in task_dir.glob("*.yml")}
    tasks = {
        task["name"]
        for path in task_dir.glob("*.yml")
        for entry in yaml.safe_load(path.read_text())
        for task in [entry, *entry.get("block", []), *entry.get("rescue", [])]
    }
    assert set(KERNEL_INSTALL_TASKS) <= tasks


@pytest.mark.parametrize(
    ("task", "task_path", "safe", "said"),
    [
        ("Reboot into it", "/c/roles/kernel_install/tasks/boot.yml:31", True,
         "trial boot pending; the default kernel is unchanged"),
        ("Read the release the node runs", "/c/roles/kernel_install/tasks/verify.yml:2", True, "trial boot pending"),
        ("Install the image package", "/c/roles/kernel_install/tasks/package.yml:22", False, "dpkg --configure -a"),
        ("Reboot back into the previous kernel", "/c/roles/kernel_install/tasks/fallback.yml:8", True,
         "falling back to the previous kernel"),
    ],
)
def test_a_node_stopped_in_kernel_install_is_judged_by_the_trial_boot_design(task, task_path, safe, said) -> None:
    verdict = safety("kernel_install", task, task_path)
    assert verdict[0] is safe and said in verdict[1]


def test_tags_forks_and_extra_vars_reach_ansible_playbook_as_typed() -> None:
    run = PlaybookRun(CHECKOUT / "playbooks" / "site.yml", inventory="hosts", tags=("nvme", "verify"),
                      skip_tags=("kernel_build",), forks=10, extra_vars_args=("a=1", "@vars.yml"))
    assert run.argv()[3:] == ["--tags", "nvme,verify", "--skip-tags", "kernel_build", "--forks", "10",
                              "-e", "a=1", "-e", "@vars.yml", str(run.playbook)]


def test_a_failure_without_msg_is_reported_with_ansibles_reason(tmp_path: Path) -> None:
    playbook = tmp_path / "missing_role.yml"
    playbook.write_text("- name: Configure the NVMe-oF target\n  hosts: localhost\n  gather_facts: false\n"
                        "  tasks:\n    - name: Include a role that is not there\n"
                        "      ansible.builtin.include_role:\n        name: no_such_role\n")
    fleet = Fleet()
    for event in run_playbook(PlaybookRun(playbook), hosts_may_fail=True):
        fleet.feed(event)
    host = fleet.hosts["localhost"]
    assert (host.status, host.phase) == ("failed", "nvmet")
    assert host.errors[0].startswith("Include a role that is not there: the role 'no_such_role' was not found")
