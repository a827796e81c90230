"""Verdicts on real sysfs trees, checked against calc_map_type_and_dist() worked by hand.

Every expected value below follows from drivers/pci/p2pdma.c, not from the code under
test: walk up from the provider, checking ACS on each device *before* looking for it in
the client's chain; the first device found is the common upstream bridge; then check ACS
on the client's chain below it. dist = steps up from the provider + steps up from the
client; with no common bridge, dist = both chains' lengths.

Bus numbers follow the builder's depth-first order; each topology lists them.
"""

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Cmb
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.rules import KernelRules
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import (
    MapType,
    distance_many,
    pair_verdict,
    publication,
)
from tests.support.sysfs_tree import ACS_CR, ACS_EC, ACS_RR, ACS_SV, ACS_UF, KERNEL_IOMMU_ACS, SysfsTree

INTEL = ("GenuineIntel", 6)
EPYC = ("AuthenticAMD", 23)  # family 0x17, Zen
HYGON = ("HygonGenuine", 24)  # family 0x18, but not X86_VENDOR_AMD
OLD_AMD = ("AuthenticAMD", 22)  # family 0x16

CMB_64M = Cmb(cmbsz=(64 << 12) | (2 << 8) | 0x1F, cmbloc=0x2)  # 64 x 1 MiB, SQS LISTS RDS WDS (+CQS)


# --------------------------------------------------------------------------------------
# Topologies
# --------------------------------------------------------------------------------------
def switch_and_root_ports(tree, root_port_acs=0, down_acs=None, endpoint_acs=None):
    """q35: 00:00.0 host bridge; 00:01.0 -> [01] switch up 01:00.0 -> [02] down 02:00.0..02:03.0
    -> [03] nvme0 03:00.0 (provider), [04] nvme1 04:00.0, [05] mlx5_0 05:00.0, [06] empty;
    00:02.0 -> [07] nvme2 07:00.0."""
    rp = tree.root_port("00:01.0", acs_ctrl=root_port_acs)
    sw = tree.switch(rp, downstream=4, acs_ctrl=down_acs)
    tree.nvme(sw.down[0], cmb=CMB_64M, p2pmem=(CMB_64M.size_bytes, CMB_64M.size_bytes, True), acs_ctrl=endpoint_acs)
    tree.nvme(sw.down[1])
    tree.rdma_nic(sw.down[2], name="mlx5_0", netdev="eth0")
    rp2 = tree.root_port("00:02.0", acs_ctrl=root_port_acs)
    tree.nvme(rp2)


def cascade(tree):
    """00:01.0 -> [01] SW1 up 01:00.0 -> [02] SW1 down 02:00.0 -> [03] SW2 up 03:00.0 -> [04]
    SW2 down 04:00.0 -> [05] P 05:00.0, SW2 down 04:01.0 -> [06] C2 06:00.0;
    SW1 down 02:01.0 -> [07] C 07:00.0."""
    rp = tree.root_port("00:01.0", acs_ctrl=0)
    sw1 = tree.switch(rp, downstream=0)
    first = tree.downstream_port(sw1)
    sw2 = tree.switch(first, downstream=2)
    tree.nvme(sw2.down[0], cmb=CMB_64M, p2pmem=(CMB_64M.size_bytes, CMB_64M.size_bytes, True))
    tree.nvme(sw2.down[1])
    second = tree.downstream_port(sw1)
    tree.nvme(second)


def multifunction_below_root_port(tree, root_port_acs=0, acs_on=None):
    """00:02.0 -> [01] a two-function device 01:00.0 / 01:00.1; ACS RR on one function if asked."""
    rp = tree.root_port("00:02.0", acs_ctrl=root_port_acs)
    tree.endpoint(rp, slot=0, function=0, multifunction=True, acs_ctrl=ACS_RR if acs_on == 0 else None)
    tree.endpoint(rp, slot=0, function=1, multifunction=True, acs_ctrl=ACS_RR if acs_on == 1 else None)


