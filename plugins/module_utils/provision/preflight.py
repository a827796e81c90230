# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What would stop the site playbook on a node, found before anything on it changes.

Every problem is collected, not only the first, so that one pass over the inventory shows them all:
variables that no role declares (Ansible ignores a misspelt one silently), and for the declared NVMe-oF
target its structure (nvmet's own validation), devices missing on the node and providers the kernel
would refuse (nvmet's own p2pmem judge, the engine's verdict).
"""

from __future__ import annotations

import difflib
from typing import Iterable, List, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import (
    ABSENT,
    P2PMEM_NONE,
    Target,
    target_from_dict,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.validate import validate

# The prefixes of the collection's role variables (nvme_ catches a guess at the kernel_install NVMe options).
PREFIXES = ("kernel_build_", "kernel_install_", "nvme_", "nvmet_", "p2p_check_")
# Read by the playbooks themselves (which hosts a phase runs on), not by a role.
PLAYBOOK_VARIABLES = frozenset({"kernel_build_hosts", "kernel_install_hosts", "nvmet_hosts", "p2p_check_hosts"})
# How alike (difflib's ratio) a name must be to a declared one to count as its misspelling.
NEAR_MISS = 0.85


def declared_variables(specs: Iterable[dict]) -> List[str]:
    """Every option of every entry point of the roles' meta/argument_specs.yml (as loaded from YAML)."""
    return sorted({
        name
        for spec in specs
        for entry in (spec.get("argument_specs") or {}).values()
        for name in (entry.get("options") or {})
    })


def unknown_variables(names: Iterable[str], declared: Iterable[str]) -> List[P2PError]:
    """A problem for each variable that looks like a role variable and that no argument_spec declares.

    It looks like one when it has a role prefix, or when it is a near miss of a declared name (a typo in the
    prefix itself, kernel_instal_...).
    """
    known = sorted(set(declared) | PLAYBOOK_VARIABLES)
    problems = []
    for name in sorted(set(names) - set(known)):
        close = difflib.get_close_matches(name, known, n=1, cutoff=NEAR_MISS)
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        if prefix is None and not close:
            continue
        if prefix is not None and not close:
            # The right option under another role's prefix (nvme_use_cmb_sqes for kernel_install_use_cmb_sqes).
            close = [k for k in known if k.endswith("_" + name[len(prefix):])][:1]
        problems.append(P2PError(
            "variable %s is declared by no role of p2pdma.storage, so Ansible would ignore it" % name,
            fix=("rename it to %s" % close[0]) if close else "remove it; the roles' variables are in their "
            "meta/argument_specs.yml",
        ))
    return problems


def target_problems(config: dict, judge: P2PJudge, kernel_pending: bool) -> Tuple[List[P2PError], List[dict]]:
    """The problems of a declared target on this node, and the p2pmem verdicts of its namespaces.

    ``kernel_pending``: the run boots another kernel or command line before nvmet, so only the paths are
    judged now; publication is verified after the trial boot. A kernel without CONFIG_PCI_P2PDMA is judged so too.
    """
    try:
        desired = target_from_dict(config)
    except (ValueError, KeyError, TypeError) as exc:
        return [P2PError("nvmet_config is not in nvmetcli's JSON schema: %s" % exc,
                         fix="compare it with 'nvmetcli save' output; see the nvmet module's options")], []
    problems: List[P2PError] = []
    try:
        validate(desired, Target())
    except P2PError as err:
        problems.append(err)
    paths_only = kernel_pending or not judge.kernel_has_p2pdma()
    verdicts = []
    for subsystem in desired.subsystems:
        if subsystem.state == ABSENT:
            continue
        for ns in subsystem.namespaces:
            path = ns.device.get("path")
            if ns.state == ABSENT or not ns.enable or not path:
                continue
            try:
                verdict = _judge_namespace(judge, "subsystem %s namespace %d" % (subsystem.nqn, ns.nsid),
                                           path, ns.p2pmem, paths_only)
            except P2PError as err:
                problems.append(err)
                continue
            if verdict is not None:
                verdicts.append(verdict)
    return problems, verdicts


def _judge_namespace(judge: P2PJudge, what: str, path: str, p2pmem: Optional[str],
                     paths_only: bool) -> Optional[dict]:
    if not judge.root.exists(path):
        raise P2PError("%s: device %s does not exist on this node" % (what, path),
                       fix="correct device.path (ls -l /dev/disk/by-path shows the node's namespaces)")
    if p2pmem is None or p2pmem == P2PMEM_NONE:
        return None
    kernel_value = judge.kernel_value(what, p2pmem)
    if paths_only:
        return judge.judge_path(what, path, kernel_value)
    return judge.judge(what, path, kernel_value)


__all__ = ["PLAYBOOK_VARIABLES", "PREFIXES", "declared_variables", "target_problems", "unknown_variables"]
