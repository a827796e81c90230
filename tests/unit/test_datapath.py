"""p2pctl datapath and p2p_datapath: refusals before any I/O, destination safety, the copy on real files.

The nodes are real trees: the lab's ``switch`` layout built with SysfsTree (cmb0 and cmb1
with CMBs and plain0 behind one switch, cmb2 on a second root port) and the snapshot a
6.12 P2PDMA guest of that layout gave. Device nodes are regular files below the tree's
/dev, which O_DIRECT reads and writes like a disk on ext4 and tmpfs.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.copy import run_copy, sha256_range, transfer
from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.plan import (
    destination_in_use,
    find_signatures,
    parse_size,
    plan_copy,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from tests.support.nodes import CMB_16M, PUBLISHED_16M
from tests.support.sysfs_tree import SysfsTree

GUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "guests"
MIB = 1 << 20
DISK_BYTES = 64 * MIB  # what SysfsTree's namespaces say in /sys/block/<ns>/size


class LabNode:
    """The lab's switch node as a tree, with the files a 6.2+ kernel and udev add."""

    def __init__(self, base: Path, kernel: str = "6.12.22", allocate: bool = True, available: int = 16 * MIB) -> None:
        self.tree = SysfsTree(base, kernel=kernel)
        switch = self.tree.switch(self.tree.root_port("00:04.0", acs_ctrl=0), downstream=3)
        self.cmb0 = self.tree.nvme(switch.down[0], cmb=CMB_16M, p2pmem=(16 * MIB, available, True))
        self.cmb1 = self.tree.nvme(switch.down[1], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
        self.plain0 = self.tree.nvme(switch.down[2])
        self.cmb2 = self.tree.nvme(self.tree.root_port("00:05.0", acs_ctrl=0), cmb=CMB_16M, p2pmem=PUBLISHED_16M)
        self.root: SysRoot = self.tree.sysroot()
        self.devices: Dict[str, str] = {}
        for device in (self.cmb0, self.cmb1, self.plain0, self.cmb2):
            name = device.namespaces[0]
            self.devices[device.name] = name
            self.write("/sys/block/%s/queue/logical_block_size" % name, "512\n")
            path = self.root.host_path("/dev/" + name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.truncate(DISK_BYTES)
            if allocate and device.function.p2pmem is not None:
                # A regular file stands in for the kernel's allocate attribute: mapping it gives pages
                # that are not p2pmem, and p2pmem/available does not drop.
                with open(self.root.host_path(device.function.path + "/p2pmem/allocate"), "wb") as handle:
                    handle.truncate(16 * MIB)
        self.mounts("")

    def write(self, node_path: str, text: str) -> None:
        path = self.root.host_path(self.root.realpath(node_path))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)

    def mounts(self, text: str) -> None:
        self.write("/proc/self/mountinfo", text)

    def fill(self, name: str, data: bytes, offset: int = 0) -> None:
        with open(self.root.host_path("/dev/" + name), "r+b") as handle:
            handle.seek(offset)
            handle.write(data)

    def read(self, name: str, offset: int, size: int) -> bytes:
        with open(self.root.host_path("/dev/" + name), "rb") as handle:
            handle.seek(offset)
            return handle.read(size)

    def plan(self, source="nvme2n1", destination="nvme1n1", provider="nvme0", size=4 * MIB, **kwargs):  # type: ignore
        return plan_copy(read_node(self.root), source, destination, provider, size, **kwargs)


@pytest.fixture
def lab(tmp_path: Path) -> LabNode:
    return LabNode(tmp_path / "node")


def _refusal(func, *args, **kwargs) -> P2PError:  # type: ignore[no-untyped-def]
    with pytest.raises(P2PError) as info:
        func(*args, **kwargs)
    return info.value


# -- sizes -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [("4096", 4096), ("64M", 64 * MIB), ("1G", 1 << 30), ("64MiB", 64 * MIB),
                                            ("8k", 8192)])
