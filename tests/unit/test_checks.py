"""The node checks on real trees: each status with the why, fix and evidence a user acts on."""

from __future__ import annotations

from typing import Dict, List, Optional

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
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
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import CMBSZ_RDS, CMBSZ_WDS, Cmb
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from tests.support.nodes import CMB_16M, NVMET_READY_CONFIG, PUBLISHED_16M, switch_node
from tests.support.sysfs_tree import SysfsTree

SZU_1M = 2 << 8


def _checks(tree: SysfsTree, providers: Optional[List[str]] = None, clients: Optional[List[str]] = None,
            policy: str = "kernel") -> Dict[str, CheckResult]:
    return {r.id: r for r in run_checks(read_node(tree.sysroot()), providers, clients, policy)}


def test_a_good_switch_node_passes_everything(tmp_path):
    results = _checks(switch_node(tmp_path / "node"), ["nvme0"], ["mlx5_0", "nvme1n1"], "switch")
    assert {r.id: r.status for r in results.values() if r.status != PASS} == {}
    locality = results["locality:0000:03:00.0"].evidence
    assert locality["verdict"]["distance"] == 8
    assert locality["links"]["0000:03:00.0"] == "8 GT/s x4 (max 8 GT/s x4)"
    assert locality["acs_control"]["0000:02:00.0"] == "no ACS capability"
    assert list(locality["links"])[:3] == ["0000:03:00.0", "0000:02:00.0", "0000:01:00.0"]


def test_kernel_without_p2pdma_fails_and_names_the_role(tmp_path):
    config = dict(NVMET_READY_CONFIG, CONFIG_PCI_P2PDMA="n")
    result = _checks(switch_node(tmp_path / "node", config=config))["kernel-p2pdma"]
    assert result.status == FAIL
    assert "p2pdma.storage.kernel_build" in (result.fix or "")
    assert result.evidence == {"/boot/config-6.1.0-28-amd64": "CONFIG_PCI_P2PDMA=is not set"}


def test_missing_nvmet_symbols_are_listed(tmp_path):
    config = {k: v for k, v in NVMET_READY_CONFIG.items() if k not in ("CONFIG_NVME_TARGET_RDMA", "CONFIG_CONFIGFS_FS")}
    result = _checks(switch_node(tmp_path / "node", config=config))["kernel-nvmet"]
    assert result.status == FAIL
    assert "set CONFIG_CONFIGFS_FS=m, CONFIG_NVME_TARGET_RDMA=m;" in (result.fix or "")


def test_an_unknown_kernel_config_is_a_warning(tmp_path):
    results = _checks(switch_node(tmp_path / "node", config_source="none"))
    assert results["kernel-p2pdma"].status == WARN
    assert "CONFIG_IKCONFIG_PROC" in (results["kernel-p2pdma"].fix or "")


@pytest.mark.parametrize("arch, status", [("x86_64", PASS), ("aarch64", WARN), ("s390x", FAIL)])
def test_architecture(tmp_path, arch, status):
    assert _checks(switch_node(tmp_path / "node", arch=arch))["arch"].status == status


def test_iommu_in_use_warns_that_acs_redirect_is_on(tmp_path):
    result = _checks(switch_node(tmp_path / "node", iommu=True))["iommu"]
    assert result.status == WARN
    assert "pci=disable_acs_redir=" in (result.fix or "")
    assert result.evidence["iommu"]


def test_cmb_without_wds_is_registered_but_not_published(tmp_path):
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG)
    cmb = Cmb(cmbsz=(16 << 12) | SZU_1M | CMBSZ_RDS, cmbloc=0x2)
    tree.nvme(tree.root_port("00:01.0"), cmb=cmb, p2pmem=(cmb.size_bytes, cmb.size_bytes, False))
    result = _checks(tree, ["nvme0"])["provider:0000:01:00.0"]
    assert result.status == FAIL
    assert "did not publish it" in result.why and "lacks WDS" in result.why
    assert result.evidence["/sys/bus/pci/devices/0000:01:00.0/p2pmem/published"] == 0


