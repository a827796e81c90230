"""nvmet's data path in the checks: configfs-shaped trees beside a node's sysfs, and kernel log text.

The lab's log (tests/fixtures/nvmet-log/lab-loop-tcp-rxe.kmsg) is /dev/kmsg of a lab
`switch` node on the 6.12 P2PDMA kernel: a namespace with p2pmem on tcp, loop and
rxe0 ports, and a host connected over loop. The lab has no hardware RDMA NIC, so the
lines nvmet logs for one are written here in the kernel's own format strings
(drivers/nvme/target/core.c and fabrics-cmd.c, 6.1 and 6.12).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import FAIL, PASS, WARN, CheckResult, run_checks
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.nvmet_log import (
    netdev_of_address,
    parse_nvmet_log,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from tests.support.configfs_tree import ConfigfsTree
from tests.support.nodes import switch_node

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvmet-log"
LAB_LOG = (FIXTURES / "lab-loop-tcp-rxe.kmsg").read_text()
NQN = "nqn.2026-12.io.p2pdma:h2d"
HOST = "nqn.2014-08.org.nvmexpress:uuid:e39c7680-3d43-4f4e-96e5-3146917d2d62"
# /proc/net/route of the lab node (eth0 10.0.2.15/24), the NIC's netdev renamed to the tree's eth0.
ROUTES = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eth9\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
)
CREATED = "6,500,90000000,-;nvmet: creating nvm controller 2 for subsystem %s for NQN %s.\n" % (NQN, HOST)
USING = "6,499,89999000,-;nvmet: using p2pmem on 0000:03:00.0 for nsid 1\n"
REFUSED = ("3,499,89999000,-;nvmet: no peer-to-peer memory is available that's supported by mlx5_0 and "
           "/dev/nvme1n1\n")


def _node(tmp_path: Path, ports: Dict[int, Dict[str, str]], log: Optional[str], p2pmem: str = "0000:03:00.0",
          allow_any_host: str = "0", rxe: bool = False) -> Dict[str, CheckResult]:
    base = tmp_path / "node"
    tree = switch_node(base)
    if rxe:
        tree.rxe("rxe0", netdev="eth9")
    tree.write()
    configfs = ConfigfsTree(str(base))
    configfs.subsystem(NQN, allow_any_host=allow_any_host)
    configfs.namespace(NQN, 1, "/dev/nvme1n1", p2pmem=p2pmem)
    for portid, addr in ports.items():
        configfs.port(portid, **addr)
        configfs.link_port(portid, NQN)
    _write(base / "proc/net/route", ROUTES)
    if log is not None:
        _write(base / "dev/kmsg", log)
    return {r.id: r for r in run_checks(read_node(SysRoot(str(base))))}


def _write(path: Path, text: str) -> None:
    os.makedirs(path.parent, exist_ok=True)
    path.write_text(text)


RDMA_ON_NIC = {4: {"trtype": "rdma", "adrfam": "ipv4", "traddr": "10.0.2.15", "trsvcid": "4420"}}


def test_the_lab_log_is_one_loop_controller_with_no_p2pmem():
    (controller,) = parse_nvmet_log(LAB_LOG)[NQN]
    assert (controller.cntlid, controller.hostnqn, controller.p2pmem, controller.refusals) == (1, HOST, {}, [])


def test_dmesg_text_reads_like_kmsg_records():
    dmesg = "[   89.999000] nvmet: using p2pmem on 0000:03:00.0 for nsid 1\n[   90.000000] %s" % CREATED.split(";")[1]
    assert parse_nvmet_log(dmesg)[NQN][0].p2pmem == {1: "0000:03:00.0"}


@pytest.mark.parametrize(
    "trtype, addr, reason",
    [
        ("tcp", {"adrfam": "ipv4", "traddr": "10.0.2.15", "trsvcid": "4420"}, "nvmet-tcp copies through socket"),
        ("loop", {}, "nvmet-loop hands the host's own pages"),
        ("fc", {"adrfam": "fc", "traddr": "nn-0x1000:pn-0x2000"}, "nvmet-fc never sets a P2P client"),
    ],
)
def test_transports_that_never_use_p2pmem_warn_with_the_reason(tmp_path, trtype, addr, reason):
    result = _node(tmp_path, {1: dict(addr, trtype=trtype)}, LAB_LOG)["nvmet-datapath:%s/1" % NQN]
    assert result.status == WARN
    assert "cannot carry data through p2pmem: port 1 is %s: %s" % (trtype, reason) in result.why


def test_rdma_on_soft_roce_warns(tmp_path):
    port = {1: {"trtype": "rdma", "adrfam": "ipv4", "traddr": "192.168.3.1", "trsvcid": "4420"}}
    result = _node(tmp_path, port, LAB_LOG, rxe=True)["nvmet-datapath:%s/1" % NQN]
    assert result.status == WARN
    assert "port 1 is rdma on software RDMA (rxe0 rxe)" in result.why
    assert result.evidence["ports"]["1"]["netdev"] == "eth9"


def test_rdma_on_a_pci_nic_before_any_connect_passes(tmp_path):
    result = _node(tmp_path, RDMA_ON_NIC, "")["nvmet-datapath:%s/1" % NQN]
    assert result.status == PASS
    assert "port 4 is rdma on mlx5_0 (0000:05:00.0)" in result.why
    assert "no host has connected" in result.why


def test_rdma_connect_with_the_kernels_p2pmem_line_passes(tmp_path):
    result = _node(tmp_path, RDMA_ON_NIC, LAB_LOG + USING + CREATED)["nvmet-datapath:%s/1" % NQN]
    assert result.status == PASS
    assert "logged 'using p2pmem on 0000:03:00.0 for nsid 1' for controller 2" in result.why


@pytest.mark.parametrize("extra, said", [("", "may have connected over a port that is not rdma"),
                                         (REFUSED, "no peer-to-peer memory is available")])
def test_rdma_connect_without_the_line_fails(tmp_path, extra, said):
    result = _node(tmp_path, RDMA_ON_NIC, LAB_LOG + extra + CREATED, p2pmem="1")["nvmet-datapath:%s/1" % NQN]
    assert result.status == FAIL
    assert "controller 2 (host %s) of %s got no 'using p2pmem" % (HOST, NQN) in result.why
    assert said in result.why


@pytest.mark.parametrize("log", [USING + CREATED, CREATED])
def test_an_rdma_port_beside_a_tcp_port_warns_for_the_tcp_hosts(tmp_path, log):
    # Without the line the controller may be a tcp host's: the log does not name the transport.
    ports = {**RDMA_ON_NIC, 1: {"trtype": "tcp", "adrfam": "ipv4", "traddr": "10.0.2.15", "trsvcid": "4421"}}
    result = _node(tmp_path, ports, log)["nvmet-datapath:%s/1" % NQN]
    assert result.status == WARN
    assert "but port 1 is tcp" in result.why


def test_without_the_kernel_log_the_connect_is_unknown(tmp_path):
    result = _node(tmp_path, RDMA_ON_NIC, None)["nvmet-datapath:%s/1" % NQN]
    assert result.status == WARN
    assert "kernel log could not be read" in result.why


def test_namespaces_without_p2pmem_are_not_judged(tmp_path):
    assert not [i for i in _node(tmp_path, RDMA_ON_NIC, LAB_LOG, p2pmem="0") if i.startswith("nvmet-datapath")]


@pytest.mark.parametrize(
    "ports, exposed",
    [
        ({2: {"trtype": "loop"}}, None),
        ({1: {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4420"}}, None),
        ({1: {"trtype": "tcp", "adrfam": "ipv4", "traddr": "10.0.2.15", "trsvcid": "4420"}},
         "port 1 (tcp 10.0.2.15:4420)"),
    ],
)
def test_allow_any_host_on_a_reachable_port_warns(tmp_path, ports, exposed):
    results = _node(tmp_path, ports, LAB_LOG, allow_any_host="1")
    result = results.get("nvmet-any-host:%s" % NQN)
    if exposed is None:
        assert result is None
    else:
        assert result is not None and result.status == WARN
        assert "allows any host and is exported on %s" % exposed in result.why


def test_ipv6_addresses_resolve_through_if_inet6(tmp_path):
    _write(tmp_path / "proc/net/if_inet6", "fec0000000000000505400fffe123457 02 40 40 00     eth0\n")
    assert netdev_of_address(SysRoot(str(tmp_path)), "fec0::5054:ff:fe12:3457") == "eth0"
    assert netdev_of_address(SysRoot(str(tmp_path)), "0.0.0.0") is None


def test_a_log_device_that_would_block_at_its_end_is_read_up_to_there(tmp_path):
    # A fifo with its writer still open blocks at the end of what was written, as /dev/kmsg does.
    os.makedirs(tmp_path / "dev")
    os.mkfifo(tmp_path / "dev/kmsg")
    writer = os.open(tmp_path / "dev/kmsg", os.O_RDWR)
    try:
        os.write(writer, (USING + CREATED).encode())
        assert SysRoot(str(tmp_path)).read_log("/dev/kmsg") == USING + CREATED
    finally:
        os.close(writer)