def test_sizes_take_binary_units(text, expected):
    assert parse_size(text) == expected


def test_a_size_that_is_not_a_number_is_refused():
    assert "not a number of bytes" in str(_refusal(parse_size, "lots"))


# -- the plan ------------------------------------------------------------------------------
def test_a_good_plan_names_what_it_overwrites_and_the_path(lab):
    plan = lab.plan(offset=MIB)
    assert plan.provider == lab.cmb0.function.bdf
    assert plan.describe() == (
        "read 4194304 bytes at offset 1048576 of /dev/nvme2n1 (%s) into p2pmem of %s; overwrite bytes "
        "1048576-5242879 of /dev/nvme1n1 (%s) with them"
        % (lab.plain0.function.bdf, lab.cmb0.function.bdf, lab.cmb1.function.bdf)
    )
    assert plan.paths["nvme2n1"][0] == lab.cmb0.function.bdf
    assert plan.paths["nvme2n1"][-1] == lab.plain0.function.bdf


def test_provider_on_another_root_port_is_refused_with_the_kernels_reason(lab):
    err = _refusal(lab.plan, provider="nvme3")
    assert "the kernel refuses p2pmem of %s" % lab.cmb2.function.bdf in err.message
    assert "share no upstream bridge" in err.message
    assert err.fix


