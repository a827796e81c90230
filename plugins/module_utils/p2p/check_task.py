# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The p2p_check task: its arguments and its result.

The module runs it on a node. Its action runs it in the controller's own process when the module
would run on the controller anyway (a local connection without become, as when a fleet's snapshots
are judged with ``p2p_check_root``): the same arguments give the same result either way, without a
Python process per node started just to load the engine again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import FAIL, POLICIES, WARN
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.report import judge_node, summary_line
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root

# The statuses that fail the task, per fail_on.
FAILING_STATUSES = {"fail": (FAIL,), "warn": (FAIL, WARN), "never": ()}

# Ansible's argument spec of the task (the module's DOCUMENTATION describes each option).
ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "providers": {"type": "list", "elements": "str", "default": []},
    "clients": {"type": "list", "elements": "str", "default": []},
    "policy": {"type": "str", "choices": list(POLICIES), "default": "kernel"},
    "accept": {"type": "dict", "default": {}},
    "root": {"type": "path", "default": "/"},
    "fail_on": {"type": "str", "choices": list(FAILING_STATUSES), "default": "fail"},
}


@dataclass(frozen=True)
class CheckTaskResult:
    """What the task returns: its result keys, the Ansible warnings, and whether it fails."""

    result: Dict[str, Any]
    warnings: List[str]
    failed: bool


def run_check_task(params: Mapping[str, Any]) -> CheckTaskResult:
    """Judge the node at ``params['root']`` with validated task arguments. Raises P2PError on bad input."""
    results, report = judge_node(
        read_node(open_root(params["root"])),
        params["providers"],
        params["clients"],
        params["policy"],
        {str(k): "" if v is None else str(v) for k, v in params["accept"].items()},
    )
    warnings = [
        "%s: %s%s" % (result.id, result.why, "; fix: %s" % result.fix if result.fix else "")
        for result in results
        if result.counted_status == WARN
    ]
    verdicts = [verdict.to_dict() for result in results for verdict in result.verdicts]
    return CheckTaskResult(
        result=dict(report, msg=summary_line(report), verdicts=verdicts),
        warnings=warnings,
        failed=report["status"] in FAILING_STATUSES[params["fail_on"]],
    )


__all__ = ["ARGUMENT_SPEC", "FAILING_STATUSES", "CheckTaskResult", "run_check_task"]