def sriov_behind_switch(tree):
    """00:01.0 -> [01] switch up 01:00.0 -> [02] down 02:00.0 -> [03] PF 03:00.0 with VFs
    03:00.1, 03:00.2; down 02:01.0 -> [04] 04:00.0."""
    rp = tree.root_port("00:01.0", acs_ctrl=0)
    sw = tree.switch(rp, downstream=2)
    pf = tree.endpoint(sw.down[0], driver="mlx5_core")
    tree.sriov(pf, 2)
    tree.endpoint(sw.down[1])


def sriov_on_root_bus(tree):
    """An RCiEP PF 00:05.0 with VF 00:05.1 on the root bus: neither has an upstream bridge."""
    pf = tree.endpoint("00:05.0", port_type="rciep")
    tree.sriov(pf, 1)


def host_bridges(tree, first=(0x8086, 0x2030), second=(0x8086, 0x2030), second_domain=0, second_bus=0x80):
    """pci0000:00 (00:00.0 = first) -> 00:01.0 -> [01] P 01:00.0;
    pciDDDD:BB (BB:00.0 = second) -> BB:01.0 -> [BB+1] C."""
    tree.host_bridge(0, 0, device=first)
    rp = tree.root_port("0000:00:01.0", acs_ctrl=0)
    tree.nvme(rp, cmb=CMB_64M, p2pmem=(CMB_64M.size_bytes, CMB_64M.size_bytes, True))
    tree.host_bridge(second_domain, second_bus, device=second)
    rp2 = tree.root_port("%04x:%02x:01.0" % (second_domain, second_bus), acs_ctrl=0)
    tree.nvme(rp2)


def skylake_root_ports(tree, first_device_slot="00.0", port_type_root=True):
    """No 00.0 host bridge device: the first device on the root bus is a root port 8086:2030
    (Skylake-E) at first_device_slot; P below it, C below a second root port 00:03.0."""
    rp = tree.root_port("00:%s" % first_device_slot, acs_ctrl=0, ids=(0x8086, 0x2030))
    if not port_type_root:
        rp.port_type = "switch_downstream"  # as a mislabelled port would read
    tree.nvme(rp, cmb=CMB_64M, p2pmem=(CMB_64M.size_bytes, CMB_64M.size_bytes, True))
    rp2 = tree.root_port("00:03.0", acs_ctrl=0, ids=(0x8086, 0x2031))
    tree.nvme(rp2)


def make(tmp_path, build, kernel="6.1.0-28-amd64", cpu=INTEL, host_bridge=(0x8086, 0x29C0), **kwargs):
    tree = SysfsTree(tmp_path, kernel=kernel, cpu=cpu, host_bridge=host_bridge)
    build(tree, **kwargs)
    return read_node(tree.sysroot())


