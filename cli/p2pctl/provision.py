"""``p2pctl provision``'s model of a site playbook run: every host's phase, task, counts and checks.

:class:`Fleet` is fed ansible-runner's events as they come (nothing is parsed from Ansible's text);
the command shows it live and summarises it. What a host was doing when the run stopped tells whether
the node is left safe (:func:`safety`): the kernel_install role's trial-boot design keeps the previous
kernel the default until the new one is verified.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from p2pctl.runner import check_result

# The site playbook's plays (playbooks/*.yml, by name) and the phase (tag) each one is.
PHASES: Dict[str, str] = {
    "Validate every host before any change": "validate",
    "Build the P2PDMA kernel package": "kernel_build",
    "Install the P2PDMA kernel": "kernel_install",
    "Check the NVMe CMBs": "nvme",
    "Configure the NVMe-oF target": "nvmet",
    "Check the nodes for PCIe peer-to-peer DMA": "verify",
}
PHASE_ORDER = ("validate", "kernel_build", "kernel_install", "nvme", "nvmet", "verify")

OK, FAILED, UNREACHABLE, INTERRUPTED, REFUSED = "ok", "failed", "unreachable", "interrupted", "refused"

# Exit status of p2pctl provision (documented in its --help).
EXIT_OK = 0
EXIT_BAD_INPUT = 2  # bad options or inventory, or validation refused the inventory (nothing changed)
EXIT_FAILED = 4  # a host failed in a phase
EXIT_UNREACHABLE = 5  # a host did not answer (and none failed)
EXIT_INTERRUPTED = 130  # Ctrl-C

# What a node is left with when the run stops in kernel_install: (safe, what), by the role's task file
# (roles/kernel_install/tasks/), and for the tasks that differ from their file, by task name.
_TRIAL = (True, "trial boot pending; the default kernel is unchanged (a reboot comes back on it)")
KERNEL_INSTALL_FILES: Dict[str, Tuple[bool, str]] = {
    "preflight.yml": (True, "read only; nothing changed"),
    "cmdline.yml": (True, "the GRUB command line may be written; the running and default kernels are unchanged"),
    "package.yml": (True, "the package is being copied; the running and default kernels are unchanged"),
    "boot.yml": _TRIAL,
    "verify.yml": _TRIAL,
    "fallback.yml": (True, "falling back to the previous kernel, which is still the default"),
}
KERNEL_INSTALL_TASKS: Dict[str, Tuple[bool, str]] = {
    "Install the image package": (
        False, "the kernel package install was cut short (dpkg may need 'dpkg --configure -a'); the default kernel "
        "is unchanged"),
    "Regenerate the GRUB menu for the new command line": (
        False, "the GRUB menu was being regenerated: run update-grub on the node, or provision again"),
    "Make the verified kernel the default": (
        True, "the new kernel is verified; it may not be the default yet (provision again)"),
}
PHASE_SAFETY: Dict[Optional[str], Tuple[bool, str]] = {
    None: (True, "not started; nothing changed"),
    "validate": (True, "validation only; nothing changed"),
    "kernel_build": (True, "the kernel build on the build host was stopped; the nodes are unchanged"),
    "kernel_install": (True, "the running and default kernels are unchanged"),
    "nvme": (True, "NVMe checks only read the node; nothing changed"),
    "nvmet": (False, "nvmet configfs may be half configured (the nvmet module undoes a failed change, not a killed "
              "one): provision again with --tags nvmet"),
    "verify": (True, "checks only read the node; the target is configured"),
}


def safety(phase: Optional[str], task: Optional[str], task_path: Optional[str] = None) -> Tuple[bool, str]:
    """Whether a node stopped in ``phase`` at ``task`` (of file ``task_path``) is safe, and what it is left with."""
    if phase == "kernel_install":
        if task in KERNEL_INSTALL_TASKS:
            return KERNEL_INSTALL_TASKS[task]
        task_file = os.path.basename((task_path or "").rsplit(":", 1)[0])
        if task_file in KERNEL_INSTALL_FILES:
            return KERNEL_INSTALL_FILES[task_file]
    return PHASE_SAFETY.get(phase, (False, "stopped in an unknown phase %s" % phase))


@dataclass
class Host:
    """One host as the events show it."""

    name: str
    phase: Optional[str] = None
    task: Optional[str] = None
    task_path: Optional[str] = None  # file:line of the task, which tells the role's stage
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: Optional[float] = None
    errors: List[str] = field(default_factory=list)
    checks: List[dict] = field(default_factory=list)
    finished: bool = False  # the playbook ended with this host in its stats

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def status(self) -> str:
        if self.unreachable:
            return UNREACHABLE
        if self.failed:
            return REFUSED if self.phase == "validate" else FAILED
        return OK if self.finished else INTERRUPTED

    def to_dict(self) -> dict:
        return {
            "host": self.name, "ok": self.ok, "changed": self.changed, "failed": self.failed,
            "unreachable": self.unreachable, "status": self.status, "phase": self.phase,
            "errors": list(self.errors), "checks": list(self.checks),
        }


class Fleet:
    """Every host of a run, updated event by event."""

    def __init__(self) -> None:
        self.hosts: Dict[str, Host] = {}
        self.play_phase: Optional[str] = None
        self.ended = False
        # Ansible's own lines that belong to no host (an inventory it cannot parse, a syntax error).
        self.messages: List[str] = []

    def host(self, name: str) -> Host:
        if name not in self.hosts:
            self.hosts[name] = Host(name)
        return self.hosts[name]

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.play_phase = PHASES.get(data.get("name") or data.get("play", ""), data.get("name"))
            return
        if kind == "playbook_on_stats":
            self._stats(data)
            return
        name = data.get("host")
        if kind in ("verbose", "error") and event.get("stdout"):
            self.messages.append(str(event["stdout"]).strip())
        if not name or not kind or not kind.startswith("runner_on_"):
            return
        host = self.host(name)
        host.phase = self.play_phase
        host.task = data.get("task")
        host.task_path = data.get("task_path")
        res = data.get("res")
        result: Dict[str, Any] = res if isinstance(res, dict) else {}
        if kind == "runner_on_ok":
            host.ok += 1
            host.changed += bool(result.get("changed"))
            report = check_result(event)
            # The verify phase's report; kernel_install also judges the node, on its way to the new kernel.
            if self.play_phase == "verify" and report is not None:
                host.checks = list(report.get("checks") or [])
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            host.failed += 1
            # An include that cannot load its role says why in 'reason', not 'msg'.
            host.errors.append("%s: %s" % (host.task, result.get("msg") or result.get("reason") or "failed"))
        elif kind == "runner_on_unreachable":
            host.unreachable += 1
            host.errors.append("%s: %s" % (host.task, result.get("msg", "unreachable")))
        elif kind == "runner_on_skipped":
            host.skipped += 1

    def _stats(self, data: Mapping[str, Any]) -> None:
        """The playbook's own counts per host, which also name hosts that had no task event of their own."""
        self.ended = True
        now = time.monotonic()
        for key, attr in (("ok", "ok"), ("changed", "changed"), ("failures", "failed"), ("dark", "unreachable"),
                          ("skipped", "skipped")):
            for name, count in (data.get(key) or {}).items():
                setattr(self.host(name), attr, count)
        for host in self.hosts.values():
            host.finished = True
            host.ended = host.ended or now

    def stop(self) -> None:
        """The run was interrupted: the hosts' clocks stop where they are."""
        now = time.monotonic()
        for host in self.hosts.values():
            host.ended = host.ended or now

    def exit_status(self) -> int:
        if not self.ended:
            return EXIT_INTERRUPTED
        statuses = {host.status for host in self.hosts.values()}
        if REFUSED in statuses:
            return EXIT_BAD_INPUT
        if FAILED in statuses:
            return EXIT_FAILED
        if UNREACHABLE in statuses:
            return EXIT_UNREACHABLE
        return EXIT_OK

    def to_dict(self) -> dict:
        return {"hosts": [self.hosts[name].to_dict() for name in sorted(self.hosts)]}


__all__ = [
    "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNREACHABLE", "Fleet", "Host",
    "KERNEL_INSTALL_FILES", "KERNEL_INSTALL_TASKS", "PHASES", "PHASE_ORDER", "safety",
]
