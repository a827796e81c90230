# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report: one entry per node, each built from that node's report (format report/v1).

A node whose check ran carries its report and that report's status. A node that did not
answer is UNREACHABLE, and one whose check task failed before judging (a missing snapshot,
no Python) is ERROR; both carry Ansible's message instead of a report. Neither stops the
other nodes from being judged. The fleet's status is its worst node's.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import FAIL, PASS, WARN
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import natural_key
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.report import REPORT_FORMAT, REPORT_KEYS

FLEET_FORMAT = "p2pdma.storage/fleet/v1"
UNREACHABLE = "UNREACHABLE"
ERROR = "ERROR"
# Worst last: a node whose state is unknown counts above one known to fail.
NODE_STATUSES = (PASS, WARN, FAIL, ERROR, UNREACHABLE)


def judged_entry(host: str, result: Mapping[str, Any]) -> Dict[str, Any]:
    """The entry of a node whose p2p_check task returned ``result`` (the report among Ansible's keys)."""
    report = {key: result[key] for key in REPORT_KEYS if key in result}
    if report.get("format") != REPORT_FORMAT:
        return failed_entry(host, ERROR, "the p2p_check result is not a %s report (format %r)"
                            % (REPORT_FORMAT, report.get("format")))
    return {"host": host, "status": report["status"], "message": None, "report": report}


def failed_entry(host: str, status: str, message: Optional[str]) -> Dict[str, Any]:
    """The entry of a node that was not judged: UNREACHABLE or ERROR, with Ansible's message."""
    return {"host": host, "status": status, "message": message or None, "report": None}


def fleet_document(entries: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """The fleet report: format, status (the worst node's), count of nodes per status, and the nodes by name."""
    nodes = sorted(entries, key=lambda entry: natural_key(entry["host"]))
    statuses = [entry["status"] for entry in nodes]
    return {
        "format": FLEET_FORMAT,
        "status": max(statuses, key=NODE_STATUSES.index, default=PASS),
        "summary": {status: statuses.count(status) for status in NODE_STATUSES},
        "nodes": [dict(entry) for entry in nodes],
    }


def failing_checks(report: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The checks of a node report that count against it (FAIL first, then WARNs that are not accepted)."""
    counting = [c for c in report["checks"] if c["status"] != PASS and not c["accepted"]]
    return [c for c in counting if c["status"] == FAIL] + [c for c in counting if c["status"] == WARN]


__all__ = [
    "ERROR",
    "FLEET_FORMAT",
    "NODE_STATUSES",
    "UNREACHABLE",
    "failed_entry",
    "failing_checks",
    "fleet_document",
    "judged_entry",
]
