# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node's P2P checks: PASS/WARN/FAIL, each with why, fix and the evidence read.

Pure functions over a :class:`Node`; the CLI (``p2pctl check``) and the module
(``p2pdma.storage.p2p_check``) both call :func:`run_checks`. Every check id is
documented in docs/checks.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import is_loaded, namespace_dir, read_target
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import Namespace, Port, Subsystem, Target
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import UnreadableError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import (
    SYS_PCI_DEVICES,
    Node,
    RdmaDevice,
    natural_key,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.nvmet_log import (
    KERNEL_LOG,
    Controller,
    is_loopback,
    netdev_of_address,
    parse_nvmet_log,
    read_kernel_log,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import bdf_sort_key, parse_bdf
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.rules import runs_on_x86
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import (
    MapType,
    PairVerdict,
    Verdict,
    acs_text,
    distance_many,
    pseudo_cmb,
    publication,
)

PASS = "PASS"
WARN = "WARN"
FAIL = "FAIL"
_SEVERITY = {PASS: 0, WARN: 1, FAIL: 2}

POLICIES = ("kernel", "switch")

KERNEL_BUILD_FIX = (
    "build and install a kernel with the p2pdma.storage.kernel_build role (its fragment "
    "kernel-src/configs/p2pdma.config sets these), or set them in your own kernel config"
)

# What an NVMe-oF target that moves data through p2pmem needs from the kernel, and why.
# ``builtin`` symbols are bool options; the others may be modules.
_NVMET_SYMBOLS: Tuple[Tuple[str, bool, str], ...] = (
    ("CONFIG_ZONE_DEVICE", True, "struct pages for PCI BARs, which P2PDMA is built on"),
    ("CONFIG_BLK_DEV_NVME", False, "nvme-pci registers Controller Memory Buffers as p2pmem"),
    ("CONFIG_CONFIGFS_FS", False, "nvmet is configured through configfs"),
    ("CONFIG_NVME_TARGET", False, "the NVMe-oF target (nvmet) with the per-namespace p2pmem attribute"),
    ("CONFIG_NVME_TARGET_RDMA", False, "only nvmet-rdma moves data through p2pmem"),
    ("CONFIG_INFINIBAND", False, "the RDMA core nvmet-rdma runs on"),
)

# The original series was tested on these besides x86_64 (review thread, seeds 003).
_TESTED_ARCHES = ("aarch64", "arm64", "ppc64le", "ppc64")


def human_bytes(value: int) -> str:
    """Sizes as people read them: 64 MiB, 63.94 MiB, 512 bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return "%.4g %s" % (value / size, unit)
    return "%d bytes" % value


@dataclass
class CheckResult:
    """One check: ``id`` names the check and, after a colon, the device it is about."""

    id: str
    status: str
    why: str
    fix: Optional[str] = None
    evidence: Dict[str, Any] = field(default_factory=dict)
    # The kernel verdicts a locality check judged (their dicts are in the evidence too).
    verdicts: List[Verdict] = field(default_factory=list)
    # Why the operator accepts this WARN; an accepted WARN stays listed but no longer counts.
    accept_reason: Optional[str] = None

    @property
    def accepted(self) -> bool:
        return self.accept_reason is not None

    @property
    def counted_status(self) -> str:
        return PASS if self.accepted else self.status

    def to_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "why": self.why,
            "fix": self.fix,
            "evidence": self.evidence,
            "accepted": self.accepted,
            "accept_reason": self.accept_reason,
        }


def worst_status(results: Iterable[CheckResult]) -> str:
    """The status that counts: FAIL over WARN over PASS, accepted WARNs left out."""
    return max((r.counted_status for r in results), key=_SEVERITY.__getitem__, default=PASS)


def accept_warnings(results: Sequence[CheckResult], accept: Mapping[str, str]) -> Dict[str, str]:
    """Mark the WARNs the operator accepts (check id -> reason); returns the entries that matched no WARN.

    Only a WARN can be accepted: a FAIL means the kernel refuses something, and stays counted.
    """
    for check_id, reason in accept.items():
        if not str(reason or "").strip():
            raise P2PError(
                "accepting %s needs a reason" % check_id,
                fix="give it as ID=REASON (CLI) or as id: reason (p2p_check_accept), saying why the WARN is fine here",
            )
    unmatched = dict(accept)
    for result in results:
        if result.status == WARN and result.id in accept:
            result.accept_reason = accept[result.id]
            unmatched.pop(result.id, None)
    return unmatched


def _fn_path(bdf: str, leaf: str) -> str:
    return "%s/%s/%s" % (SYS_PCI_DEVICES, bdf, leaf)


# --------------------------------------------------------------------------------------
# Kernel, architecture, IOMMU, readability
# --------------------------------------------------------------------------------------
def _config_unknown(node: Node, check_id: str) -> CheckResult:
    where = [p.path for p in node.problems if "config" in p.path]
    return CheckResult(
        check_id,
        WARN,
        "the kernel config could not be found (neither /proc/config.gz nor /boot/config-%s), so the options "
        "cannot be checked" % (node.kernel.release or "<release>"),
        "install the kernel's config as /boot/config-<release>, or build with CONFIG_IKCONFIG_PROC=y",
        {"looked_at": where or ["/proc/config.gz", "/boot/config-%s" % node.kernel.release]},
    )


def check_kernel_p2pdma(node: Node) -> CheckResult:
    kernel = node.kernel
    if not kernel.config:
        return _config_unknown(node, "kernel-p2pdma")
    value = kernel.config_value("CONFIG_PCI_P2PDMA")
    evidence = {kernel.config_source or "config": "CONFIG_PCI_P2PDMA=%s" % (value or "is not set")}
    if value == "y":
        return CheckResult("kernel-p2pdma", PASS, "kernel %s has CONFIG_PCI_P2PDMA=y" % kernel.release, None, evidence)
    return CheckResult(
        "kernel-p2pdma",
        FAIL,
        "kernel %s is built without CONFIG_PCI_P2PDMA: no device can publish p2pmem and nvmet has no p2pmem "
        "attribute (stock Debian kernels have it off)" % kernel.release,
        "CONFIG_PCI_P2PDMA=y (needs CONFIG_ZONE_DEVICE=y and CONFIG_64BIT=y); " + KERNEL_BUILD_FIX,
        evidence,
    )


def check_kernel_nvmet(node: Node) -> CheckResult:
    kernel = node.kernel
    if not kernel.config:
        return _config_unknown(node, "kernel-nvmet")
    evidence: Dict[str, Any] = {}
    missing = []
    for symbol, builtin, why in _NVMET_SYMBOLS:
        value = kernel.config_value(symbol)
        evidence[symbol] = value or "is not set"
        if value == "y" or (value == "m" and not builtin):
            continue
        missing.append("%s=%s (%s)" % (symbol, "y" if builtin else "m", why))
    evidence = {kernel.config_source or "config": evidence}
    if not missing:
        return CheckResult(
            "kernel-nvmet", PASS, "kernel %s has what an NVMe-oF RDMA target with p2pmem needs" % kernel.release,
            None, evidence,
        )
    return CheckResult(
        "kernel-nvmet",
        FAIL,
        "kernel %s lacks %s" % (kernel.release, "; ".join(missing)),
        "set %s; %s" % (", ".join(m.split(" ")[0] for m in missing), KERNEL_BUILD_FIX),
        evidence,
    )


def check_arch(node: Node) -> CheckResult:
    arch = node.kernel.arch
    evidence = {"arch": arch, "source": "/proc/sys/kernel/arch"}
    if arch == "x86_64":
        return CheckResult("arch", PASS, "x86_64: the architecture P2PDMA is deployed and tested on", None, evidence)
    if arch is None and runs_on_x86(node.kernel):
        return CheckResult(
            "arch", PASS, "x86: /proc/sys/kernel/arch was not read, but /proc/cpuinfo has vendor_id and cpu family, "
            "which only x86 prints", None, dict(evidence, cpu_vendor=node.kernel.cpu_vendor),
        )
    if arch is None:
        return CheckResult(
            "arch", WARN, "the architecture is unknown (/proc/sys/kernel/arch and the kernel config were not read)",
            "run p2pctl on the node itself, or take the snapshot with 'p2pctl snapshot'", evidence,
        )
    if arch in _TESTED_ARCHES:
        return CheckResult(
            "arch",
            WARN,
            "%s: P2PDMA works here only through bus addresses below a switch or a whitelisted host bridge (the "
            "CPU rule is x86 AMD only), and the BARs must be mapped write-combining, never cacheable" % arch,
            "test the data path on this platform before production; keep providers and clients behind one switch",
            evidence,
        )
    return CheckResult(
        "arch",
        FAIL,
        "%s: P2PDMA was never validated on this architecture (the review accepted x86_64, and tests on arm64 "
        "and ppc64le only)" % arch,
        "use an x86_64 storage node",
        evidence,
    )


def check_iommu(node: Node) -> CheckResult:
    kernel = node.kernel
    evidence = {"iommu": list(kernel.iommu_evidence), "/proc/cmdline": kernel.cmdline}
    if not kernel.iommu_in_use:
        return CheckResult(
            "iommu", PASS, "no IOMMU in use: the firmware's ACS settings stay and P2P bus addresses are not remapped",
            None, evidence,
        )
    acs_param = kernel.pci_options().get("disable_acs_redir") or kernel.pci_options().get("config_acs")
    if acs_param:
        why = "an IOMMU is in use, so the kernel enabled ACS redirect on every ACS-capable port at boot; the " \
            "command line clears it again on %s" % acs_param
        fix = "check the locality results: every port on a P2P path must be in that list, and no others"
    else:
        why = "an IOMMU is in use, so the kernel enabled ACS redirect (RR, CR) on every ACS-capable port at boot: " \
            "switch-local P2P goes up through the host bridge, and is rejected unless it is whitelisted or the " \
            "CPU is AMD Zen; P2P bus addresses also bypass the IOMMU"
        fix = "add pci=disable_acs_redir=<ports on the P2P path> to the kernel command line (the locality check " \
            "names them), or disable the IOMMU (intel_iommu=off / amd_iommu=off) if isolation is not needed"
    return CheckResult("iommu", WARN, why, fix, evidence)


def check_config_space(node: Node) -> CheckResult:
    unknown = sorted((b for b, fn in node.functions.items() if fn.acs is None), key=bdf_sort_key)
    if not unknown:
        return CheckResult(
            "config-space", PASS, "the config space of all %d PCI functions was read, ACS included"
            % len(node.functions), None, {"functions": len(node.functions)},
        )
    evidence = {_fn_path(b, "config"): "%d bytes read" % node.functions[b].config_bytes for b in unknown[:16]}
    more = " and %d more" % (len(unknown) - 3) if len(unknown) > 3 else ""
    return CheckResult(
        "config-space",
        WARN,
        "ACS is unknown for %s%s: %s could be read only in part (a non-root reader gets 64 bytes), so verdicts "
        "through these devices assume no ACS redirect" % (", ".join(unknown[:3]), more, _fn_path(unknown[0], "config")),
        "run as root (sudo p2pctl ..., become: true in Ansible), or take the snapshot as root",
        evidence,
    )


# --------------------------------------------------------------------------------------
# Providers
# --------------------------------------------------------------------------------------
def _use_cmb_sqes_disabled(node: Node) -> bool:
    return node.kernel.cmdline_params().get("nvme.use_cmb_sqes") in ("0", "n", "N")


def check_provider(node: Node, bdf: str, configured: bool) -> CheckResult:
    """Present, published, with size and free memory; why a CMB is not published."""
    fn = node.functions[bdf]
    check_id = "provider:%s" % bdf
    controllers = node.nvme_for_bdf(bdf)
    evidence: Dict[str, Any] = {}
    sqs_note = None
    for ctrl in controllers:
        if ctrl.cmb is not None:
            evidence["%s/cmbsz" % ctrl.sysfs_path] = "0x%08x" % ctrl.cmb.cmbsz
            evidence["%s/cmbloc" % ctrl.sysfs_path] = "0x%08x" % ctrl.cmb.cmbloc
            evidence["%s cmb decoded" % ctrl.name] = ctrl.cmb.to_dict(ctrl.cmb_bar)
            if ctrl.cmb_bar is not None:
                evidence[_fn_path(bdf, "resource")] = "BAR %d at 0x%x, %d bytes" % (
                    ctrl.cmb.bir, ctrl.cmb_bar[0], ctrl.cmb_bar[1])
            sqs_note = sqs_note or ctrl.cmb.sq_note(False if _use_cmb_sqes_disabled(node) else None)
    names = " (%s)" % ", ".join(c.name for c in controllers) if controllers else ""
    failing = FAIL if configured else WARN
    state = publication(node, bdf)
    if fn.p2pmem is None:
        evidence[_fn_path(bdf, "p2pmem")] = "absent"
        return CheckResult(check_id, failing, state["why"], state["fix"], evidence)
    mem = fn.p2pmem
    size, free = human_bytes(mem.size), human_bytes(mem.available)
    evidence[_fn_path(bdf, "p2pmem/size")] = mem.size
    evidence[_fn_path(bdf, "p2pmem/available")] = mem.available
    evidence[_fn_path(bdf, "p2pmem/published")] = int(mem.published)
    if not mem.published:
        return CheckResult(check_id, failing, state["why"], state["fix"], evidence)
    if mem.size == 0 or mem.available == 0:
        return CheckResult(
            check_id, failing,
            "%s%s publishes p2pmem but %s of %s is free" % (bdf, names, free, size),
            "free the p2pmem (disable the nvmet namespaces using it) or pick another provider"
            + ("; %s" % sqs_note if sqs_note else ""),
            evidence,
        )
    if mem.available < mem.size and sqs_note:
        return CheckResult(
            check_id, WARN,
            "%s%s publishes %s of p2pmem, %s free: %s" % (bdf, names, size, free, sqs_note),
            "add nvme.use_cmb_sqes=0 to the kernel command line",
            evidence,
        )
    return CheckResult(
        check_id, PASS,
        "%s%s publishes %s of p2pmem, %s free" % (bdf, names, size, free),
        None, evidence,
    )


def check_unpublished_cmbs(node: Node, providers: Sequence[str]) -> List[CheckResult]:
    """NVMe controllers with a CMB (or pseudo-CMB memory on BAR 4) that is not p2pmem, when nobody asked."""
    results = []
    for name in sorted(node.nvme):
        ctrl = node.nvme[name]
        if ctrl.bdf is None or ctrl.bdf in providers or ctrl.bdf not in node.functions:
            continue
        fn = node.functions[ctrl.bdf]
        if fn.p2pmem is not None or (ctrl.cmb is None and pseudo_cmb(node, fn) is None):
            continue
        results.append(check_provider(node, ctrl.bdf, configured=False))
    return results


def check_no_providers(node: Node) -> CheckResult:
    cmbs = sorted(n for n, c in node.nvme.items() if c.cmb is not None)
    return CheckResult(
        "providers",
        FAIL,
        "no PCI device on this node has p2pmem%s" % (
            " (NVMe controllers with a CMB: %s)" % ", ".join(cmbs) if cmbs else ""),
        "add an NVMe drive with a Controller Memory Buffer (WDS and RDS set), on a kernel with CONFIG_PCI_P2PDMA=y",
        {"%s/*/p2pmem" % SYS_PCI_DEVICES: "absent", "nvme with cmb": cmbs},
    )


# --------------------------------------------------------------------------------------
# Locality
# --------------------------------------------------------------------------------------
def _acceptable(verdict: Verdict, policy: str) -> bool:
    if policy == "switch":
        return verdict.supported and all(c.map_type == MapType.BUS_ADDR for c in verdict.clients)
    return verdict.supported


def _verdict_result(
    node: Node, check_id: str, verdict: Verdict, policy: str, clients: Sequence[str]
) -> CheckResult:
    # Link speed and width of every device on the paths: the slowest link bounds the transfer.
    on_paths = dict.fromkeys(bdf for pair in verdict.clients for bdf in pair.path if bdf in node.functions)
    evidence = {
        "verdict": verdict.to_dict(),
        "policy": policy,
        "links": {bdf: node.functions[bdf].link.describe() for bdf in on_paths},
        "acs_control": {bdf: acs_text(node.functions[bdf]) for bdf in on_paths},
    }
    summary = ", ".join("%s %s" % (c.client_name or c.client, c.map_type) for c in verdict.clients)
    if _acceptable(verdict, policy):
        status = PASS if verdict.certain else WARN
        why = "provider %s serves %s: %s; total distance %d" % (
            verdict.provider, ", ".join(clients), summary, verdict.distance)
        fix = None
        if not verdict.certain:
            unknown = sorted({b for c in verdict.clients for b in c.acs_unknown})
            why += "; ACS of %s could not be read, so a redirect there would change this" % ", ".join(unknown)
            fix = "run as root so that ACS can be read"
        return CheckResult(check_id, status, why, fix, evidence, [verdict])
    bad = [c for c in verdict.clients if not (c.supported and (policy == "kernel" or c.map_type == MapType.BUS_ADDR))]
    why = "provider %s cannot serve %s: %s" % (
        verdict.provider,
        ", ".join(c.client_name or c.client or "?" for c in bad),
        "; ".join(c.reason for c in bad),
    )
    if policy == "switch" and verdict.supported:
        why += " (policy switch requires bus_addr: the path must turn at a switch, not at the host bridge)"
    fixes = [c.fix for c in bad if c.fix]
    return CheckResult(check_id, FAIL, why, "; ".join(dict.fromkeys(fixes)) or None, evidence, [verdict])


def check_locality(
    node: Node, providers: Sequence[str], clients: Sequence[str], policy: str, configured: bool
) -> List[CheckResult]:
    """Every configured provider must serve every client; without one, some published provider must."""
    verdicts = [distance_many(node, p, clients) for p in providers]
    if configured:
        return [_verdict_result(node, "locality:%s" % v.provider, v, policy, clients) for v in verdicts]
    usable = [v for v in verdicts if _acceptable(v, policy)]
    if usable:
        best = min(usable, key=lambda v: v.distance)
        result = _verdict_result(node, "locality", best, policy, clients)
        result.why = "nvmet's p2pmem=1 would pick the nearest published provider, %s: %s" % (best.provider, result.why)
        result.evidence["candidates"] = {v.provider: v.distance for v in verdicts}
        return [result]
    reasons = [_verdict_result(node, "locality", v, policy, clients) for v in verdicts]
    return [
        CheckResult(
            "locality",
            FAIL,
            "no published provider can serve %s: %s" % (", ".join(clients), " | ".join(r.why for r in reasons)),
            "; ".join(dict.fromkeys(r.fix for r in reasons if r.fix)) or None,
            {"verdicts": [v.to_dict() for v in verdicts], "policy": policy},
            verdicts,
        )
    ]


def matrix_clients(node: Node) -> List[str]:
    """What a provider is judged against when no client is named: every PCIe NVMe controller and RDMA NIC."""
    nvme = sorted((n for n, c in node.nvme.items() if c.is_pci and c.bdf in node.functions), key=natural_key)
    rdma = sorted(n for n, r in node.rdma.items() if not r.software and r.bdf in node.functions)
    return nvme + rdma


def judged_pairs(
    node: Node, providers: Optional[Sequence[str]] = None, clients: Optional[Sequence[str]] = None
) -> List[PairVerdict]:
    """The provider/client pairs a check run judges: the named ones, else every published provider
    against every NVMe controller and RDMA device."""
    provider_bdfs = list(dict.fromkeys(node.resolve(name) for name in providers or ())) or _published(node)
    client_names = list(dict.fromkeys(clients or ())) or matrix_clients(node)
    if not client_names:
        return []
    return [pair for bdf in provider_bdfs for pair in distance_many(node, bdf, client_names).clients]


def _published(node: Node) -> List[str]:
    return [fn.bdf for fn in node.providers() if fn.p2pmem is not None and fn.p2pmem.published]


def check_matrix(node: Node, pairs: Sequence[PairVerdict], policy: str) -> Optional[CheckResult]:
    """Without named clients: which NVMe controllers and RDMA devices some published provider can serve."""
    if not pairs:
        return None
    served: Dict[str, bool] = {}
    for pair in pairs:
        name = pair.client_name or pair.client or "?"
        ok = pair.supported and (policy == "kernel" or pair.map_type == MapType.BUS_ADDR)
        served[name] = served.get(name, False) or ok
    providers = list(dict.fromkeys(pair.provider for pair in pairs))
    unserved = [name for name, ok in served.items() if not ok]
    evidence = {"providers": providers, "clients": list(served), "unserved": unserved, "policy": policy}
    why = "%d published provider(s) x %d client(s) judged (every NVMe controller and RDMA device): %d of %d " \
        "pairs accepted" % (len(providers), len(served), sum(1 for p in pairs if p.supported), len(pairs))
    if len(unserved) < len(served):
        if unserved:
            why += "; no provider can serve %s" % ", ".join(unserved)
        return CheckResult("pairs", PASS, why, None, evidence)
    fixes = dict.fromkeys(pair.fix for pair in pairs if pair.fix)
    return CheckResult(
        "pairs", WARN, why + ": no client can use any published provider", "; ".join(fixes) or None, evidence
    )


def check_competing_providers(node: Node, published: Sequence[str], clients: Sequence[str], policy: str) -> CheckResult:
    """Several published providers: p2pmem=1 picks the nearest, at random among ties."""
    if clients:
        distances = {}
        for bdf in published:
            verdict = distance_many(node, bdf, clients)
            if _acceptable(verdict, policy):
                distances[bdf] = verdict.distance
    else:
        distances = {bdf: -1 for bdf in published}
    if len(distances) < 2:
        return CheckResult(
            "providers-compete", PASS, "at most one published provider can serve these clients", None,
            {"candidates": distances},
        )
    nearest = min(distances.values())
    tied = sorted(b for b, d in distances.items() if d == nearest)
    why = "%d published providers compete (%s): nvmet's p2pmem=1 takes the nearest to each namespace%s" % (
        len(distances),
        ", ".join("%s%s" % (b, "" if d < 0 else " distance %d" % d) for b, d in sorted(distances.items())),
        ", at random among %s" % ", ".join(tied) if len(tied) > 1 and clients else "",
    )
    return CheckResult(
        "providers-compete", WARN, why,
        "name the provider per namespace (p2pmem=<BDF> in the nvmet namespace) so locality and bandwidth are chosen, "
        "not left to chance", {"candidates": distances},
    )


def _acs_param_devices(node: Node) -> Tuple[List[str], List[str]]:
    """The devices the command line clears ACS on, as BDFs, and the entries not checked.

    ``pci=disable_acs_redir=A;B`` and ``pci=config_acs=flags@A;...`` take a device as
    ``[dom:]bus:dev.fn``, a path ``bus:dev.fn/dev.fn``, or ``pci:vendor:device``; only the
    first form names one device without walking the tree, the others are reported as such.
    """
    options = node.kernel.pci_options()
    devices: List[str] = []
    unchecked: List[str] = []
    for option in ("disable_acs_redir", "config_acs"):
        for item in filter(None, options.get(option, "").split(";")):
            device = item.split("@", 1)[1] if option == "config_acs" and "@" in item else item
            try:
                devices.append(parse_bdf(device))
            except P2PError:
                unchecked.append(item)
    return devices, unchecked


def check_acs_params(node: Node, locality: Sequence[CheckResult]) -> Optional[CheckResult]:
    """ACS cleared on the command line for exactly the ports on the P2P paths, and no others."""
    cleared, unchecked = _acs_param_devices(node)
    if not cleared and not unchecked:
        return None
    on_paths = {bdf for r in locality for v in r.verdicts for pair in v.clients for bdf in pair.path}
    needless = sorted((b for b in cleared if b not in on_paths), key=bdf_sort_key)
    evidence = {
        "/proc/cmdline": node.kernel.cmdline,
        "cleared": cleared,
        "on p2p paths": sorted(on_paths),
        "not checked": unchecked,
    }
    if needless:
        return CheckResult(
            "acs-params",
            WARN,
            "the kernel command line clears ACS redirect on %s, which is on no P2P path judged here: those devices "
            "lose isolation for nothing" % ", ".join(needless),
            "remove %s from the pci= parameter (keep only the ports on the P2P paths)" % ", ".join(needless),
            evidence,
        )
    return CheckResult(
        "acs-params",
        PASS,
        "ACS redirect is cleared on the command line only for devices on the P2P paths%s"
        % (" (%s not checked: path or ID form)" % ", ".join(unchecked) if unchecked else ""),
        None,
        evidence,
    )


# --------------------------------------------------------------------------------------
# IOMMU groups, RDMA, block devices
# --------------------------------------------------------------------------------------
def check_iommu_groups(node: Node, peers: Sequence[str]) -> CheckResult:
    groups: Dict[int, List[str]] = {}
    for bdf, fn in node.functions.items():
        if fn.iommu_group is not None:
            groups.setdefault(fn.iommu_group, []).append(bdf)
    peer_groups: Set[int] = set()
    for bdf in peers:
        group = node.functions[bdf].iommu_group
        if group is not None:
            peer_groups.add(group)
    evidence = {"group %d" % g: sorted(groups[g], key=bdf_sort_key) for g in sorted(peer_groups)}
    if not groups:
        return CheckResult("iommu-groups", PASS, "no IOMMU groups: devices are not isolated from each other", None, {})
    passthrough = sorted(
        b for g in peer_groups for b in groups[g] if node.functions[b].driver in ("vfio-pci", "pci-stub")
    )
    if passthrough:
        return CheckResult(
            "iommu-groups",
            WARN,
            "%s, bound for passthrough, shares an IOMMU group with P2P peers (%s): P2P and device isolation "
            "exclude each other, and clearing ACS on the P2P path merges the groups below it" % (
                ", ".join(passthrough), ", ".join(sorted(peers, key=bdf_sort_key))),
            "move the passthrough device to a slot outside the P2P switch, or do not pass it through",
            evidence,
        )
    return CheckResult(
        "iommu-groups", PASS, "no device meant for passthrough (vfio-pci) shares an IOMMU group with the P2P peers",
        None, evidence,
    )


def check_rdma(node: Node, clients: Sequence[str]) -> List[CheckResult]:
    if not node.rdma:
        return [CheckResult(
            "rdma", WARN, "no RDMA device: only nvmet-rdma moves data through p2pmem (TCP, loop and FC never do)",
            "install an RDMA NIC and its driver for the NVMe-oF ports that should use p2pmem",
            {"/sys/class/infiniband": []},
        )]
    results = []
    for name in sorted(node.rdma):
        rdma = node.rdma[name]
        evidence = {rdma.sysfs_path: {"pci": rdma.bdf, "driver": rdma.driver, "netdevs": rdma.netdevs}}
        if rdma.bdf is not None and not rdma.software:
            results.append(CheckResult(
                "rdma:%s" % name, PASS, "%s is a hardware RDMA device on %s (%s)" % (name, rdma.bdf, rdma.driver),
                None, evidence))
            continue
        results.append(CheckResult(
            "rdma:%s" % name,
            FAIL if name in clients else WARN,
            "%s is software RDMA (%s) with no PCI DMA device: nvmet-rdma ports on it silently use system memory, "
            "never p2pmem" % (name, rdma.software or "no PCI parent"),
            "use a hardware RDMA NIC for the ports that should use p2pmem",
            evidence,
        ))
    return results


def check_block_clients(node: Node, clients: Sequence[str]) -> List[CheckResult]:
    results = []
    for name in clients:
        block = node.block.get(name[5:] if name.startswith("/dev/") else name)
        if block is None:
            continue
        evidence = {block.sysfs_path: {"kind": block.kind, "backing": block.backing}}
        if block.can_do_p2p:
            results.append(CheckResult(
                "namespace:%s" % block.name, PASS, "%s is a namespace of PCIe NVMe controller %s (%s)"
                % (block.name, block.controller, block.bdf), None, evidence))
            continue
        try:
            node.resolve(block.name)
            why, fix = "%s cannot do P2P" % block.name, None
        except P2PError as err:
            why, fix = err.message, err.fix
        results.append(CheckResult(
            "namespace:%s" % block.name, FAIL,
            "%s: nvmet refuses p2pmem for it at enable (EINVAL)" % why, fix, evidence))
    return results


def check_multipath_heads(node: Node) -> Optional[CheckResult]:
    heads = sorted(b.name for b in node.block.values() if b.kind == "nvme-multipath")
    if not heads:
        return None
    return CheckResult(
        "nvme-multipath",
        WARN,
        "NVMe native multipath is on: %s are head nodes whose queues lack the P2PDMA flag, so an nvmet namespace "
        "on them with p2pmem fails to enable (EINVAL)" % ", ".join(heads),
        "boot with nvme_core.multipath=N to get per-controller namespaces for p2pmem-backed nvmet namespaces",
        {node.block[h].sysfs_path: node.block[h].backing for h in heads},
    )


# --------------------------------------------------------------------------------------
# nvmet: can the p2pmem of each namespace carry data, and did it?
# --------------------------------------------------------------------------------------
# Why a transport never moves data through p2pmem: only nvmet-rdma hands the kernel a PCI
# DMA device to judge against (drivers/nvme/target/rdma.c sets req.p2p_client).
_NO_P2P_TRANSPORT = {
    "tcp": "nvmet-tcp copies through socket buffers in system memory",
    "loop": "nvmet-loop hands the host's own pages to the block layer",
    "fc": "nvmet-fc never sets a P2P client, so every buffer is allocated from system memory",
}
_RDMA_FIX = "export the namespace on an rdma port whose address is on a hardware RDMA NIC near the provider"


def _port_rdma_devices(node: Node, port: Port) -> Tuple[List[RdmaDevice], Dict[str, Any]]:
    """The RDMA devices an rdma port can accept connections on: the ones on its address's network device,
    or all of them for a wildcard or unknown address."""
    traddr = port.addr.get("traddr") or ""
    netdev = netdev_of_address(node.root, traddr)
    on_netdev = [r for r in node.rdma.values() if netdev is not None and netdev in r.netdevs]
    evidence = {"traddr": traddr, "netdev": netdev}
    return (on_netdev or list(node.rdma.values())), evidence


def _p2p_port_status(node: Node, port: Port) -> Tuple[str, str, Dict[str, Any]]:
    """PASS when the port can carry p2pmem, else WARN with the reason; and the evidence."""
    trtype = port.addr.get("trtype") or "unset"
    if trtype != "rdma":
        reason = _NO_P2P_TRANSPORT.get(trtype, "only nvmet-rdma uses p2pmem")
        return WARN, "port %d is %s: %s, never p2pmem" % (port.portid, trtype, reason), {"trtype": trtype}
    devices, evidence = _port_rdma_devices(node, port)
    evidence["rdma"] = {r.name: r.bdf if r.software is None else r.software for r in devices}
    hardware = [r for r in devices if r.software is None and r.bdf is not None]
    if not devices:
        return WARN, "port %d is rdma but the node has no RDMA device" % port.portid, evidence
    if not hardware:
        return WARN, "port %d is rdma on software RDMA (%s): with no PCI DMA device nvmet uses system memory" % (
            port.portid, ", ".join("%s %s" % (r.name, r.software) for r in devices)), evidence
    return PASS, "port %d is rdma on %s" % (
        port.portid, ", ".join("%s (%s)" % (r.name, r.bdf) for r in hardware)), evidence


def _connections_verdict(
    nqn: str, ns: Namespace, controllers: Optional[List[Controller]]
) -> Tuple[str, str, Optional[str], Dict[str, Any]]:
    """What the kernel log says about the namespace's p2pmem at connect time."""
    if controllers is None:
        return WARN, "the kernel log could not be read, so whether the kernel used p2pmem is unknown", \
            "run as root (reading %s needs CAP_SYSLOG)" % KERNEL_LOG, {}
    evidence: Dict[str, Any] = {
        KERNEL_LOG: [
            {"controller": c.cntlid, "host": c.hostnqn, "p2pmem": c.p2pmem.get(ns.nsid), "refusals": c.refusals}
            for c in controllers
        ]
    }
    if not controllers:
        return PASS, "no host has connected since the kernel log began; the kernel picks the provider when one " \
            "does (then this check reads its answer)", None, evidence
    used = [c for c in controllers if ns.nsid in c.p2pmem]
    last = controllers[-1]
    if ns.nsid in last.p2pmem:
        return PASS, "the kernel logged 'using p2pmem on %s for nsid %d' for controller %d (host %s), the latest " \
            "of %d" % (last.p2pmem[ns.nsid], ns.nsid, last.cntlid, last.hostnqn, len(controllers)), None, evidence
    why = "controller %d (host %s) of %s got no 'using p2pmem ... for nsid %d' line: its I/O uses system memory" % (
        last.cntlid, last.hostnqn, nqn, ns.nsid)
    if last.refusals:
        why += "; the kernel said: %s" % " | ".join(last.refusals)
    elif used:
        why += " (earlier controllers did use p2pmem)"
    else:
        why += "; the host may have connected over a port that is not rdma"
    return FAIL, why, "put the provider and the RDMA NIC behind one switch (see the locality checks), and " \
        "connect the host over the rdma port", evidence


def check_nvmet_datapath(node: Node, target: Target) -> List[CheckResult]:
    """For each enabled nvmet namespace with p2pmem: whether its ports can carry p2pmem, and whether the
    kernel used it when a host connected (kernel log)."""
    log: Optional[Dict[str, List[Controller]]] = None
    log_read = False
    results = []
    for subsystem in sorted(target.subsystems, key=lambda s: s.nqn):
        ports = [p for p in sorted(target.ports, key=lambda p: p.portid) if subsystem.nqn in (p.subsystems or [])]
        for ns in sorted(subsystem.namespaces, key=lambda n: n.nsid):
            if not ns.enable or ns.p2pmem in (None, "0"):
                continue
            if not log_read:
                log, log_read = _nvmet_log(node), True
            results.append(_namespace_datapath(node, subsystem, ns, ports, log))
    return results


def _nvmet_log(node: Node) -> Optional[Dict[str, List[Controller]]]:
    try:
        text = read_kernel_log(node.root)
    except UnreadableError:
        return None
    return None if text is None else parse_nvmet_log(text)


def _namespace_datapath(
    node: Node, subsystem: Subsystem, ns: Namespace, ports: Sequence[Port],
    log: Optional[Dict[str, List[Controller]]],
) -> CheckResult:
    check_id = "nvmet-datapath:%s/%d" % (subsystem.nqn, ns.nsid)
    head = "namespace %d of %s (%s, p2pmem %s)" % (
        ns.nsid, subsystem.nqn, ns.device.get("path"), "auto" if ns.p2pmem == "1" else ns.p2pmem)
    evidence: Dict[str, Any] = {namespace_dir(subsystem.nqn, ns.nsid) + "/p2pmem": ns.p2pmem}
    if not ports:
        return CheckResult(check_id, WARN, "%s is on no port: no data moves" % head,
                           "link the subsystem to an rdma port", evidence)
    verdicts = [_p2p_port_status(node, port) for port in ports]
    evidence["ports"] = {str(port.portid): dict(v[2], status=v[0], why=v[1]) for port, v in zip(ports, verdicts)}
    carriers = [verdict[1] for verdict in verdicts if verdict[0] == PASS]
    blocked = [verdict[1] for verdict in verdicts if verdict[0] != PASS]
    if not carriers:
        return CheckResult(check_id, WARN, "%s cannot carry data through p2pmem: %s" % (head, "; ".join(blocked)),
                           _RDMA_FIX, evidence)
    status, why, fix, log_evidence = _connections_verdict(subsystem.nqn, ns, None if log is None else
                                                          log.get(subsystem.nqn, []))
    evidence.update(log_evidence)
    why = "%s can carry data through p2pmem (%s): %s" % (head, "; ".join(carriers), why)
    if blocked and status != WARN:
        # The log does not name the transport: a controller without the line may be a host on one of these.
        status, fix = WARN, "hosts on those ports use system memory: " + _RDMA_FIX
        why += "; but %s" % "; ".join(blocked)
    return CheckResult(check_id, status, why, fix, evidence)


def check_nvmet_any_host(target: Target) -> List[CheckResult]:
    """A subsystem open to any host on a port other hosts can reach."""
    results = []
    for subsystem in sorted(target.subsystems, key=lambda s: s.nqn):
        if subsystem.attr.get("allow_any_host") != "1":
            continue
        exposed = [
            "port %d (%s %s:%s)" % (p.portid, p.addr.get("trtype"), p.addr.get("traddr"), p.addr.get("trsvcid"))
            for p in sorted(target.ports, key=lambda p: p.portid)
            if subsystem.nqn in (p.subsystems or []) and not is_loopback(p.addr.get("trtype"), p.addr.get("traddr"))
        ]
        if exposed:
            results.append(CheckResult(
                "nvmet-any-host:%s" % subsystem.nqn, WARN,
                "%s allows any host and is exported on %s: every host that reaches it can read and write its "
                "namespaces" % (subsystem.nqn, ", ".join(exposed)),
                "set allow_any_host to false and list the hosts' NQNs in allowed_hosts",
                {"attr_allow_any_host": "1", "ports": exposed},
            ))
    return results


# --------------------------------------------------------------------------------------
# All of them
# --------------------------------------------------------------------------------------
def run_checks(
    node: Node,
    providers: Optional[Sequence[str]] = None,
    clients: Optional[Sequence[str]] = None,
    policy: str = "kernel",
) -> List[CheckResult]:
    """Every check for the node, for the given providers and clients (names or BDFs).

    Without providers, every function with p2pmem is judged, and locality asks whether
    some published provider serves the clients (what nvmet's ``p2pmem=1`` does).
    Unknown devices and a bad policy raise P2PError before anything is judged.
    """
    if policy not in POLICIES:
        raise P2PError("unknown policy %r" % policy, fix="use one of: %s" % ", ".join(POLICIES))
    provider_bdfs = list(dict.fromkeys(node.resolve(name) for name in providers or ()))
    client_names = list(dict.fromkeys(clients or ()))
    # Client names are resolved only to catch unknown devices early; software RDMA and
    # multipath heads are legitimate names that the checks below judge.
    client_bdfs = [b for b in (node.pci_parent_of(name) for name in client_names) if b is not None]

    results = [check_kernel_p2pdma(node), check_kernel_nvmet(node), check_arch(node), check_iommu(node),
               check_config_space(node)]
    judged = provider_bdfs or [fn.bdf for fn in node.providers()]
    if not judged:
        results.append(check_no_providers(node))
    results.extend(check_provider(node, bdf, configured=bool(provider_bdfs)) for bdf in judged)
    results.extend(check_unpublished_cmbs(node, judged))
    published = _published(node)
    if client_names:
        candidates = provider_bdfs or published
        if candidates:
            locality = check_locality(node, candidates, client_names, policy, configured=bool(provider_bdfs))
            results.extend(locality)
            acs_params = check_acs_params(node, locality)
            if acs_params is not None:
                results.append(acs_params)
    else:
        matrix = check_matrix(node, judged_pairs(node, provider_bdfs), policy)
        if matrix is not None:
            results.append(matrix)
    if not provider_bdfs:
        results.append(check_competing_providers(node, published, client_names, policy))
    results.append(check_iommu_groups(node, list(dict.fromkeys(judged + client_bdfs))))
    results.extend(check_rdma(node, client_names))
    results.extend(check_block_clients(node, client_names))
    multipath = check_multipath_heads(node)
    if multipath is not None:
        results.append(multipath)
    if is_loaded(node.root):
        target = read_target(node.root)
        results.extend(check_nvmet_datapath(node, target))
        results.extend(check_nvmet_any_host(target))
    return results


__all__ = [
    "FAIL",
    "PASS",
    "POLICIES",
    "WARN",
    "CheckResult",
    "accept_warnings",
    "human_bytes",
    "judged_pairs",
    "run_checks",
    "worst_status",
]
