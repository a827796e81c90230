import os
import shutil
import subprocess

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel.kconfig import read_config
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Cmb, split_cmdline
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from tests.support.sysfs_tree import ACS_CR, ACS_RR, SysfsTree

CMB_QEMU_64M = Cmb(cmbsz=(64 << 12) | (2 << 8) | 0x1D, cmbloc=0x2)  # QEMU cmb_size_mb=64: SQS LISTS RDS WDS


@pytest.fixture
def node_tree(tmp_path):
    tree = SysfsTree(
        tmp_path,
        kernel="6.1.0-28-amd64",
        upstream_version="6.1.119",
        cpu=("AuthenticAMD", 25),
        cmdline='BOOT_IMAGE=/vmlinuz root=UUID=1 "pci=disable_acs_redir=0000:00:01.0" nvme.use_cmb_sqes=0',
        config_source="proc",
        iommu=True,
    )
    rp = tree.root_port("00:01.0", acs_ctrl=ACS_RR | ACS_CR)
    sw = tree.switch(rp, downstream=3)
    tree.nvme(sw.down[0], cmb=CMB_QEMU_64M, p2pmem=(64 << 20, 60 << 20, True), link=(4, 4), max_link=(5, 4))
    tree.nvme(sw.down[1], multipath=True, subsystem=1, namespaces=2)
    pf = tree.rdma_nic(sw.down[2], name="mlx5_0", netdev="enp5s0")
    tree.sriov(pf, 2)
    tree.nvme_fabrics("nvme7", transport="tcp")
    tree.rxe("rxe0", netdev="enp5s0")
    tree.net("lo")
    tree.block("dm-0", slaves=["nvme0n1"])
    tree.block("md0", slaves=["nvme0n1"])
    tree.block("loop0", backing_file="/var/lib/disk.img")
    return tree


def test_pci_functions_and_topology(node_tree):
    node = read_node(node_tree.sysroot())
    nvme0 = node.functions["0000:03:00.0"]
    assert (nvme0.vendor, nvme0.device, nvme0.class_code) == (0x1B36, 0x0010, 0x010802)
    assert nvme0.port_type == "endpoint" and not nvme0.is_bridge
    assert nvme0.driver == "nvme"
    assert nvme0.host_bridge == "pci0000:00"
    assert nvme0.sysfs_path == "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0"
    assert (nvme0.link.current_speed, nvme0.link.current_width, nvme0.link.max_speed) == (16.0, 4, 32.0)
    assert nvme0.p2pmem.size == 64 << 20 and nvme0.p2pmem.available == 60 << 20 and nvme0.p2pmem.published
    assert isinstance(nvme0.iommu_group, int)
    assert node.chain("0000:03:00.0") == ["0000:03:00.0", "0000:02:00.0", "0000:01:00.0", "0000:00:01.0"]
    root_port = node.functions["0000:00:01.0"]
    assert root_port.port_type == "root_port" and root_port.acs.redirect_flags == ["RR", "CR"]
    assert node.functions["0000:01:00.0"].port_type == "switch_upstream"
    assert node.functions["0000:01:00.0"].children == ["0000:02:00.0", "0000:02:01.0", "0000:02:02.0"]
    assert node.host_bridge_devices == {"pci0000:00": "0000:00:00.0"}


def test_vf_walks_up_through_its_pf(node_tree):
    node = read_node(node_tree.sysroot())
    vf = node.functions["0000:05:00.1"]
    assert vf.physfn == "0000:05:00.0" and vf.is_vf
    assert vf.ident == "15b3:1018"  # from sysfs: the VF's config space reads ffff:ffff
    assert vf.upstream_bdf == "0000:02:02.0"
    assert node.functions["0000:05:00.0"].virtfns == ["0000:05:00.1", "0000:05:00.2"]


def test_nvme_controllers_cmb_and_namespaces(node_tree):
    node = read_node(node_tree.sysroot())
    nvme0 = node.nvme["nvme0"]
    assert (nvme0.bdf, nvme0.transport, nvme0.state) == ("0000:03:00.0", "pcie", "live")
    cmb = nvme0.cmb
    assert (cmb.sz, cmb.szu, cmb.bir, cmb.ofst) == (64, 2, 2, 0)
    assert cmb.size_bytes == 64 << 20
    assert (cmb.wds, cmb.rds, cmb.lists, cmb.cqs, cmb.sqs) == (True, True, True, False, True)
    assert cmb.publishable and cmb.why_not_published() is None
    start, length = nvme0.cmb_bar
    assert length == 64 << 20 and start % (64 << 20) == 0
    assert cmb.why_not_published(nvme0.cmb_bar) is None
    assert [ns.name for ns in nvme0.namespaces] == ["nvme0n1"]
    assert node.nvme["nvme1"].cmb is None

    fabric = node.nvme["nvme7"]
    assert (fabric.bdf, fabric.transport) == (None, "tcp")


