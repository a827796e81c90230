"""Run the collection's playbooks with ansible-runner and hand their events to the caller.

What runs (a :class:`PlaybookRun`: playbook, inventory, extra vars, environment) is a value
built apart from running it, so that commands and tests can inspect it without Ansible.
:func:`run_playbook` runs it and yields ansible-runner's events as they come; a command
shows them as it likes (``p2pctl kernel build`` with a status line, ``provision`` next).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import collection_root

# How often the event loop looks whether the run has ended without a last event (a crash of ansible-runner).
_POLL_SECONDS = 0.2
FAILED_EVENTS = ("runner_on_failed", "runner_on_unreachable")
CHECK_ACTION = "p2pdma.storage.p2p_check"
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

Inventory = Union[str, Dict[str, Any]]


def local_inventory() -> Dict[str, Any]:
    """This host as the only target: a local connection, modules run by this very interpreter."""
    return {
        "all": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}
        }
    }


def check_result(event: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The result of a p2p_check task in ``event`` (the node's report among Ansible's keys), else None.

    Told by the action Ansible resolved, not by a task's name or a playbook's play, so the report is
    found wherever a playbook runs the module.
    """
    data = event.get("event_data") or {}
    result = data.get("res")
    if event.get("event") == "runner_on_ok" and data.get("resolved_action") == CHECK_ACTION:
        return result if isinstance(result, dict) else None
    return None


@dataclass(frozen=True)
class PlaybookRun:
    """One ansible-playbook run: everything it needs, nothing run yet."""

    playbook: Path
    inventory: Inventory = field(default_factory=local_inventory)  # a path, or an inventory as a dict
    extravars: Mapping[str, Any] = field(default_factory=dict)
    limit: Optional[str] = None
    check: bool = False
    diff: bool = False
    envvars: Mapping[str, str] = field(default_factory=dict)
    tags: Sequence[str] = ()
    skip_tags: Sequence[str] = ()
    forks: Optional[int] = None
    # -e values as the user typed them (key=value, JSON, @file), for Ansible to parse as it always does.
    extra_vars_args: Sequence[str] = ()

    def options(self) -> List[str]:
        """The command line options besides inventory, limit and extra vars."""
        options = (["--check"] if self.check else []) + (["--diff"] if self.diff else [])
        if self.tags:
            options += ["--tags", ",".join(self.tags)]
        if self.skip_tags:
            options += ["--skip-tags", ",".join(self.skip_tags)]
        if self.forks is not None:
            options += ["--forks", str(self.forks)]
        for value in self.extra_vars_args:
            options += ["-e", value]
        return options

    def argv(self) -> List[str]:
        """The ansible-playbook command this run amounts to (for the user to read or repeat)."""
        argv = ["ansible-playbook", "-i", self.inventory if isinstance(self.inventory, str) else "<inline inventory>"]
        if self.limit:
            argv += ["--limit", self.limit]
        if self.extravars:
            argv += ["-e", json.dumps(dict(self.extravars), sort_keys=True)]
        return argv + self.options() + [str(self.playbook)]

    def env(self) -> Dict[str, str]:
        """Variables set for the run on top of this process's environment."""
        env = {
            # The ansible-playbook next to this interpreter, whether or not its virtualenv is active.
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)]),
            # One SSH round trip per task instead of several, also where the checkout's ansible.cfg is not read.
            "ANSIBLE_PIPELINING": "True",
        }
        config = collection_root() / "ansible.cfg"
        if config.is_file():
            env["ANSIBLE_CONFIG"] = str(config)
        env.update(self.envvars)
        return env

    def runner_options(self, private_data_dir: str) -> Dict[str, Any]:
        """Keyword arguments of ansible_runner.run for this run."""
        return {
            "private_data_dir": private_data_dir,
            "playbook": str(self.playbook),
            "inventory": self.inventory,
            "extravars": dict(self.extravars),
            "limit": self.limit,
            "cmdline": shlex.join(self.options()) or None,
            "envvars": self.env(),
            "quiet": True,
            "suppress_env_files": True,
        }


def run_playbook(run: PlaybookRun, hosts_may_fail: bool = False) -> Iterator[Dict[str, Any]]:
    """Run ``run`` and yield each ansible-runner event as it happens.

    Raises P2PError after the last event when the playbook failed, naming the failed tasks.
    With ``hosts_may_fail`` a run whose only failures are failed or unreachable hosts does not
    raise: the caller reports them per host from the events. Stopping the iteration early
    cancels the run.
    """
    import ansible_runner  # only the commands that run playbooks pay for importing it

    # A SimpleQueue, not a Queue: Ctrl-C lands in the main thread while it waits in get(), and a
    # KeyboardInterrupt between a Queue's Python-level lock and its `with` can leave that lock held, so
    # the runner thread's next put() would wait forever and so would the join below. SimpleQueue is C
    # code whose put() never blocks.
    events: queue.SimpleQueue = queue.SimpleQueue()
    cancelled = threading.Event()
    failures: List[str] = []
    errors: List[str] = []  # Ansible's own errors (no hosts matched, a bad playbook): no task event carries them
    with tempfile.TemporaryDirectory(prefix="p2pctl-run-") as private_data_dir:
        thread, runner = ansible_runner.run_async(
            **run.runner_options(private_data_dir),
            event_handler=lambda event: _keep(events, event),
            cancel_callback=cancelled.is_set,
        )
        try:
            while thread.is_alive() or not events.empty():
                try:
                    event = events.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    continue
                failure = _failure(event)
                if failure:
                    failures.append(failure)
                error = _ansible_error(event)
                if error:
                    errors.append(error)
                yield event
        finally:
            cancelled.set()
            thread.join()
    if runner.status != "successful" and not (hosts_may_fail and failures and runner.status == "failed"):
        reasons = failures or errors
        raise P2PError(
            "playbook %s %s (ansible-playbook exit %s)%s"
            % (run.playbook.name, runner.status, runner.rc, ": " + "; ".join(reasons) if reasons else ""),
            # A failed task's message carries its own fix, and Ansible's error names its cause.
            fix=None if reasons else "read Ansible's output above",
        )


def _keep(events: queue.SimpleQueue, event: Dict[str, Any]) -> bool:
    events.put(event)
    return True  # ansible-runner also writes it to the run's artifacts


def _ansible_error(event: Mapping[str, Any]) -> Optional[str]:
    """An ``[ERROR]: ...`` line Ansible printed outside any task, without its colours."""
    if event.get("event") != "verbose":
        return None
    line = _ANSI_ESCAPE.sub("", event.get("stdout") or "").strip()
    for prefix in ("[ERROR]: ", "ERROR! "):
        if line.startswith(prefix):
            return line[len(prefix):]
    return None


def _failure(event: Mapping[str, Any]) -> Optional[str]:
    if event.get("event") not in FAILED_EVENTS:
        return None
    data = event.get("event_data", {})
    if data.get("ignore_errors"):
        return None
    result = data.get("res", {})
    message = result.get("msg") if isinstance(result, dict) else None
    return "task %r on %s%s" % (data.get("task"), data.get("host"), ": %s" % message if message else "")


__all__ = ["FAILED_EVENTS", "PlaybookRun", "local_inventory", "run_playbook"]