def test_multipath_head_is_refused_as_the_kernel_would_fail_it(tmp_path):
    tree = SysfsTree(tmp_path, kernel="6.12.22")
    switch = tree.switch(tree.root_port("00:04.0", acs_ctrl=0), downstream=3)
    tree.nvme(switch.down[0], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    tree.nvme(switch.down[1], multipath=True, subsystem=5)
    tree.nvme(switch.down[2], multipath=True, subsystem=5)
    err = _refusal(plan_copy, read_node(tree.sysroot()), "nvme5n1", None, "nvme0", 4 * MIB)
    assert "multipath head node" in err.message and "EREMOTEIO" in err.message
    assert "nvme_core.multipath=N" in (err.fix or "")


def test_fabrics_namespace_is_refused(lab):
    lab.tree.nvme_fabrics("nvme7", transport="tcp")
    err = _refusal(lab.plan, source="nvme7n1")
    assert "NVMe over Fabrics" in err.message and "EREMOTEIO" in err.message


def test_kernel_before_6_2_has_no_allocate_file(tmp_path):
    lab = LabNode(tmp_path, kernel="6.1.0-28-amd64", allocate=False)
    err = _refusal(lab.plan)
    assert "kernel 6.1.0-28-amd64 has no" in err.message and "p2pmem/allocate" in err.message
    assert "6.2" in (err.fix or "")


def test_unpublished_provider_is_refused(lab):
    lab.write("/sys/bus/pci/devices/%s/p2pmem/published" % lab.cmb0.function.bdf, "0\n")
    err = _refusal(lab.plan)
    assert "is not published" in err.message


def test_size_over_the_available_p2pmem_is_refused(tmp_path):
    lab = LabNode(tmp_path, available=16 * MIB - 64 * 1024)
    err = _refusal(lab.plan, size=16 * MIB)
    assert "larger than the 16711680 bytes of p2pmem available" in err.message
    assert "nvme.use_cmb_sqes=0" in (err.fix or "")


@pytest.mark.parametrize("size, offset", [(4 * MIB + 512, 0), (4 * MIB, 512)])
def test_size_and_offset_must_suit_o_direct_and_whole_pages(lab, size, offset):
    lab.write("/sys/block/nvme1n1/queue/logical_block_size", "4096\n")
    err = _refusal(lab.plan, size=size, offset=offset)
    assert "multiple" in err.message


def test_a_range_past_the_end_of_the_device_is_refused(lab):
    err = _refusal(lab.plan, offset=DISK_BYTES - MIB)
    assert "runs past its end" in err.message


def test_refusals_on_the_captured_6_12_switch_guest():
    root = open_root(str(GUESTS / "linux-6.12" / "switch" / "snapshot.tar.gz"))
    node = read_node(root)
    # This snapshot was taken before snapshots recorded p2pmem/allocate; the guest's 6.12 kernel has it.
    err = _refusal(plan_copy, node, "nvme2n1", "nvme1n1", "0000:03:00.0", 4 * MIB)
    assert "6.2 or later" in err.message and "snapshot" in err.message
    # Snapshots are read into memory: give both providers the file the 6.12 kernel has.
    for bdf in ("0000:03:00.0", "0000:07:00.0"):
        root.add_file(root.realpath("/sys/bus/pci/devices/%s/p2pmem" % bdf) + "/allocate", b"")
    node = read_node(root)
    far = _refusal(plan_copy, node, "nvme2n1", "nvme1n1", "0000:07:00.0", 4 * MIB)
    assert "do not share" in far.message or "share no upstream bridge" in far.message
    # cmb0's CMB is 64 MiB; the nvme driver's submission queue took 64 KiB of it.
    over = _refusal(plan_copy, node, "nvme2n1", "nvme1n1", "nvme0", 64 * MIB)
    assert "67043328 bytes of p2pmem available on 0000:03:00.0" in over.message


# -- destination safety --------------------------------------------------------------------
def test_mounted_destination_is_refused_and_force_lets_it_through(lab):
    lab.write("/sys/block/nvme1n1/dev", "259:1\n")
    lab.mounts("36 1 259:1 / /srv rw,relatime shared:1 - ext4 /dev/nvme1n1 rw\n")
    err = _refusal(lab.plan)
    assert "/dev/nvme1n1 is mounted on /srv" in err.message
    assert "--force" in (err.fix or "")
    assert lab.plan(force=True).forced_over == ["/dev/nvme1n1 is mounted on /srv"]


def test_mounted_partition_and_held_device_are_in_use(lab):
    lab.write("/sys/block/nvme1n1/nvme1n1p1/partition", "1\n")
    lab.write("/sys/block/nvme1n1/nvme1n1p1/dev", "259:9\n")
    lab.mounts("40 1 259:9 / /data rw - xfs /dev/nvme1n1p1 rw\n")
    os.makedirs(lab.root.host_path(lab.root.realpath("/sys/block/nvme1n1") + "/holders/dm-0"))
    assert destination_in_use(lab.root, "nvme1n1") == [
        "/dev/nvme1n1p1 is mounted on /data",
        "/dev/nvme1n1 is held by dm-0 (/sys/block/nvme1n1/holders)",
    ]


def test_proc_mounts_is_read_when_mountinfo_is_absent(lab):
    os.unlink(lab.root.host_path("/proc/self/mountinfo"))
    lab.write("/proc/mounts", "/dev/nvme1n1 /mnt ext4 rw 0 0\n")
    assert destination_in_use(lab.root, "nvme1n1") == ["/dev/nvme1n1 is mounted on /mnt"]


def _tool(name: str) -> str:
    path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if path is None:
        pytest.skip("%s is not installed" % name)
    return path


def test_ext4_made_by_mkfs_is_found_and_refused(lab):
    subprocess.run([_tool("mkfs.ext4"), "-q", "-F", lab.root.host_path("/dev/nvme1n1")], check=True)
    assert find_signatures(lab.read("nvme1n1", 0, 128 * 1024)) == ["ext2/3/4 filesystem (magic 0xEF53 at byte 1080)"]
    assert "carries a signature: ext2/3/4 filesystem" in _refusal(lab.plan).message


@pytest.mark.parametrize("label, expected", [
    ("dos", "MBR or boot sector (0x55AA at byte 510)"),
    ("gpt", "GPT partition table ('EFI PART' at LBA 1, 512-byte blocks)"),
])
def test_partition_table_written_by_sfdisk_is_found(lab, label, expected):
    subprocess.run([_tool("sfdisk"), "-q", lab.root.host_path("/dev/nvme1n1")],
                   input="label: %s\n,16M\n" % label, text=True, check=True, capture_output=True)
    assert expected in find_signatures(lab.read("nvme1n1", 0, 128 * 1024))


def test_swap_made_by_mkswap_is_found(lab):
    subprocess.run([_tool("mkswap"), lab.root.host_path("/dev/nvme1n1")], check=True, capture_output=True)
    found = find_signatures(lab.read("nvme1n1", 0, 128 * 1024))
    assert any(item.startswith("swap area") for item in found)


@pytest.mark.parametrize("offset, magic, expected", [
    (0, b"XFSB", "XFS filesystem ('XFSB' at byte 0)"),
    (65600, b"_BHRfS_M", "btrfs filesystem ('_BHRfS_M' at byte 65600)"),
    (512, b"LABELONE", "LVM2 physical volume ('LABELONE' in sector 1)"),
    (1080, struct.pack("<H", 0xEF53), "ext2/3/4 filesystem (magic 0xEF53 at byte 1080)"),
])
def test_signatures_at_their_documented_offsets(offset, magic, expected):
    data = bytearray(128 * 1024)
    data[offset:offset + len(magic)] = magic
    assert find_signatures(bytes(data)) == [expected]


def test_zeroes_carry_no_signature():
    assert find_signatures(bytes(128 * 1024)) == []


# -- the copy --------------------------------------------------------------------------------
def test_transfer_copies_in_buffer_sized_chunks_and_leaves_the_rest(lab, tmp_path):
    payload = os.urandom(3 * MIB)
    lab.fill("nvme2n1", payload, offset=MIB)
    lab.fill("nvme1n1", b"\xa5" * (5 * MIB))
    with mmap.mmap(-1, 256 * 1024) as buffer, memoryview(buffer) as view:
        transfer(lab.root.host_path("/dev/nvme2n1"), lab.root.host_path("/dev/nvme1n1"), MIB, 3 * MIB, view)
    assert lab.read("nvme1n1", MIB, 3 * MIB) == payload
    assert lab.read("nvme1n1", 0, MIB) == b"\xa5" * MIB
    assert lab.read("nvme1n1", 4 * MIB, MIB) == b"\xa5" * MIB
    assert sha256_range(lab.root.host_path("/dev/nvme1n1"), MIB, 3 * MIB) == hashlib.sha256(payload).hexdigest()


def test_copy_through_a_buffer_that_is_not_p2pmem_is_verified_but_not_called_p2p(lab):
    payload = os.urandom(4 * MIB)
    lab.fill("nvme2n1", payload)
    result = run_copy(lab.plan(), lab.root)
    assert lab.read("nvme1n1", 0, 4 * MIB) == payload
    assert result["sha256"] == {"source": hashlib.sha256(payload).hexdigest(),
                                "destination": hashlib.sha256(payload).hexdigest()}
    assert result["bytes"] == 4 * MIB
    # A regular file mapped as the buffer takes no p2pmem: the kernel did not do P2P.
    assert result["p2p_used"] is False
    assert any("did not drop" in line for line in result["evidence"])
    assert result["link_limit"]["bytes_per_second"] > 0
    assert result["throughput"] > 0 and result["host_memory_throughput"] > 0
    assert set(result) >= {"seconds", "path", "ratio_to_host_memory", "ratio_to_link_limit"}


def test_read_only_copy_checks_what_landed_in_the_buffer_and_writes_nothing(lab):
    payload = os.urandom(2 * MIB)
    lab.fill("nvme2n1", payload)
    result = run_copy(lab.plan(destination=None, size=2 * MIB), lab.root)
    assert result["sha256"] == {"source": hashlib.sha256(payload).hexdigest(), "destination": None}
    assert any("bytes that landed in the buffer" in line for line in result["evidence"])
    assert lab.read("nvme1n1", 0, 2 * MIB) == bytes(2 * MIB)


# -- the CLI -----------------------------------------------------------------------------------
P2PCTL = os.path.join(os.path.dirname(sys.executable), "p2pctl")


def p2pctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([P2PCTL, *args], capture_output=True, text=True, check=False)


def test_cli_dry_run_says_what_it_would_overwrite_and_writes_nothing(lab):
    lab.fill("nvme2n1", b"\x01" * MIB)
    run = p2pctl("datapath", "nvme2n1", "/dev/nvme1n1", "--provider", "nvme0", "--size", "1M", "--dry-run",
                 "--root", lab.root.root)
    assert run.returncode == 0, run.stderr
    assert "would read 1048576 bytes at offset 0 of /dev/nvme2n1" in run.stdout
    assert lab.read("nvme1n1", 0, MIB) == bytes(MIB)


def test_cli_copy_without_p2pmem_exits_1_and_a_refusal_exits_2(lab):
    lab.fill("nvme2n1", os.urandom(MIB))
    args = ["datapath", "nvme2n1", "nvme1n1", "--size", "1M", "--root", lab.root.root]
    copied = p2pctl(*args, "--provider", "nvme0", "--json")
    assert copied.returncode == 1, copied.stderr
    result = json.loads(copied.stdout)
    assert result["p2p_used"] is False and result["sha256"]["source"] == result["sha256"]["destination"]
    refused = p2pctl(*args, "--provider", "nvme3")
    assert refused.returncode == 2
    assert "the kernel refuses p2pmem" in refused.stderr


# -- the module ----------------------------------------------------------------------------------
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)

