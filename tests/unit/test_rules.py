"""One rule set per node: topology, distance and check judge with the same rules_for(node)."""

from __future__ import annotations

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import PASS, run_checks
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.rules import rules_for
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import MapType, engine_for, pair_verdict
from ansible_collections.p2pdma.storage.plugins.module_utils.views.text import format_topology, topology_view
from tests.support.nodes import CMB_16M, NVMET_READY_CONFIG, PUBLISHED_16M
from tests.support.sysfs_tree import SysfsTree

INTEL_QAT_4XXX = (0x8086, 0x4940)  # whitelisted in 7.2, and in stable 7.1.3


def _two_root_ports(tree: SysfsTree) -> SysfsTree:
    """A published CMB drive on one root port, a plain drive on another: the path goes through the host bridge."""
    tree.nvme(tree.root_port("00:01.0", acs_ctrl=0), cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    tree.nvme(tree.root_port("00:02.0", acs_ctrl=0))
    return tree


def test_a_debian_release_is_judged_by_the_version_proc_version_names(tmp_path):
    tree = _two_root_ports(
        SysfsTree(tmp_path / "node", kernel="7.1.0-3-amd64", upstream_version="7.1.5", config=NVMET_READY_CONFIG,
                  host_bridge=INTEL_QAT_4XXX)
    )
    node = read_node(tree.sysroot())
    rules = rules_for(node)
    assert rules.version == (7, 1, 5)
    assert len(rules.whitelist) == 21
    assert engine_for(node).rules is rules
    view = topology_view(node)
    assert (view["kernel"]["rules"], view["kernel"]["whitelist_entries"]) == ("7.1.5", 21)
    assert view["host_bridges"][0]["whitelisted"] is True
    assert format_topology(view).startswith("kernel 7.1.0-3-amd64 (rules 7.1.5, 21 whitelist entries), x86_64")
    assert pair_verdict(node, "0000:01:00.0", "0000:02:00.0").map_type == MapType.THRU_HOST_BRIDGE


def test_an_amd_zen3_cpu_allows_the_host_bridge_path_when_the_arch_is_unknown(tmp_path):
    config = {k: v for k, v in NVMET_READY_CONFIG.items() if k != "CONFIG_X86_64"}
    tree = _two_root_ports(SysfsTree(tmp_path / "node", arch="", cpu=("AuthenticAMD", 25), config=config))
    node = read_node(tree.sysroot())
    assert node.kernel.arch is None
    verdict = pair_verdict(node, "0000:01:00.0", "0000:02:00.0")
    assert verdict.map_type == MapType.THRU_HOST_BRIDGE
    assert "AuthenticAMD family 0x19) passes cpu_supports_p2pdma()" in verdict.reason
    assert topology_view(node)["kernel"]["cpu_allows_host_bridge_p2p"] is True
    arch = {r.id: r for r in run_checks(node)}["arch"]
    assert arch.status == PASS and arch.why.startswith("x86: /proc/sys/kernel/arch was not read")


def test_an_amd_cpu_before_zen_is_refused_with_the_true_reason(tmp_path):
    config = {k: v for k, v in NVMET_READY_CONFIG.items() if k != "CONFIG_X86_64"}
    tree = _two_root_ports(SysfsTree(tmp_path / "node", arch="", cpu=("AuthenticAMD", 0x15), config=config))
    verdict = pair_verdict(read_node(tree.sysroot()), "0000:01:00.0", "0000:02:00.0")
    assert verdict.map_type == MapType.NOT_SUPPORTED
    assert "AMD family 0x15 is older than Zen (0x17)" in verdict.reason


def test_a_known_non_x86_arch_never_passes_the_cpu_rule(tmp_path):
    tree = _two_root_ports(SysfsTree(tmp_path / "node", arch="aarch64", cpu=("AuthenticAMD", 25),
                                     config=NVMET_READY_CONFIG))
    verdict = pair_verdict(read_node(tree.sysroot()), "0000:01:00.0", "0000:02:00.0")
    assert verdict.map_type == MapType.NOT_SUPPORTED
    assert "arch aarch64: only x86 AMD CPUs" in verdict.reason