def test_a_cmb_that_is_not_2mib_aligned_is_never_registered(tmp_path):
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG)
    cmb = Cmb(cmbsz=(3 << 12) | SZU_1M | CMBSZ_WDS | CMBSZ_RDS, cmbloc=0x2)  # 3 MiB
    tree.nvme(tree.root_port("00:01.0"), cmb=cmb)
    result = _checks(tree, ["nvme0"])["provider:0000:01:00.0"]
    assert result.status == FAIL
    assert "has no p2pmem: the CMB size (3145728 bytes) is not 2 MiB aligned" in result.why
    assert result.evidence["/sys/bus/pci/devices/0000:01:00.0/p2pmem"] == "absent"


def test_a_provider_without_cmb_fails_when_asked_for(tmp_path):
    result = _checks(switch_node(tmp_path / "node"), ["nvme1"])["provider:0000:04:00.0"]
    assert result.status == FAIL
    assert "has no CMB" in result.why


def test_submission_queues_in_the_cmb_warn_unless_turned_off(tmp_path):
    in_use = (CMB_16M.size_bytes, CMB_16M.size_bytes - 65536, True)
    tree = SysfsTree(tmp_path / "a", config=NVMET_READY_CONFIG)
    tree.nvme(tree.root_port("00:01.0"), cmb=CMB_16M, p2pmem=in_use)
    result = _checks(tree)["provider:0000:01:00.0"]
    assert result.status == WARN and result.fix == "add nvme.use_cmb_sqes=0 to the kernel command line"

    tree = SysfsTree(tmp_path / "b", config=NVMET_READY_CONFIG, cmdline="root=/dev/vda1 nvme.use_cmb_sqes=0")
    tree.nvme(tree.root_port("00:01.0"), cmb=CMB_16M, p2pmem=in_use)
    assert _checks(tree)["provider:0000:01:00.0"].status == PASS


def test_no_provider_on_the_node_fails(tmp_path):
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG)
    tree.nvme(tree.root_port("00:01.0"))
    assert _checks(tree)["providers"].status == FAIL


def test_switch_policy_refuses_what_the_kernel_maps_through_the_host_bridge(tmp_path):
    tree = switch_node(tmp_path / "node", cpu=("AuthenticAMD", 0x19))
    kernel = _checks(tree, ["nvme0"], ["nvme2"], "kernel")["locality:0000:03:00.0"]
    switch = _checks(tree, ["nvme0"], ["nvme2"], "switch")["locality:0000:03:00.0"]
    assert kernel.status == PASS
    assert kernel.evidence["verdict"]["clients"][0]["map_type"] == "thru_host_bridge"
    assert switch.status == FAIL and "policy switch requires bus_addr" in switch.why


def test_an_unreachable_client_fails_locality_with_the_kernels_fix(tmp_path):
    result = _checks(switch_node(tmp_path / "node"), clients=["nvme2n1"])["locality"]
    assert result.status == FAIL
    assert "no published provider can serve nvme2n1" in result.why
    assert "move 0000:06:00.0 behind switch 0000:01:00.0" in (result.fix or "")