# --------------------------------------------------------------------------------------
# Pair verdicts
# --------------------------------------------------------------------------------------
CASES = [
    # id, topology, topology kwargs, cpu, kernel, provider, client, map_type, distance, common upstream, acs list
    ("same-switch", switch_and_root_ports, {}, INTEL, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:04:00.0", MapType.BUS_ADDR, 4, "0000:01:00.0", []),
    ("same-switch-by-names", switch_and_root_ports, {}, INTEL, "6.1.0-28-amd64",
     "nvme0", "mlx5_0", MapType.BUS_ADDR, 4, "0000:01:00.0", []),
    ("namespace-and-netdev", switch_and_root_ports, {}, INTEL, "6.1.0-28-amd64",
     "nvme0n1", "eth0", MapType.BUS_ADDR, 4, "0000:01:00.0", []),
    ("same-function", switch_and_root_ports, {}, INTEL, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:03:00.0", MapType.BUS_ADDR, 0, "0000:03:00.0", []),
    # Chains [03:00.0, 02:00.0, 01:00.0, 00:01.0] and [07:00.0, 00:02.0] never meet: 4 + 2.
    ("root-ports-q35-intel", switch_and_root_ports, {}, INTEL, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:07:00.0", MapType.NOT_SUPPORTED, -1, None, []),
    ("root-ports-epyc", switch_and_root_ports, {}, EPYC, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:07:00.0", MapType.THRU_HOST_BRIDGE, 6, None, []),
    ("root-ports-hygon", switch_and_root_ports, {}, HYGON, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:07:00.0", MapType.NOT_SUPPORTED, -1, None, []),
    ("root-ports-amd-family-16h", switch_and_root_ports, {}, OLD_AMD, "6.12.0-1-amd64",
     "0000:03:00.0", "0000:07:00.0", MapType.NOT_SUPPORTED, -1, None, []),
    # Without a common bridge the ACS the provider's walk met is never used (acs_redirects stays false).
    ("acs-without-common-bridge", switch_and_root_ports, {"root_port_acs": KERNEL_IOMMU_ACS}, EPYC, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:07:00.0", MapType.THRU_HOST_BRIDGE, 6, None, []),
    # Root port above the common switch: not on the checked path.
    ("acs-above-ancestor", switch_and_root_ports, {"root_port_acs": KERNEL_IOMMU_ACS}, INTEL, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:04:00.0", MapType.BUS_ADDR, 4, "0000:01:00.0", []),
    # IOMMU-style ACS on every downstream port: provider side 02:00.0, then client side 02:01.0.
    ("acs-on-downstream-ports-intel", switch_and_root_ports, {"down_acs": ACS_SV | ACS_RR | ACS_CR | ACS_UF},
     INTEL, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:04:00.0", MapType.NOT_SUPPORTED, -1, "0000:01:00.0", ["0000:02:00.0", "0000:02:01.0"]),
    ("acs-on-downstream-ports-epyc", switch_and_root_ports, {"down_acs": ACS_RR}, EPYC, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:04:00.0", MapType.THRU_HOST_BRIDGE, 4, "0000:01:00.0", ["0000:02:00.0", "0000:02:01.0"]),
    # EC alone redirects too.
    ("acs-egress-control", switch_and_root_ports, {"down_acs": ACS_EC}, EPYC, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:04:00.0", MapType.THRU_HOST_BRIDGE, 4, "0000:01:00.0", ["0000:02:00.0", "0000:02:01.0"]),
    # ACS on the provider endpoint itself (it is checked before the walk moves up).
    ("acs-on-provider-endpoint", switch_and_root_ports, {"endpoint_acs": ACS_RR}, INTEL, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:04:00.0", MapType.NOT_SUPPORTED, -1, "0000:01:00.0", ["0000:03:00.0"]),
    # Even the same function goes through the host bridge when its own ACS redirects: dist 0.
    ("acs-on-same-function-epyc", switch_and_root_ports, {"endpoint_acs": ACS_RR}, EPYC, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:03:00.0", MapType.THRU_HOST_BRIDGE, 0, "0000:03:00.0", ["0000:03:00.0"]),
    # Cascaded switches, uneven depth: provider 4 steps up to SW1 up (01:00.0), client 2.
    ("cascade-uneven", cascade, {}, INTEL, "6.1.0-28-amd64",
     "0000:05:00.0", "0000:07:00.0", MapType.BUS_ADDR, 6, "0000:01:00.0", []),
    ("cascade-uneven-reversed", cascade, {}, INTEL, "6.1.0-28-amd64",
     "0000:07:00.0", "0000:05:00.0", MapType.BUS_ADDR, 6, "0000:01:00.0", []),
    ("cascade-inner-switch", cascade, {}, INTEL, "6.1.0-28-amd64",
     "0000:05:00.0", "0000:06:00.0", MapType.BUS_ADDR, 4, "0000:03:00.0", []),
    # Two functions of one device below a root port: ancestor is the root port, dist 2.
    ("multifunction", multifunction_below_root_port, {}, INTEL, "6.1.0-28-amd64",
     "0000:01:00.0", "0000:01:00.1", MapType.BUS_ADDR, 2, "0000:00:02.0", []),
    # The ancestor is on the provider side of the walk, so its ACS counts (the lab's vIOMMU case).
    ("multifunction-root-port-acs", multifunction_below_root_port, {"root_port_acs": KERNEL_IOMMU_ACS},
     INTEL, "6.1.0-28-amd64",
     "0000:01:00.0", "0000:01:00.1", MapType.NOT_SUPPORTED, -1, "0000:00:02.0", ["0000:00:02.0"]),
    ("multifunction-acs-on-client-function", multifunction_below_root_port, {"acs_on": 1}, EPYC, "6.1.0-28-amd64",
     "0000:01:00.0", "0000:01:00.1", MapType.THRU_HOST_BRIDGE, 2, "0000:00:02.0", ["0000:01:00.1"]),
    ("vf-and-pf", sriov_behind_switch, {}, INTEL, "6.1.0-28-amd64",
     "0000:03:00.0", "0000:03:00.1", MapType.BUS_ADDR, 2, "0000:02:00.0", []),
    ("vf-and-vf", sriov_behind_switch, {}, INTEL, "6.1.0-28-amd64",
     "0000:03:00.1", "0000:03:00.2", MapType.BUS_ADDR, 2, "0000:02:00.0", []),
    ("vf-across-switch", sriov_behind_switch, {}, INTEL, "6.1.0-28-amd64",
     "0000:03:00.2", "0000:04:00.0", MapType.BUS_ADDR, 4, "0000:01:00.0", []),
    # PF on a root bus: pci_upstream_bridge() of the VF is NULL too, so no common bridge: 1 + 1.
    ("vf-of-rciep-q35", sriov_on_root_bus, {}, INTEL, "6.1.0-28-amd64",
     "0000:00:05.0", "0000:00:05.1", MapType.NOT_SUPPORTED, -1, None, []),
    ("vf-of-rciep-epyc", sriov_on_root_bus, {}, EPYC, "6.1.0-28-amd64",
     "0000:00:05.0", "0000:00:05.1", MapType.THRU_HOST_BRIDGE, 2, None, []),
]


@pytest.mark.parametrize(
    "topology, kwargs, cpu, kernel, provider, client, map_type, distance, ancestor, acs",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_pair_verdict(tmp_path, topology, kwargs, cpu, kernel, provider, client, map_type, distance, ancestor, acs):
    node = make(tmp_path, topology, kernel=kernel, cpu=cpu, **kwargs)
    verdict = pair_verdict(node, provider, client)
    assert (verdict.map_type, verdict.distance, verdict.common_upstream, verdict.acs_redirect) == (
        map_type,
        distance,
        ancestor,
        acs,
    )
    if map_type != MapType.BUS_ADDR:
        assert verdict.fix
    else:
        assert verdict.fix is None


HOST_BRIDGE_CASES = [
    # id, kernel, first, second, second domain, second bus, map type, distance
    # Same host bridge, Skylake-E 2030 on 6.1: listed, so through the host bridge: 2 + 2.
    ("skylake-across-host-bridges", "6.1.0-28-amd64", (0x8086, 0x2030), (0x8086, 0x2031), 0, 0x80,
     MapType.THRU_HOST_BRIDGE, 4),
    # REQ_SAME_HOST_BRIDGE entries refuse a path between two host bridges.
    ("xeon-e5-across-host-bridges", "6.1.0-28-amd64", (0x8086, 0x3C00), (0x8086, 0x3C00), 0, 0x80,
     MapType.NOT_SUPPORTED, -1),
    ("one-side-unlisted", "6.1.0-28-amd64", (0x8086, 0x09A2), (0x8086, 0x29C0), 0, 0x80,
     MapType.NOT_SUPPORTED, -1),
    ("cross-domain-listed", "6.1.0-28-amd64", (0x8086, 0x09A2), (0x8086, 0x09A2), 1, 0x00,
     MapType.THRU_HOST_BRIDGE, 4),
    ("cross-domain-q35", "6.1.0-28-amd64", (0x8086, 0x29C0), (0x8086, 0x29C0), 1, 0x00,
     MapType.NOT_SUPPORTED, -1),
    # Google's wildcard entry arrived in 7.1; Intel's DSA in 7.2 and 7.1.3; Zhaoxin in 7.4.
    ("google-6.12", "6.12.117", (0x1AE0, 0x0042), (0x1AE0, 0x0043), 0, 0x80, MapType.NOT_SUPPORTED, -1),
    ("google-7.1", "7.1.0", (0x1AE0, 0x0042), (0x1AE0, 0x0043), 0, 0x80, MapType.THRU_HOST_BRIDGE, 4),
    ("intel-dsa-7.1.2", "7.1.2", (0x8086, 0x0B25), (0x8086, 0x0B25), 0, 0x80, MapType.NOT_SUPPORTED, -1),
    ("intel-dsa-7.1.3", "7.1.3", (0x8086, 0x0B25), (0x8086, 0x0B25), 0, 0x80, MapType.THRU_HOST_BRIDGE, 4),
    ("intel-qat-mainline", "7.4.0", (0x8086, 0x4940), (0x8086, 0x4942), 0, 0x80, MapType.THRU_HOST_BRIDGE, 4),
    ("zhaoxin-same-only-7.4", "7.4.0", (0x1D17, 0x1003), (0x1D17, 0x1003), 0, 0x80, MapType.NOT_SUPPORTED, -1),
    ("zhaoxin-kh50000-7.4", "7.4.0", (0x1D17, 0x1008), (0x1D17, 0x1008), 0, 0x80, MapType.THRU_HOST_BRIDGE, 4),
    ("zhaoxin-kh50000-7.3", "7.3.0", (0x1D17, 0x1008), (0x1D17, 0x1008), 0, 0x80, MapType.NOT_SUPPORTED, -1),
]


@pytest.mark.parametrize(
    "kernel, first, second, domain, bus, map_type, distance",
    [case[1:] for case in HOST_BRIDGE_CASES],
    ids=[case[0] for case in HOST_BRIDGE_CASES],
)
def test_host_bridge_whitelist_per_release(tmp_path, kernel, first, second, domain, bus, map_type, distance):
    node = make(
        tmp_path, host_bridges, kernel=kernel, host_bridge=None, first=first, second=second,
        second_domain=domain, second_bus=bus,
    )
    client = "%04x:%02x:00.0" % (domain, bus + 1)
    verdict = pair_verdict(node, "0000:01:00.0", client)
    assert (verdict.map_type, verdict.distance, verdict.common_upstream) == (map_type, distance, None)


@pytest.mark.parametrize(
    "kernel, first, same, expected",
    [
        # Same host bridge: a REQ_SAME_HOST_BRIDGE entry is enough.
        ("6.1.0-28-amd64", (0x8086, 0x3C00), True, MapType.THRU_HOST_BRIDGE),
        ("6.1.0-28-amd64", (0x8086, 0x2F01), True, MapType.THRU_HOST_BRIDGE),
        ("6.1.0-28-amd64", (0x8086, 0x29C0), True, MapType.NOT_SUPPORTED),
    ],
)
def test_same_host_bridge_root_ports(tmp_path, kernel, first, same, expected):
    def build(tree):
        tree.host_bridge(0, 0, device=first)
        switch_and_root_ports(tree)

    node = make(tmp_path, build, kernel=kernel, host_bridge=None)
    assert pair_verdict(node, "0000:03:00.0", "0000:07:00.0").map_type == expected


@pytest.mark.parametrize(
    "slot, port_type_root, expected",
    [
        ("00.0", True, MapType.THRU_HOST_BRIDGE),  # first device at devfn 00.0
        ("01.0", True, MapType.THRU_HOST_BRIDGE),  # not 00.0 but a root port
        ("01.0", False, MapType.NOT_SUPPORTED),  # neither: pci_host_bridge_dev() returns NULL
    ],
)
def test_whitelist_looks_at_the_first_device_on_the_root_bus(tmp_path, slot, port_type_root, expected):
    node = make(tmp_path, skylake_root_ports, host_bridge=None, first_device_slot=slot, port_type_root=port_type_root)
    provider = "0000:01:00.0"
    client = "0000:02:00.0"
    verdict = pair_verdict(node, provider, client)
    assert verdict.map_type == expected
    if expected == MapType.NOT_SUPPORTED:
        assert "neither devfn 00.0 nor a root port" in verdict.reason


# --------------------------------------------------------------------------------------
# Fixes and kernel log lines
# --------------------------------------------------------------------------------------
def test_acs_fix_names_exactly_the_redirecting_ports_in_kernel_order(tmp_path):
    node = make(tmp_path, switch_and_root_ports, down_acs=ACS_RR | ACS_CR)
    verdict = pair_verdict(node, "nvme0", "nvme1")
    assert verdict.kernel_params == ["pci=disable_acs_redir=0000:02:00.0;0000:02:01.0"]
    assert "pci=disable_acs_redir=0000:02:00.0;0000:02:01.0" in verdict.fix
    assert verdict.kernel_log == [
        "0000:04:00.0: ACS redirect is set between the client and provider (0000:03:00.0)",
        "0000:04:00.0: to disable ACS redirect for this path, add the kernel parameter: "
        "pci=disable_acs_redir=0000:02:00.0;0000:02:01.0",
        "0000:00:00.0: Host bridge not in P2PDMA whitelist: 8086:29c0",
        "0000:04:00.0: cannot be used for peer-to-peer DMA as the client and provider (0000:03:00.0) do not "
        "share an upstream bridge or whitelisted host bridge",
    ]


def test_config_acs_is_offered_from_6_11(tmp_path):
    node = make(tmp_path, switch_and_root_ports, kernel="6.12.0-1-amd64", down_acs=ACS_RR)
    verdict = pair_verdict(node, "nvme0", "nvme1")
    assert verdict.kernel_params == [
        "pci=disable_acs_redir=0000:02:00.0;0000:02:01.0",
        "pci=config_acs=0x00xx@0000:02:00.0;0x00xx@0000:02:01.0",
    ]
    assert "pci=config_acs=0x00xx@0000:02:00.0;0x00xx@0000:02:01.0" in verdict.fix


def test_acs_fix_merges_an_existing_disable_acs_redir(tmp_path):
    tree = SysfsTree(tmp_path, cmdline="root=/dev/vda1 pci=noaer,disable_acs_redir=0000:00:01.0 quiet")
    switch_and_root_ports(tree, down_acs=ACS_RR)
    verdict = pair_verdict(read_node(tree.sysroot()), "nvme0", "nvme1")
    assert verdict.kernel_params[0] == "pci=disable_acs_redir=0000:00:01.0;0000:02:00.0;0000:02:01.0"


def test_no_common_bridge_without_acs_logs_no_whitelist_line(tmp_path):
    # warn = acs_redirects, which stays false when the walks never meet.
    node = make(tmp_path, switch_and_root_ports)
    verdict = pair_verdict(node, "nvme0", "nvme2")
    assert verdict.kernel_log == [
        "0000:07:00.0: cannot be used for peer-to-peer DMA as the client and provider (0000:03:00.0) do not "
        "share an upstream bridge or whitelisted host bridge"
    ]
    assert "move 0000:07:00.0 behind switch 0000:01:00.0" in verdict.fix
    assert "8086:29c0" in verdict.fix and "not whitelisted in kernel 6.1.0-28-amd64" in verdict.fix


def test_unlisted_host_bridge_names_the_first_release_that_lists_it(tmp_path):
    node = make(
        tmp_path, host_bridges, kernel="6.12.0-1-amd64", host_bridge=None,
        first=(0x1AE0, 0x0042), second=(0x1AE0, 0x0042),
    )
    verdict = pair_verdict(node, "0000:01:00.0", "0000:81:00.0")
    assert "host bridge 1ae0:0042 (0000:00:00.0) is not whitelisted in kernel 6.12.0-1-amd64" in verdict.fix
    assert "first whitelisted in 7.1" in verdict.fix


def test_debian_release_is_judged_by_its_upstream_sublevel(tmp_path):
    tree = SysfsTree(tmp_path, kernel="7.1.0-1-amd64", upstream_version="7.1.3", host_bridge=None)
    host_bridges(tree, first=(0x8086, 0x0B25), second=(0x8086, 0x0B25))
    node = read_node(tree.sysroot())
    assert node.kernel.version == (7, 1, 3)
    assert pair_verdict(node, "0000:01:00.0", "0000:81:00.0").map_type == MapType.THRU_HOST_BRIDGE
    older = KernelRules.for_release("7.1.2")
    assert pair_verdict(node, "0000:01:00.0", "0000:81:00.0", rules=older).map_type == MapType.NOT_SUPPORTED


# --------------------------------------------------------------------------------------
# Unknown ACS
# --------------------------------------------------------------------------------------
def test_unreadable_config_reports_unknown_acs_and_run_as_root(tmp_path):
    tree = SysfsTree(tmp_path)
    rp = tree.root_port("00:01.0", acs_ctrl=0)
    sw = tree.switch(rp, downstream=2)
    sw.down[1].config_bytes = 64  # what a non-root reader gets
    tree.nvme(sw.down[0], p2pmem=(1 << 21, 1 << 21, True))
    tree.nvme(sw.down[1])
    node = read_node(tree.sysroot())
    verdict = pair_verdict(node, "nvme0", "nvme1")
    assert (verdict.map_type, verdict.distance) == (MapType.BUS_ADDR, 4)
    assert verdict.acs_unknown == ["0000:02:01.0"]
    assert not verdict.certain
    assert "run as root" in verdict.fix
    assert any("64 bytes" in p.message and "run as root" in p.fix for p in node.problems)


# --------------------------------------------------------------------------------------
# distance_many
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "clients, supported, distance",
    [
        (["nvme1", "mlx5_0"], True, 8),  # 4 + 4
        (["nvme0", "nvme1"], True, 4),  # 0 + 4
        (["nvme1", "nvme2"], False, -1),  # nvme2 is across root ports on q35
        (["rxe0"], False, -1),  # not a PCI device
        ([], False, -1),  # no clients
    ],
)
def test_distance_many(tmp_path, clients, supported, distance):
    tree = SysfsTree(tmp_path)
    switch_and_root_ports(tree)
    tree.rxe("rxe0", netdev="eth0")
    verdict = distance_many(read_node(tree.sysroot()), "nvme0", clients)
    assert (verdict.supported, verdict.distance) == (supported, distance)
    assert len(verdict.clients) == len(clients)
    data = verdict.to_dict()
    assert data["provider"] == "0000:03:00.0" and data["distance"] == distance


def test_non_pci_client_verdict_says_why(tmp_path):
    tree = SysfsTree(tmp_path)
    switch_and_root_ports(tree)
    tree.rxe("rxe0", netdev="eth0")
    verdict = distance_many(read_node(tree.sysroot()), "nvme0", ["nvme1", "rxe0"])
    rxe = verdict.clients[1]
    assert rxe.client is None and rxe.client_name == "rxe0"
    assert rxe.map_type == MapType.NOT_SUPPORTED
    assert "software RDMA" in rxe.reason and "not a PCI device" in rxe.reason


def test_unknown_provider_names_what_exists(tmp_path):
    node = make(tmp_path, switch_and_root_ports)
    with pytest.raises(P2PError, match="unknown device 'nvme9'.*nvme0, nvme1, nvme2"):
        distance_many(node, "nvme9", ["nvme1"])
    with pytest.raises(P2PError, match="no PCI device 0000:09:00.0"):
        pair_verdict(node, "0000:09:00.0", "nvme1")


def test_publication_is_separate_from_distance(tmp_path):
    tree = SysfsTree(tmp_path)
    rp = tree.root_port("00:01.0", acs_ctrl=0)
    sw = tree.switch(rp, downstream=2)
    no_rds = Cmb(cmbsz=(64 << 12) | (2 << 8) | 0x17, cmbloc=0x2)  # WDS without RDS
    tree.nvme(sw.down[0], cmb=no_rds, p2pmem=(no_rds.size_bytes, no_rds.size_bytes, False))
    tree.nvme(sw.down[1])
    node = read_node(tree.sysroot())
    assert distance_many(node, "nvme0", ["nvme1"]).distance == 4
    info = publication(node, "nvme0")
    assert info["has_p2pmem"] and not info["published"]
    assert "lacks RDS" in info["why"]
    assert not publication(node, "nvme1")["has_p2pmem"]


@pytest.mark.parametrize(
    "kernel, note",
    [
        ("5.15.0-91-generic", "predates 6.1"),
        ("custom", "release 'custom' is unknown, so the newest rules known (7.4) were applied"),
    ],
)
def test_releases_outside_the_rules_say_so(tmp_path, kernel, note):
    node = make(tmp_path, switch_and_root_ports, kernel=kernel)
    assert note in pair_verdict(node, "nvme0", "nvme1").reason
    # The older table still holds the entries 6.1 has.
    assert KernelRules.for_release(kernel).lookup(0x8086, 0x2030) is not None


@pytest.mark.parametrize(
    "kernel, iommu, note",
    [
        ("6.1.0-28-amd64", False, None),
        ("6.11.5", False, "will not clear them"),
        ("6.12.22", False, "will not clear them"),
        ("6.12.22", True, "the kernel set these bits, so the parameter works"),
        ("6.12.23", False, None),
        ("6.13.10", False, "will not clear them"),
        ("6.14.2", False, None),
        ("6.15.0", False, None),
        ("6.11.0-19-generic", False, "will not clear them"),  # every 6.11 has it
        ("6.14.0-15-generic", False, "hides its sublevel: if it predates 9cf8a952d57b"),
        ("6.1.0-28-amd64", False, None),
    ],
)
def test_acs_parameter_bug_of_6_11_to_6_14(tmp_path, kernel, iommu, note):
    tree = SysfsTree(tmp_path, kernel=kernel, iommu=iommu)
    switch_and_root_ports(tree, down_acs=ACS_RR)
    fix = pair_verdict(read_node(tree.sysroot()), "nvme0", "nvme1").fix
    if note is None:
        assert "only put back the firmware's ACS setting" not in fix
    else:
        assert "only put back the firmware's ACS setting" in fix
        assert note in fix


@pytest.mark.parametrize(
    "param, listed",
    [
        ("0000:02:00.0", ["0000:02:00.0"]),
        ("02:01.0", ["0000:02:01.0"]),
        ("0000:00:01.0/00.0/00.0", ["0000:02:00.0"]),  # root port, switch up, first down port
        ("00:01.0/00.0/01.0;00:02.0", ["0000:02:01.0"]),
        ("00:01.0/01.0/00.0", []),
        ("pci:104c:8233", ["0000:02:00.0", "0000:02:01.0"]),  # every xio3130 downstream port
        ("pci:104c:0", ["0000:02:00.0", "0000:02:01.0"]),
        ("pci:1b36:8233", []),
    ],
)
def test_devices_already_named_on_the_command_line(tmp_path, param, listed):
    tree = SysfsTree(tmp_path, cmdline='root=/dev/vda1 "pci=disable_acs_redir=%s"' % param)
    switch_and_root_ports(tree, down_acs=ACS_RR)
    fix = pair_verdict(read_node(tree.sysroot()), "nvme0", "nvme1").fix
    if listed:
        verb = "is" if len(listed) == 1 else "are"
        assert "%s %s already named by pci=disable_acs_redir" % (", ".join(listed), verb) in fix
    else:
        assert "already named" not in fix


@pytest.mark.parametrize(
    "cmdline, kept",
    [
        ('root=/dev/vda1 "pci=disable_acs_redir=0000:00:02.0"', ["0000:00:02.0"]),
        ("root=/dev/vda1 pci=disable_acs_redir=pci:1b36:000c", ["0000:00:02.0"]),  # every QEMU root port
        ("root=/dev/vda1 pci=disable_acs_redir=0000:00:09.0", []),
        ("root=/dev/vda1", []),
    ],
)
def test_direct_path_keeps_the_parameter_that_clears_its_acs(tmp_path, cmdline, kept):
    tree = SysfsTree(tmp_path, cmdline=cmdline)
    multifunction_below_root_port(tree)
    verdict = pair_verdict(read_node(tree.sysroot()), "0000:01:00.0", "0000:01:00.1")
    assert verdict.map_type == MapType.BUS_ADDR
    assert verdict.fix is None
    if kept:
        assert verdict.kernel_params == ["pci=disable_acs_redir=%s" % ";".join(kept)]
        assert "ACS redirect is off at %s because pci=disable_acs_redir" % ", ".join(kept) in verdict.reason
    else:
        assert verdict.kernel_params == []
        assert "keep that parameter" not in verdict.reason
