"""Judge a fleet: the check playbook over an inventory through ansible-runner, one report per node.

The p2p_check task's result on each host is that node's report (format report/v1); ansible-runner's
events carry it, so nothing is read from Ansible's screen output. A host that does not answer, or
whose task fails before judging, becomes an UNREACHABLE or ERROR entry and the others go on.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from rich.console import Console
from rich.table import Table

from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import collection_root
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fleet import (
    ERROR,
    NODE_STATUSES,
    UNREACHABLE,
    failed_entry,
    failing_checks,
    fleet_document,
    judged_entry,
)
from p2pctl.runner import Inventory, PlaybookRun, check_result, run_playbook

# The judging task only: the fleet report shows every non-PASS check itself, so the role's per-check debug
# task and its fail task (which would also cost a task per host) are left out. So is the role's argument
# validation (tagged always), a third of a simulated node's cost: the judging task validates the same values
# with the p2p_check module's argument spec, and a bad one makes that node ERROR with the option named.
CHECK_TAGS = ("p2p_check_judge",)
SKIPPED_TAGS = ("always",)


def fleet_run(
    inventory: Inventory,
    limit: Optional[str] = None,
    forks: Optional[int] = None,
    extravars: Optional[Mapping[str, Any]] = None,
) -> PlaybookRun:
    """The check playbook over ``inventory``, judging every node and failing none on its verdict."""
    return PlaybookRun(
        playbook=collection_root() / "playbooks" / "check.yml",
        inventory=inventory,
        limit=limit,
        forks=forks,
        tags=CHECK_TAGS,
        skip_tags=SKIPPED_TAGS,
        extravars=dict(extravars or {}, p2p_check_fail_on="never"),
    )


def collect_entries(events: Iterable[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """One fleet entry per host seen in ``events``, from its p2p_check result or its failure."""
    entries: Dict[str, Dict[str, Any]] = {}
    for event in events:
        kind = event.get("event")
        data = event.get("event_data", {})
        host = data.get("host")
        result = data.get("res")
        if not host or not isinstance(result, dict):
            continue
        if kind == "runner_on_unreachable":
            entries[host] = failed_entry(host, UNREACHABLE, result.get("msg"))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            entries[host] = failed_entry(host, ERROR, "task %r: %s" % (data.get("task"), result.get("msg")))
        elif check_result(event) is not None:
            entries[host] = judged_entry(host, result)
    return entries


def check_fleet(run: PlaybookRun, progress: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """Run ``run`` (see :func:`fleet_run`) and return the fleet report.

    ``progress`` is called with each host's entry as it arrives (for a live count).
    """
    entries: Dict[str, Dict[str, Any]] = {}
    for event in run_playbook(run, hosts_may_fail=True):
        for host, entry in collect_entries([event]).items():
            entries[host] = entry
            if progress is not None:
                progress(entry)
    return fleet_document(list(entries.values()))


# Rich styles of the statuses (the HTML page has its own colours).
_STYLES = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", ERROR: "magenta", UNREACHABLE: "bold magenta"}


def print_fleet(fleet: Mapping[str, Any], console: Optional[Console] = None) -> None:
    """The fleet report as rich tables: a row per node, then each node's failing checks with why and fix."""
    console = console or Console(highlight=False)
    nodes = Table(title="P2PDMA fleet report", title_justify="left")
    for column in ("NODE", "STATUS", "KERNEL", "PASS", "WARN", "FAIL", "PROBLEMS"):
        nodes.add_column(column, overflow="fold")
    for entry in fleet["nodes"]:
        status = "[%s]%s[/]" % (_STYLES[entry["status"]], entry["status"])
        report = entry["report"]
        if report is None:
            nodes.add_row(entry["host"], status, "-", "-", "-", "-", entry["message"] or "")
            continue
        counts = report["summary"]
        problems = failing_checks(report)
        nodes.add_row(
            entry["host"], status, report["kernel"]["release"] or "unknown",
            str(counts["PASS"]), str(counts["WARN"]), str(counts["FAIL"]),
            " ".join(check["id"] for check in problems),
        )
    console.print(nodes)
    for entry in fleet["nodes"]:
        problems = failing_checks(entry["report"]) if entry["report"] else []
        if not problems:
            continue
        table = Table(title="%s: %s" % (entry["host"], entry["status"]), title_justify="left")
        for column in ("STATUS", "ID", "WHY / FIX"):
            table.add_column(column, overflow="fold")
        for check in problems:
            why = check["why"] + ("\nfix: %s" % check["fix"] if check["fix"] else "")
            table.add_row("[%s]%s[/]" % (_STYLES[check["status"]], check["status"]), check["id"], why)
        console.print(table)
    counts = fleet["summary"]
    console.print("%d node(s): %s" % (
        len(fleet["nodes"]), ", ".join("%d %s" % (counts[s], s) for s in NODE_STATUSES if counts[s]) or "none"))


__all__ = ["CHECK_TAGS", "check_fleet", "collect_entries", "fleet_run", "print_fleet"]
