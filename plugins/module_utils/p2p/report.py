# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One versioned JSON report per node: what ``p2pctl check --json``, the p2p_check module and
the fleet report all give.

The format name carries the version: a consumer checks ``format`` before reading on, and a
change that renames or drops a key gets a new version. Pairs use the key names of
``p2pctl distance --json`` (:func:`pair_record`), so a pair reads the same everywhere.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import (
    FAIL,
    PASS,
    WARN,
    CheckResult,
    accept_warnings,
    judged_pairs,
    run_checks,
    worst_status,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import bdf_sort_key
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.rules import rules_for
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import PairVerdict

REPORT_FORMAT = "p2pdma.storage/report/v1"
# The keys of a report, which a p2p_check task result carries beside Ansible's own (changed, msg, invocation, ...).
REPORT_KEYS = (
    "format", "host", "root", "kernel", "policy", "status", "summary", "checks", "pairs", "tree", "accept_unmatched"
)


def pair_record(pair: PairVerdict) -> Dict[str, Any]:
    """One judged provider/client pair, as the report and ``p2pctl distance --json`` give it."""
    return {
        "provider": pair.provider,
        "client": pair.client,
        "client_name": pair.client_name,
        "map_type": pair.map_type,
        "distance": pair.distance,
        "acs_redirect": list(pair.acs_redirect),
        "path": list(pair.path),
        "reason": pair.reason,
        "kernel_params": list(pair.kernel_params),
        "fix": pair.fix,
    }


def pair_tree(node: Node, pairs: Sequence[PairVerdict]) -> List[Dict[str, Any]]:
    """The PCI functions the judged pairs involve: every provider and client and each bridge above them.

    One entry per function, parents before children, enough to draw the pairs' part of the PCI tree
    (root ports, switches, providers and clients under their host bridge) without the whole node model.
    """
    roles: Dict[str, str] = {}
    names: Dict[str, str] = {}
    for pair in pairs:
        roles[pair.provider] = "provider"
        if pair.client:
            roles.setdefault(pair.client, "client")
            if pair.client_name:
                names.setdefault(pair.client, pair.client_name)
    wanted: Dict[str, Optional[str]] = {}
    for bdf in roles:
        if bdf not in node.functions:
            continue
        chain = node.chain(bdf)
        for index, member in enumerate(chain):
            wanted.setdefault(member, chain[index + 1] if index + 1 < len(chain) else None)
    tree = []
    for bdf in sorted(wanted, key=lambda b: (len(node.chain(b)), bdf_sort_key(b))):
        fn = node.functions[bdf]
        tree.append(
            {
                "bdf": bdf,
                "parent": wanted[bdf],
                "host_bridge": fn.host_bridge,
                "port_type": fn.port_type,
                "role": roles.get(bdf, "bridge"),
                "name": names.get(bdf) or next((c.name for c in node.nvme_for_bdf(bdf)), None),
            }
        )
    return tree


def summary_line(report: Mapping[str, Any]) -> str:
    """The report in one line: counts, and the first FAIL (else the first WARN that counts) with its fix.

    This is what the p2p_check task's ``msg`` says.
    """
    counts = report["summary"]
    line = "%s: %d PASS, %d WARN, %d FAIL" % (report["status"], counts[PASS], counts[WARN], counts[FAIL])
    if counts["accepted"]:
        line += " (%d WARN accepted)" % counts["accepted"]
    counting = [c for c in report["checks"] if c["status"] != PASS and not c["accepted"]]
    first = next((c for c in counting if c["status"] == FAIL), counting[0] if counting else None)
    if first is not None:
        line += "; first %s %s: %s" % (first["status"], first["id"], first["why"])
        if first["fix"]:
            line += "; fix: %s" % first["fix"]
    return line


def judge_node(
    node: Node,
    providers: Optional[Sequence[str]] = None,
    clients: Optional[Sequence[str]] = None,
    policy: str = "kernel",
    accept: Optional[Mapping[str, str]] = None,
) -> Tuple[List[CheckResult], Dict[str, Any]]:
    """Judge the node: the check results, and the report: format, host, kernel, status, summary, checks and pairs.

    ``accept`` maps check ids to the reason a WARN is accepted: the check stays in the report,
    marked accepted, and no longer counts for the status. Accepts that matched no WARN are
    listed under ``accept_unmatched``, so a stale one is noticed.
    """
    results = run_checks(node, providers, clients, policy)
    unmatched = accept_warnings(results, accept or {})
    pairs: List[PairVerdict] = judged_pairs(node, providers, clients)
    rules = rules_for(node)
    kernel = node.kernel
    counted = [r.counted_status for r in results]
    return results, {
        "format": REPORT_FORMAT,
        "host": _hostname(node),
        "root": node.root.label,
        "kernel": {
            "release": kernel.release,
            "version": None if kernel.version is None else ".".join(str(part) for part in kernel.version),
            "rules": {
                "version": rules.version_text,
                "whitelist_entries": len(rules.whitelist),
                "note": rules.coverage_note,
            },
        },
        "policy": policy,
        "status": worst_status(results),
        "summary": {
            PASS: counted.count(PASS) - sum(1 for r in results if r.accepted),
            WARN: counted.count(WARN),
            FAIL: counted.count(FAIL),
            "accepted": sum(1 for r in results if r.accepted),
        },
        "checks": [result.to_dict() for result in results],
        "pairs": [pair_record(pair) for pair in pairs],
        "tree": pair_tree(node, pairs),
        "accept_unmatched": dict(unmatched),
    }


def _hostname(node: Node) -> Optional[str]:
    # "(none)" is the kernel's name for a node nobody named (an initramfs guest).
    name = node.root.read_text("/proc/sys/kernel/hostname")
    return None if name in (None, "", "(none)") else name


__all__ = ["REPORT_FORMAT", "REPORT_KEYS", "judge_node", "pair_record", "pair_tree", "summary_line"]
