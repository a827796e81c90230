"""The link limit of a peer-to-peer path: per-lane arithmetic, and the hops read from real trees."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.link import (
    Hop,
    lane_bytes_per_second,
    link_bytes_per_second,
    link_limit,
    narrowest,
    transfer_path,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import MapType, distance_many
from tests.support.nodes import CMB_16M, PUBLISHED_16M
from tests.support.sysfs_tree import SysfsTree

GUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "guests"


@pytest.mark.parametrize(
    "speed, width, expected",
    [
        (2.5, 1, 250_000_000),  # 8b/10b: 2.5e9 * 8/10 / 8
        (5.0, 4, 2_000_000_000),  # 8b/10b: 500 MB/s a lane
        (8.0, 1, 8e9 * 128 / 130 / 8),  # 128b/130b: 984.6 MB/s
        (16.0, 4, 4 * 16e9 * 128 / 130 / 8),  # 7.88 GB/s, what a Gen4 x4 SSD is sold at
        (32.0, 16, 16 * 32e9 * 128 / 130 / 8),  # 63.0 GB/s
        (64.0, 16, 16 * 64e9 / 8),  # PAM4 FLIT mode: no line encoding, 128 GB/s
    ],
)
def test_link_bytes_per_second_is_speed_times_width_less_encoding(speed, width, expected):
    assert link_bytes_per_second(speed, width) == pytest.approx(expected)


def test_a_rate_without_a_known_encoding_gives_no_number():
    assert lane_bytes_per_second(3.0) is None
    assert narrowest([Hop("0000:01:00.0", "0000:00:01.0", 3.0, 4)]).limiting is None


def test_the_narrowest_hop_limits_and_unknown_hops_do_not_count():
    wide = Hop("0000:03:00.0", "0000:02:00.0", 16.0, 4)
    narrow = Hop("0000:05:00.0", "0000:02:02.0", 8.0, 2)
    unknown = Hop("0000:04:00.0", "0000:02:01.0", None, None)
    limit = narrowest([wide, unknown, narrow])
    assert limit.limiting == narrow
    assert limit.bytes_per_second == pytest.approx(2 * 8e9 * 128 / 130 / 8)
    assert limit.to_dict()["limiting_hop"] == "0000:05:00.0 -- 0000:02:02.0 (8 GT/s x2)"


@functools.cache
def _guest(name: str) -> Node:
    return read_node(open_root(str(GUESTS / name / "snapshot.tar.gz")))


@pytest.mark.parametrize("guest", ["switch", "linux-6.12/switch"])
def test_guest_switch_path_turns_at_the_switch_and_crosses_three_gen1_x1_links(guest):
    node = _guest(guest)
    # cmb0 (03:00.0) is the buffer; plain0 (05:00.0) is read and cmb1 (04:00.0) written.
    verdict = distance_many(node, "0000:03:00.0", ["0000:05:00.0", "0000:04:00.0"])
    assert verdict.supported
    limit = link_limit(node, verdict.clients)
    # The switch's internal bus and its upstream link are not crossed; each drive's link is.
    assert sorted(hop.below for hop in limit.hops) == ["0000:03:00.0", "0000:04:00.0", "0000:05:00.0"]
    # QEMU 7.2 trains its emulated NVMe links at 2.5 GT/s x1.
    assert limit.bytes_per_second == pytest.approx(250_000_000)


def test_guest_path_through_the_host_bridge_climbs_to_both_root_ports():
    node = _guest("linux-6.12/epyc")
    providers = [fn.bdf for fn in node.providers()]
    far = [
        pair for provider in providers for client in providers
        for pair in distance_many(node, provider, [client]).clients
        if pair.map_type == MapType.THRU_HOST_BRIDGE
    ]
    assert far, "the epyc guest has providers under different root ports"
    pair = far[0]
    path = transfer_path(node, pair)
    assert path[0] == pair.provider and path[-1] == pair.client
    assert node.functions[pair.provider].host_bridge in path
    below = {hop.below for hop in link_limit(node, [pair]).hops}
    # Every link from each end up to its root port is crossed: the endpoints' and any switch's upstream link.
    for end in (pair.provider, pair.client):
        for member in node.chain(end):
            if node.functions[member].port_type in ("endpoint", "switch_upstream"):
                assert member in below


def test_tree_with_an_x16_switch_uplink_is_limited_by_the_narrow_drive_link(tmp_path):
    tree = SysfsTree(tmp_path, kernel="6.12.0")
    switch = tree.switch(tree.root_port("00:01.0", acs_ctrl=0, link=(4, 16)), downstream=2, link=(4, 16))
    provider = tree.nvme(switch.down[0], cmb=CMB_16M, p2pmem=PUBLISHED_16M, link=(4, 4))
    drive = tree.nvme(switch.down[1], link=(3, 2))
    node = read_node(tree.sysroot())
    pair = distance_many(node, provider.function.bdf, [drive.namespaces[0]]).clients[0]
    limit = link_limit(node, [pair])
    assert limit.limiting is not None and limit.limiting.below == drive.function.bdf
    assert (limit.limiting.speed_gts, limit.limiting.width) == (8.0, 2)
    assert limit.bytes_per_second == pytest.approx(2 * 8e9 * 128 / 130 / 8)