def test_acs_redirect_on_the_path_names_the_boot_parameter(tmp_path):
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG)
    sw = tree.switch(tree.root_port("00:01.0", acs_ctrl=0), downstream=2, acs_ctrl=0x0C)
    tree.nvme(sw.down[0], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    tree.rdma_nic(sw.down[1])
    result = _checks(tree, ["nvme0"], ["mlx5_0"])["locality:0000:03:00.0"]
    assert result.status == FAIL
    assert "pci=disable_acs_redir=0000:02:00.0;0000:02:01.0" in (result.fix or "")
    assert result.evidence["acs_control"]["0000:02:00.0"] == "RR|CR"


@pytest.mark.parametrize(
    "cleared, status",
    [
        ("0000:01:00.0;0000:02:00.0;0000:02:02.0", PASS),
        ("0000:02:00.0;0000:02:02.0;0000:00:02.0", WARN),
    ],
)
def test_acs_cleared_only_on_the_p2p_path(tmp_path, cleared, status):
    tree = switch_node(tmp_path / "node", cmdline='root=/dev/vda1 "pci=disable_acs_redir=%s"' % cleared)
    result = _checks(tree, ["nvme0"], ["mlx5_0"])["acs-params"]
    assert result.status == status
    if status == WARN:
        assert result.fix == "remove 0000:00:02.0 from the pci= parameter (keep only the ports on the P2P paths)"


def test_competing_providers_warn_unless_one_is_named(tmp_path):
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG)
    sw = tree.switch(tree.root_port("00:01.0", acs_ctrl=0), downstream=3)
    tree.nvme(sw.down[0], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    tree.nvme(sw.down[1], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    tree.rdma_nic(sw.down[2])
    compete = _checks(tree, clients=["mlx5_0"])["providers-compete"]
    assert compete.status == WARN
    assert "at random among 0000:03:00.0, 0000:04:00.0" in compete.why
    assert compete.evidence["candidates"] == {"0000:03:00.0": 4, "0000:04:00.0": 4}
    assert "providers-compete" not in _checks(tree, ["nvme0"], ["mlx5_0"])


def test_a_passthrough_device_in_a_p2p_peers_iommu_group_warns(tmp_path):
    tree = switch_node(tmp_path / "node", iommu=True)
    gpu = tree.endpoint(tree.root_port("00:03.0", acs_ctrl=0), driver="vfio-pci")
    nic = tree.functions["0000:05:00.0"]
    gpu.iommu_group = nic.iommu_group
    result = _checks(tree, ["nvme0"], ["mlx5_0"])["iommu-groups"]
    assert result.status == WARN
    assert result.why.startswith("%s, bound for passthrough" % gpu.bdf)


def test_software_rdma_warns_and_fails_as_a_client(tmp_path):
    tree = switch_node(tmp_path / "node")
    tree.rxe("rxe0", netdev="eth0")
    tree.siw("siw0", netdev="eth0")
    results = _checks(tree, clients=["rxe0", "mlx5_0"])
    assert results["rdma:rxe0"].status == FAIL
    assert results["rdma:siw0"].status == WARN
    assert "silently use system memory" in results["rdma:siw0"].why
    assert results["rdma:mlx5_0"].status == PASS


@pytest.mark.parametrize(
    "build, client, because",
    [
        (lambda t: t.block("dm-0", slaves=["nvme1n1"]), "dm-0", "device-mapper"),
        (lambda t: t.block("md0", slaves=["nvme1n1"]), "md0", "MD RAID"),
        (lambda t: t.block("loop0", backing_file="/srv/ns.img"), "loop0", "loop device"),
        (lambda t: t.nvme_fabrics("nvme7", transport="tcp"), "nvme7n1", "NVMe over Fabrics"),
    ],
)
def test_namespaces_that_cannot_do_p2p_fail(tmp_path, build, client, because):
    tree = switch_node(tmp_path / "node")
    build(tree)
    result = _checks(tree, clients=[client])["namespace:%s" % client]
    assert result.status == FAIL
    assert because in result.why and "EINVAL" in result.why


def test_multipath_heads_fail_as_clients_and_warn_on_the_node(tmp_path):
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG)
    sw = tree.switch(tree.root_port("00:01.0", acs_ctrl=0), downstream=2)
    tree.nvme(sw.down[0], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    tree.nvme(sw.down[1], multipath=True, subsystem=1)
    results = _checks(tree, clients=["nvme1n1"])
    assert results["namespace:nvme1n1"].status == FAIL
    assert "multipath head" in results["namespace:nvme1n1"].why
    assert results["nvme-multipath"].status == WARN
    assert "nvme_core.multipath=N" in (results["nvme-multipath"].fix or "")


def test_unreadable_config_space_warns_naming_the_file(tmp_path):
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG)
    tree.nvme(tree.root_port("00:01.0", config_bytes=64), cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    result = _checks(tree)["config-space"]
    assert result.status == WARN
    assert "/sys/bus/pci/devices/0000:00:01.0/config" in result.why
    assert result.evidence == {"/sys/bus/pci/devices/0000:00:01.0/config": "64 bytes read"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"providers": ["nvme9"]}, "unknown device 'nvme9'"),
        ({"clients": ["0000:00:1f.7"]}, "no PCI device 0000:00:1f.7"),
        ({"policy": "anywhere"}, "unknown policy 'anywhere'"),
    ],
)
def test_bad_input_raises_before_judging(tmp_path, kwargs, message):
    node = read_node(switch_node(tmp_path / "node").sysroot())
    with pytest.raises(P2PError, match=message):
        run_checks(node, **kwargs)


def test_worst_status_orders_fail_over_warn_over_pass():
    results = [CheckResult("a", PASS, ""), CheckResult("b", WARN, ""), CheckResult("c", FAIL, "")]
    assert worst_status(results) == FAIL
    assert worst_status(results[:2]) == WARN
    assert worst_status([]) == PASS