@pytest.mark.parametrize(
    "cmbsz, reason",
    [
        (0, "CMBSZ is 0"),
        ((16 << 12) | (2 << 8) | 0x10, "lacks RDS"),
        ((16 << 12) | (2 << 8) | 0x08, "lacks WDS"),
        ((16 << 12) | (2 << 8) | 0x01, "lacks WDS and RDS"),
        ((3 << 12) | (1 << 8) | 0x18, "not 2 MiB aligned"),  # 3 x 64 KiB
        ((2 << 12) | (2 << 8) | 0x18, None),
    ],
)
def test_why_a_cmb_is_not_published(cmbsz, reason):
    why = Cmb(cmbsz=cmbsz, cmbloc=0).why_not_published()
    if reason is None:
        assert why is None
    else:
        assert reason in why


@pytest.mark.parametrize(
    "cmbloc, bar, registered_size, reason",
    [
        (0x2, (0xC000_0000, 64 << 20), 64 << 20, None),
        (0x2, (0xC000_0000, 32 << 20), 32 << 20, None),  # trimmed to the BAR
        (0x2, (0xC010_0000, 64 << 20), 64 << 20, "not 2 MiB aligned: nvme-pci skips the CMB"),
        (0x2 | (65 << 12), (0xC000_0000, 64 << 20), 0, "lies beyond BAR 2"),  # OFST 65 MiB
        (0x2 | (1 << 12), (0xC000_0000, 64 << 20), 63 << 20, "size (66060288 bytes) is not 2 MiB aligned"),
    ],
)
def test_cmb_registration_follows_nvme_map_cmb(cmbloc, bar, registered_size, reason):
    cmb = Cmb(cmbsz=(64 << 12) | (2 << 8) | 0x18, cmbloc=cmbloc)
    assert cmb.mapped_size(bar) == registered_size
    why = cmb.why_not_registered(bar)
    assert why is None if reason is None else reason in why


def test_unaligned_cmb_bar_is_read_from_resource(tmp_path):
    tree = SysfsTree(tmp_path)
    rp = tree.root_port("00:01.0")
    tree.nvme(rp, cmb=CMB_QEMU_64M, cmb_bar=(0xC010_0000, 64 << 20))
    ctrl = read_node(tree.sysroot()).nvme["nvme0"]
    assert ctrl.cmb_bar == (0xC010_0000, 64 << 20)
    assert "BAR 2 starts at 0xc0100000" in ctrl.cmb.why_not_published(ctrl.cmb_bar)


def test_multipath_head_is_detected_and_refused_as_a_client(node_tree):
    node = read_node(node_tree.sysroot())
    head = node.block["nvme1n1"]
    assert head.kind == "nvme-multipath" and head.backing == ["nvme1"]
    paths = node.nvme["nvme1"].namespaces
    assert [(ns.name, ns.path_node, ns.is_multipath_head) for ns in paths] == [
        ("nvme1n1", "nvme1c1n1", True),
        ("nvme1n2", "nvme1c1n2", True),
    ]
    with pytest.raises(P2PError, match="multipath head node.*nvme1"):
        node.resolve("nvme1n2")


def test_block_device_kinds(node_tree):
    node = read_node(node_tree.sysroot())
    kinds = {name: block.kind for name, block in node.block.items()}
    assert kinds == {
        "nvme0n1": "nvme-pci",
        "nvme1n1": "nvme-multipath",
        "nvme1n2": "nvme-multipath",
        "nvme1c1n1": "nvme-pci",
        "nvme1c1n2": "nvme-pci",
        "nvme7n1": "nvme-fabrics",
        "dm-0": "dm",
        "md0": "md",
        "loop0": "loop",
    }
    assert node.block["nvme1c1n1"].hidden and not node.block["nvme0n1"].hidden
    assert node.block["dm-0"].backing == ["nvme0n1"]
    assert node.block["loop0"].backing == ["/var/lib/disk.img"]
    assert not node.block["dm-0"].can_do_p2p


def test_rdma_and_netdevs(node_tree):
    node = read_node(node_tree.sysroot())
    mlx = node.rdma["mlx5_0"]
    assert (mlx.bdf, mlx.software, mlx.driver, mlx.netdevs) == ("0000:05:00.0", None, "mlx5_core", ["enp5s0"])
    rxe = node.rdma["rxe0"]
    assert (rxe.bdf, rxe.software, rxe.netdevs) == (None, "rxe", ["enp5s0"])
    assert node.netdevs["enp5s0"].bdf == "0000:05:00.0"
    assert node.netdevs["lo"].bdf is None


def test_kernel_info(node_tree):
    kernel = read_node(node_tree.sysroot()).kernel
    assert kernel.release == "6.1.0-28-amd64"
    assert kernel.version == (6, 1, 119)
    assert kernel.config_source == "/proc/config.gz"
    assert kernel.config_value("PCI_P2PDMA") == "y"
    assert kernel.arch == "x86_64"
    assert (kernel.cpu_vendor, kernel.cpu_family) == ("AuthenticAMD", 25)
    assert kernel.iommu_in_use and any("dmar0" in e for e in kernel.iommu_evidence)
    assert kernel.pci_options() == {"disable_acs_redir": "0000:00:01.0"}
    assert kernel.cmdline_params()["nvme.use_cmb_sqes"] == "0"


