"""The playbook runner, on a real (tiny, local) playbook run by ansible-runner."""

import json
import sys

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import collection_root
from p2pctl.runner import PlaybookRun, local_inventory, run_playbook

PLAYBOOK = """
- name: A tiny play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write the greeting
      ansible.builtin.copy:
        content: "{{ greeting }}\\n"
        dest: "{{ target }}"
        mode: "0644"

    - name: Fail when asked
      ansible.builtin.fail:
        msg: "asked to fail for {{ greeting }}"
      when: fail | default(false) | bool
"""


@pytest.fixture
def playbook(tmp_path):
    path = tmp_path / "tiny.yml"
    path.write_text(PLAYBOOK)
    return path


def test_a_run_is_a_value_to_inspect(playbook):
    run = PlaybookRun(playbook, extravars={"greeting": "hi"}, check=True, diff=True, limit="localhost")
    assert run.argv() == [
        "ansible-playbook", "-i", "<inline inventory>", "--limit", "localhost",
        "-e", json.dumps({"greeting": "hi"}), "--check", "--diff", str(playbook),
    ]
    assert run.env()["ANSIBLE_CONFIG"] == str(collection_root() / "ansible.cfg")
    options = run.runner_options("/tmp/private")
    assert options["cmdline"] == "--check --diff"
    assert options["inventory"]["all"]["hosts"]["localhost"]["ansible_python_interpreter"] == sys.executable
    assert options["extravars"] == {"greeting": "hi"}


def test_events_come_as_the_playbook_runs(playbook, tmp_path):
    target = tmp_path / "greeting.txt"
    run = PlaybookRun(playbook, extravars={"greeting": "hello", "target": str(target)})
    events = list(run_playbook(run))
    kinds = [event["event"] for event in events]
    assert kinds[0] == "playbook_on_start" and kinds[-1] == "playbook_on_stats"
    started = [e["event_data"]["task"] for e in events if e["event"] == "playbook_on_task_start"]
    assert started == ["Write the greeting", "Fail when asked"]
    changed = [e for e in events if e["event"] == "runner_on_ok" and e["event_data"]["res"].get("changed")]
    assert [e["event_data"]["task"] for e in changed] == ["Write the greeting"]
    assert target.read_text() == "hello\n"


def test_check_mode_changes_nothing(playbook, tmp_path):
    target = tmp_path / "greeting.txt"
    run = PlaybookRun(playbook, extravars={"greeting": "hello", "target": str(target)}, check=True)
    stats = [e for e in run_playbook(run) if e["event"] == "playbook_on_stats"]
    assert stats[0]["event_data"]["changed"] == {"localhost": 1}
    assert not target.exists()


def test_a_failed_task_is_named_after_its_events(playbook, tmp_path):
    run = PlaybookRun(
        playbook,
        inventory=local_inventory(),
        extravars={"greeting": "hello", "target": str(tmp_path / "greeting.txt"), "fail": True},
    )
    seen = []
    failed = "tiny.yml failed .*task 'Fail when asked' on localhost: asked to fail for hello"
    with pytest.raises(P2PError, match=failed):
        for event in run_playbook(run):
            seen.append(event["event"])
    assert "runner_on_failed" in seen


def test_forks_tags_and_pipelining_reach_ansible_playbook(playbook):
    run = PlaybookRun(playbook, forks=10, tags=("judge",))
    assert run.argv()[-5:] == ["--tags", "judge", "--forks", "10", str(playbook)]
    assert run.runner_options("/tmp/private")["cmdline"] == "--tags judge --forks 10"
    assert run.env()["ANSIBLE_PIPELINING"] == "True"


def test_failed_hosts_are_the_caller_s_to_report_when_it_says_so(playbook, tmp_path):
    run = PlaybookRun(playbook, extravars={"greeting": "hello", "target": str(tmp_path / "g.txt"), "fail": True})
    events = list(run_playbook(run, hosts_may_fail=True))
    assert [e["event_data"]["task"] for e in events if e["event"] == "runner_on_failed"] == ["Fail when asked"]
    assert events[-1]["event"] == "playbook_on_stats"


def test_a_broken_playbook_still_raises_when_hosts_may_fail(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("- hosts: localhost\n  tasks:\n    - no.such.module_anywhere: {}\n")
    with pytest.raises(P2PError, match="broken.yml failed"):
        list(run_playbook(PlaybookRun(broken), hosts_may_fail=True))