def _pmr_drive(tmp_path, bar4_bytes: int, cmdline: str = "root=/dev/vda1") -> SysfsTree:
    """A drive like QEMU's nvme with pmrdev: no CMB (CMBSZ 0), memory on BAR 4, and a published CMB drive."""
    tree = SysfsTree(tmp_path / "node", config=NVMET_READY_CONFIG, cmdline=cmdline)
    sw = tree.switch(tree.root_port("00:01.0", acs_ctrl=0), downstream=2)
    pmr = tree.nvme(sw.down[0])
    pmr.function.bars = [(0xFE000000, 16384, 0x4), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0xE0000000, bar4_bytes, 0xC)]
    tree.nvme(sw.down[1], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    return tree


def test_memory_on_bar4_without_a_cmb_names_the_pseudo_cmb_quirk(tmp_path):
    result = _checks(_pmr_drive(tmp_path, 32 << 20))["provider:0000:03:00.0"]
    assert result.status == WARN  # nobody asked for it as a provider
    assert "nvme0 advertises no CMB (CMBSZ 0) but has memory on BAR 4 (32 MiB)" in result.why
    assert "nvme.pseudo_cmb=1b36:0010" in (result.fix or "")
    assert "kernel_install_pseudo_cmb_ids: ['1b36:0010']" in (result.fix or "")


def test_a_drive_already_named_for_the_quirk_needs_the_patched_kernel(tmp_path):
    tree = _pmr_drive(tmp_path, 32 << 20, cmdline="root=/dev/vda1 nvme.pseudo_cmb=1b36:0010")
    result = _checks(tree, ["nvme0"])["provider:0000:03:00.0"]
    assert result.status == FAIL
    assert "the running kernel lacks the pseudo-CMB patch" in result.why
    assert "p2pdma.storage.kernel_build" in (result.fix or "")


def test_bar4_smaller_than_one_quirk_unit_is_no_pseudo_cmb(tmp_path):
    results = _checks(_pmr_drive(tmp_path, 8 << 20))
    assert "provider:0000:03:00.0" not in results
    assert "has no CMB (no cmbsz attribute)" in _checks(_pmr_drive(tmp_path / "b", 8 << 20), ["nvme0"])[
        "provider:0000:03:00.0"].why


def test_accepting_a_warn_keeps_it_listed_and_out_of_the_status(tmp_path):
    tree = switch_node(tmp_path / "node")
    tree.rxe("rxe0", netdev="eth0")
    results = run_checks(read_node(tree.sysroot()), ["nvme0"], ["mlx5_0"])
    unmatched = accept_warnings(results, {"rdma:rxe0": "management network only", "iommu": "not a WARN here"})
    (rxe,) = [r for r in results if r.id == "rdma:rxe0"]
    assert (rxe.status, rxe.accepted, rxe.to_dict()["accept_reason"]) == (WARN, True, "management network only")
    assert worst_status(results) == PASS
    assert unmatched == {"iommu": "not a WARN here"}


def test_a_fail_cannot_be_accepted_and_an_accept_needs_a_reason(tmp_path):
    results = run_checks(read_node(switch_node(tmp_path / "node").sysroot()), ["nvme0"], ["nvme2"])
    assert accept_warnings(results, {"locality:0000:03:00.0": "we know"}) == {"locality:0000:03:00.0": "we know"}
    assert worst_status(results) == FAIL
    with pytest.raises(P2PError, match="accepting rdma:rxe0 needs a reason"):
        accept_warnings(results, {"rdma:rxe0": " "})


def test_without_clients_every_published_provider_meets_every_nvme_and_rdma_device(tmp_path):
    tree = switch_node(tmp_path / "node")
    tree.rxe("rxe0", netdev="eth0")  # software RDMA has no PCI device: not a client of the matrix
    node = read_node(tree.sysroot())
    pairs = judged_pairs(node)
    assert [(p.provider, p.client_name, p.map_type) for p in pairs] == [
        ("0000:03:00.0", "nvme0", "bus_addr"),
        ("0000:03:00.0", "nvme1", "bus_addr"),
        ("0000:03:00.0", "nvme2", "not_supported"),
        ("0000:03:00.0", "mlx5_0", "bus_addr"),
    ]
    matrix = {r.id: r for r in run_checks(node)}["pairs"]
    assert matrix.status == PASS and matrix.evidence["unserved"] == ["nvme2"]