MODULE_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Say what would be overwritten
      p2pdma.storage.p2p_datapath:
        root: "{{ node_root }}"
        source: nvme2n1
        destination: /dev/nvme1n1
        provider: nvme0
        size: 2M
      check_mode: true
      diff: true
      register: checked

    - name: Copy
      p2pdma.storage.p2p_datapath:
        root: "{{ node_root }}"
        source: nvme2n1
        destination: /dev/nvme1n1
        provider: "{{ provider_bdf }}"
        size: 2M
      register: copied

    - name: A destination that now carries ext4 is refused
      p2pdma.storage.p2p_datapath:
        root: "{{ node_root }}"
        source: nvme2n1
        destination: nvme0n1
        provider: nvme0
        size: 2M
      register: refused
      ignore_errors: true

    - name: Keep what the module returned
      ansible.builtin.copy:
        dest: "{{ results_file }}"
        content: "{{ {'checked': checked, 'copied': copied, 'refused': refused} | to_json }}"
"""


def test_module_check_mode_writes_nothing_and_the_copy_is_verified(tmp_path):
    lab = LabNode(tmp_path / "node")
    payload = os.urandom(2 * MIB)
    lab.fill("nvme2n1", payload)
    subprocess.run(["/usr/sbin/mkfs.ext4", "-q", "-F", lab.root.host_path("/dev/nvme0n1")], check=True)
    playbook = tmp_path / "datapath.yml"
    playbook.write_text(textwrap.dedent(MODULE_PLAYBOOK))
    results_file = tmp_path / "results.json"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"])
    extra_vars = {"node_root": lab.root.root, "results_file": str(results_file),
                  "provider_bdf": lab.cmb0.function.bdf, "ansible_python_interpreter": sys.executable}
    run = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
         "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, cwd=REPO, env=env, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(results_file.read_text())
    checked, copied, refused = results["checked"], results["copied"], results["refused"]
    assert checked["changed"] is True
    assert checked["would_write"].endswith("overwrite bytes 0-2097151 of /dev/nvme1n1 (%s) with them"
                                           % lab.cmb1.function.bdf)
    assert "sha256" not in checked
    assert copied["changed"] is True
    assert copied["sha256"]["source"] == copied["sha256"]["destination"]
    assert copied["p2p_used"] is False  # a regular file stood in for p2pmem/allocate
    assert lab.read("nvme1n1", 0, 2 * MIB) == payload
    assert refused["failed"] is True
    assert "carries a signature: ext2/3/4 filesystem" in refused["msg"]