def test_kernel_config_from_boot(tmp_path):
    tree = SysfsTree(tmp_path, kernel="6.12.0-1-amd64", config={"CONFIG_PCI_P2PDMA": "n", "CONFIG_X86_64": "y"})
    kernel = read_node(tree.sysroot()).kernel
    assert kernel.config_source == "/boot/config-6.12.0-1-amd64"
    assert kernel.config_value("CONFIG_PCI_P2PDMA") is None
    assert not kernel.iommu_in_use


def test_the_node_config_is_spelled_as_the_kernel_build_spells_it(tmp_path):
    tree = SysfsTree(tmp_path, kernel="6.12.0-1-amd64", config={"CONFIG_PCI_P2PDMA": "n", "CONFIG_X86_64": "y"})
    kernel = read_node(tree.sysroot()).kernel
    boot_config = tree.host_path("/boot/config-6.12.0-1-amd64")
    assert kernel.config == read_config(boot_config) == {"PCI_P2PDMA": "n", "X86_64": "y"}


def test_a_config_that_is_not_one_is_a_problem_not_a_crash(tmp_path):
    tree = SysfsTree(tmp_path, kernel="6.12.0-1-amd64", config={"CONFIG_X86_64": "y"})
    with open(tree.host_path("/boot/config-6.12.0-1-amd64"), "a") as config:
        config.write("<html>502 Bad Gateway</html>\n")
    node = read_node(tree.sysroot())
    assert node.kernel.config == {} and node.kernel.config_source is None
    assert any(p.path == "/boot/config-6.12.0-1-amd64" and "not a config line" in p.message for p in node.problems)


@pytest.mark.parametrize(
    "name, bdf",
    [
        ("0000:03:00.0", "0000:03:00.0"),
        ("03:00.0", "0000:03:00.0"),
        ("nvme0", "0000:03:00.0"),
        ("/dev/nvme0", "0000:03:00.0"),
        ("nvme0n1", "0000:03:00.0"),
        ("/dev/nvme0n1p2", "0000:03:00.0"),
        ("nvme1c1n1", "0000:04:00.0"),
        ("mlx5_0", "0000:05:00.0"),
        ("enp5s0", "0000:05:00.0"),
    ],
)
def test_resolve(node_tree, name, bdf):
    assert read_node(node_tree.sysroot()).resolve(name) == bdf


@pytest.mark.parametrize(
    "name, message",
    [
        ("nvme7", "over tcp, not a PCI device"),
        ("nvme7n1", "NVMe over Fabrics"),
        ("rxe0", "software RDMA device \\(rxe\\)"),
        ("lo", "no PCI device"),
        ("dm-0", "device-mapper"),
        ("md0", "MD RAID"),
        ("loop0", "loop device"),
        ("sda", "unknown device 'sda'"),
        ("0000:09:00.0", "no PCI device 0000:09:00.0"),
        ("00:99.0", "not a PCI address"),
    ],
)
def test_resolve_errors_name_the_reason(node_tree, name, message):
    with pytest.raises(P2PError, match=message):
        read_node(node_tree.sysroot()).resolve(name)


def test_missing_tree_is_a_problem_not_a_crash(tmp_path):
    node = read_node(SysRoot(str(tmp_path)))
    assert node.functions == {}
    paths = {p.path for p in node.problems}
    assert "/sys/bus/pci/devices" in paths
    assert "/proc/sys/kernel/osrelease" in paths
    with pytest.raises(P2PError, match="no PCI devices were found"):
        node.resolve("nvme0")


def test_split_cmdline_keeps_quoted_words():
    assert split_cmdline('a "pci=disable_acs_redir=0000:00:01.0;0000:01:00.0" b=1') == [
        "a",
        "pci=disable_acs_redir=0000:00:01.0;0000:01:00.0",
        "b=1",
    ]


def test_builder_rejects_bus_ranges_that_linux_would_not_assign(tmp_path):
    tree = SysfsTree(tmp_path)
    rp = tree.root_port("00:01.0")
    sw = tree.switch(rp, downstream=2)
    tree.switch(sw.down[0], downstream=1)  # below port 0 after port 1 got its bus
    with pytest.raises(ValueError, match="depth-first"):
        tree.write()


@pytest.mark.skipif(shutil.which("lspci") is None, reason="pciutils not installed")
def test_lspci_reads_the_built_tree(node_tree):
    root = node_tree.root
    env = dict(os.environ, LC_ALL="C")
    out = subprocess.run(
        ["lspci", "-A", "linux-sysfs", "-O", "sysfs.path=%s/sys/bus/pci" % root, "-tv"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    assert "\\-01.0-[01-05]----00.0-[02-05]--+-00.0-[03]----00.0" in out
    detail = subprocess.run(
        ["lspci", "-A", "linux-sysfs", "-O", "sysfs.path=%s/sys/bus/pci" % root, "-vvv", "-s", "00:01.0"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    assert "Root Port" in detail
    assert "ACSCtl:\tSrcValid- TransBlk- ReqRedir+ CmpltRedir+" in detail
