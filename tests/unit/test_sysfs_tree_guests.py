"""The tree builder against real guests: the same topology, built and captured, must read the same.

For every guest fixture (tests/fixtures/guests/<name>/snapshot.tar.gz, captured by
tools/capture_fixtures.py from a QEMU guest running a P2PDMA kernel) this builds the
fixture's topology with tests/support/sysfs_tree.py and compares, function by function
below the topology's root ports, what the engine decides from: IDs, port types, the
upstream walk, host bridges, ACS, p2pmem and the decoded CMB. A difference means the
synthetic trees the other tests use no longer look like Linux.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_snapshot
from tests.support.lab_trees import build_topology, cpu_of, projection
from tests.support.sysfs_tree import SysfsTree

REPO = Path(__file__).resolve().parent.parent.parent
GUESTS = REPO / "tests" / "fixtures" / "guests"


def _fixtures():
    spec = importlib.util.spec_from_file_location("capture_fixtures", REPO / "tools" / "capture_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


CAPTURE = _fixtures()
# Fixtures whose extra QEMU devices (an NVM subsystem, SR-IOV) the lab topology cannot describe.
COMPARABLE = sorted(
    name
    for name, fixture in CAPTURE.FIXTURES_BY_NAME.items()
    if not fixture.extra_args and (GUESTS / name / "snapshot.tar.gz").exists()
)


def _expanders(fixture) -> dict:
    """pxb-pcie id -> bus number, from the fixture's expander arguments."""
    found = {}
    for arg in fixture.expander_args:
        if arg.startswith("pxb-pcie,"):
            props = dict(item.split("=", 1) for item in arg.split(",")[1:])
            found[props["id"]] = int(props["bus_nr"], 0)
    return found


@pytest.mark.parametrize("name", COMPARABLE)
def test_builder_reads_like_the_guest(tmp_path, name):
    fixture = CAPTURE.FIXTURES_BY_NAME[name]
    guest = read_node(open_snapshot(str(GUESTS / name / "snapshot.tar.gz")))

    tree = SysfsTree(tmp_path / "built", kernel=guest.kernel.release or "6.1.0", cpu=cpu_of(fixture.topology))
    build_topology(tree, fixture.topology, _expanders(fixture), fixture.cmdline)
    built = read_node(tree.sysroot())

    roots = {b for b, fn in built.functions.items() if fn.port_type == "root_port" and fn.upstream_bdf is None}
    assert projection(guest, roots) == projection(built, roots)
    assert (guest.kernel.cpu_vendor, guest.kernel.cpu_family) == cpu_of(fixture.topology)
    for host in {built.functions[b].host_bridge for b in roots}:
        expected = built.host_bridge_device(host)
        found = guest.host_bridge_device(host)
        assert (found.bdf, found.ident) == (expected.bdf, expected.ident)


@pytest.mark.parametrize("name", sorted(n for n, f in CAPTURE.FIXTURES_BY_NAME.items() if not f.extra_args))
def test_every_fixture_topology_builds(tmp_path, name):
    # The translation itself, with or without captured guests: every drive lands where QEMU puts it.
    fixture = CAPTURE.FIXTURES_BY_NAME[name]
    tree = SysfsTree(tmp_path, cpu=cpu_of(fixture.topology))
    placed = build_topology(tree, fixture.topology, _expanders(fixture), fixture.cmdline)
    node = read_node(tree.sysroot())
    for drive in fixture.topology.drives:
        fn = node.functions[placed[drive.id].bdf]
        assert fn.driver == "nvme"
        assert (fn.p2pmem is not None) == bool(drive.cmb_mb)
        assert fn.upstream_bdf == placed[drive.bus].bdf
