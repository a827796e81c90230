"""Boot each topology preset once and check the PCI tree the guest sees against the preset.

These boot real lab nodes (QEMU TCG) on the lab's own P2PDMA kernel, loaded directly by QEMU
(``boot=lab-kernel``: no firmware, GRUB or systemd), in seconds each. The Debian boot through
GRUB is what the molecule scenarios test. Node names start with $P2PLAB_TEST_PREFIX (default
``test-``), so that two checkouts can run these at once.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import collection_root
from p2pctl.lab.fleet import Lab
from p2pctl.lab.labkernel import lab_kernel
from p2pctl.lab.node import BOOT_LAB_KERNEL, LabNode
from p2pctl.lab.topologies import PORT_MODELS, PRESETS, Topology, get_topology

pytestmark = pytest.mark.lab

NIC_ID = "8086:10d3"  # QEMU's e1000e
GUEST_PROBE = (Path(__file__).parent / "guest_pci.py").read_text()
GUEST_PREDICT = (Path(__file__).parent / "guest_nvmet_predict.py").read_text()
# The nvmet scenario's own probe: enable a scratch namespace per case and say what the kernel answered.
KERNEL_ANSWER = (collection_root() / "molecule" / "nvmet" / "kernel_answer.py").read_text()
# On the guest's tmpfs, gone at its next boot: the node's disk stays as the preset made it.
GUEST_LIB = "/run/p2pdma-test-lib"
MIB = 1024 * 1024

Guest = Tuple[Topology, LabNode, Dict[str, Dict[str, Any]]]


@pytest.fixture(scope="module", params=sorted(PRESETS))
def guest(request: pytest.FixtureRequest) -> Iterator[Guest]:
    lab = Lab()
    name = os.environ.get("P2PLAB_TEST_PREFIX", "test-") + request.param
    node = lab.up(name, topology=request.param, boot=BOOT_LAB_KERNEL, log=print)
    try:
        yield get_topology(request.param), node, json.loads(node.run(["python3", "-"], input_text=GUEST_PROBE))
    finally:
        lab.destroy(name)


def by_serial(devices: Dict[str, Dict[str, Any]], serial: str) -> Tuple[str, Dict[str, Any]]:
    matches = [(bdf, device) for bdf, device in devices.items() if device["nvme_serial"] == serial]
    assert len(matches) == 1, "NVMe controller with serial %s: found %d" % (serial, len(matches))
    return matches[0]


def test_every_device_sits_below_the_ports_the_preset_gives_it(guest: Guest) -> None:
    topology, _node, devices = guest
    placed: List[Tuple[str, List[Tuple[str, str]]]] = [
        (by_serial(devices, drive.id)[0], topology.ports_above(drive.bus)) for drive in topology.drives
    ]
    nics = [bdf for bdf, device in devices.items() if device["id"] == NIC_ID]
    assert len(nics) == (1 if topology.nic_bus else 0)
    if topology.nic_bus:
        placed.append((nics[0], topology.ports_above(topology.nic_bus)))
    port_bdfs: Dict[str, str] = {}
    for bdf, ports in placed:
        bridges = devices[bdf]["above"]
        assert [devices[bridge]["id"] for bridge in bridges] == [PORT_MODELS[kind][1] for kind, _ in ports], bdf
        for (_kind, port_id), bridge in zip(ports, bridges):
            assert port_bdfs.setdefault(port_id, bridge) == bridge, "port %s seen at two addresses" % port_id
    # Distinct ports of the preset are distinct bridges in the guest: the trees are the same shape.
    assert len(set(port_bdfs.values())) == len(port_bdfs)


def test_cmb_and_pmr_memory_is_on_the_bars_the_preset_sizes(guest: Guest) -> None:
    topology, _node, devices = guest
    for drive in topology.drives:
        bars = by_serial(devices, drive.id)[1]["bars"]
        # QEMU's NVMe model: registers on BAR 0, CMB on BAR 2, PMR on BAR 4.
        assert bars.get("2") == (drive.cmb_mb * MIB if drive.cmb_mb else None), drive.id
        assert bars.get("4") == (drive.pmr_mb * MIB if drive.pmr_mb else None), drive.id


def test_acs_redirect_is_set_exactly_where_the_preset_asks(guest: Guest) -> None:
    topology, node, devices = guest
    root_ports = sorted({by_serial(devices, drive.id)[1]["above"][0] for drive in topology.drives})
    for root_port in root_ports:
        acs_control = re.search(r"ACSCtl:(.*)", node.run(["lspci", "-vvv", "-s", root_port]))
        assert acs_control, "root port %s has no ACS capability" % root_port
        redirect = {flag: "%s+" % flag in acs_control.group(1) for flag in ("ReqRedir", "CmpltRedir")}
        assert redirect == {"ReqRedir": topology.iommu, "CmpltRedir": topology.iommu}, root_port


def test_the_guest_cpu_is_the_presets_vendor(guest: Guest) -> None:
    topology, node, _devices = guest
    vendor = re.search(r"vendor_id\s*:\s*(\S+)", node.run(["cat", "/proc/cpuinfo"]))
    assert vendor
    assert vendor.group(1) == ("AuthenticAMD" if topology.cpu == "EPYC" else "GenuineIntel")


def test_the_guest_runs_the_lab_p2pdma_kernel(guest: Guest) -> None:
    _topology, node, _devices = guest
    assert node.run(["uname", "-r"]).strip() == lab_kernel().release
    assert "CONFIG_PCI_P2PDMA=y" in node.run(["zcat", "/proc/config.gz"]).splitlines()


def test_every_cmb_drive_and_only_those_publish_p2pmem_of_the_cmb_size(guest: Guest) -> None:
    topology, _node, devices = guest
    for drive in topology.drives:
        # A PMR is not a CMB: without nvme.pseudo_cmb the driver leaves BAR 4 alone.
        assert by_serial(devices, drive.id)[1]["p2pmem_size"] == (drive.cmb_mb * MIB or None), drive.id


def ship_module_utils(node: LabNode) -> None:
    """The collection's module_utils into GUEST_LIB on the node, laid out as Python imports them."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(
            collection_root() / "plugins" / "module_utils",
            arcname="ansible_collections/p2pdma/storage/plugins/module_utils",
            filter=lambda member: None if "__pycache__" in member.name else member,
        )
    # One string: SSH hands the command to the guest's shell.
    node.run(
        [f"rm -rf {GUEST_LIB} && mkdir -p {GUEST_LIB} && base64 -d | tar -xz -C {GUEST_LIB}"],
        input_text=base64.b64encode(archive.getvalue()).decode(),
    )


def test_nvmet_enable_answers_every_p2pmem_choice_as_the_module_predicts(guest: Guest) -> None:
    """Every whole namespace with every published provider and auto: the module's verdict, then the kernel's."""
    _topology, node, _devices = guest
    ship_module_utils(node)
    cases = node.run(["env", "PYTHONPATH=" + GUEST_LIB, "python3", "-"], input_text=GUEST_PREDICT).split()
    assert cases, "no NVMe namespace on the node"
    asked = subprocess.run(
        node.ssh_argv(["python3", "-", "nqn.2026-12.io.p2pdma.test:predictions", *cases]),
        input=KERNEL_ANSWER,
        capture_output=True,
        text=True,
        check=False,
    )
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    for answer in answers:
        print("%(device)s p2pmem=%(p2pmem)s: predicted %(predicted)s, kernel %(answer)s (%(errno)s)" % answer)
    assert len(answers) == len(cases), asked.stderr
    wrong = [answer for answer in answers if answer["answer"] != answer["predicted"]]
    assert not wrong, json.dumps(wrong, indent=1)
    assert asked.returncode == 0, asked.stderr
