"""The nvmet planner on configfs-shaped trees: order, minimal changes, and each kernel rule as a decision."""

from __future__ import annotations

import os
from typing import List, Optional

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import (
    Action,
    apply_actions,
    read_target,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import target_from_dict
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.plan import Plan, plan_target
from tests.support.configfs_tree import ConfigfsTree

H1 = "nqn.2026-01.com.example:host1"
H2 = "nqn.2026-01.com.example:host2"
S1 = "nqn.2026-01.com.example:store1"
S2 = "nqn.2026-01.com.example:store2"
CFG = "/sys/kernel/config/nvmet"


def declaration() -> dict:
    return {
        "hosts": [{"nqn": H1}],
        "ports": [
            {
                "portid": 1,
                "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "192.0.2.10", "trsvcid": "4420"},
                "subsystems": [S1],
            }
        ],
        "subsystems": [
            {
                "nqn": S1,
                "attr": {"allow_any_host": "0", "serial": "p2p0001", "model": "p2pdma"},
                "allowed_hosts": [H1],
                "namespaces": [
                    {"nsid": 1, "device": {"path": "/dev/nvme0n1"}, "enable": 1},
                    {"nsid": 2, "device": {"path": "/dev/nvme1n1"}, "enable": 1},
                ],
            }
        ],
    }


@pytest.fixture
def tree(tmp_path) -> ConfigfsTree:
    tree = ConfigfsTree(str(tmp_path))
    for name in ("nvme0n1", "nvme1n1", "nvme2n1"):
        tree.device("/dev/" + name)
    return tree


def plan_for(tree: ConfigfsTree, wanted: dict, purge: bool = False, state: str = "present") -> Plan:
    return plan_target(target_from_dict(wanted, state), read_target(tree.root), P2PJudge(tree.root), purge=purge)


def converge(tree: ConfigfsTree, wanted: dict, purge: bool = False) -> Plan:
    plan = plan_for(tree, wanted, purge)
    apply_actions(tree.writer, plan.actions)
    return plan


def ops(plan: Plan) -> List[str]:
    return ["%s %s%s" % (a.op, a.path[len(CFG) + 1:], "" if a.value is None else "=" + a.value) for a in plan.actions]


def index(plan: Plan, op: str, suffix: str, value: Optional[str] = None, start: int = 0) -> int:
    for position, action in enumerate(plan.actions[start:], start):
        if action.op == op and action.path.endswith(suffix) and (value is None or action.value == value):
            return position
    raise AssertionError("no %s %s in %s" % (op, suffix, ops(plan)))


def dump(tree: ConfigfsTree) -> dict:
    return read_target(tree.root).to_dict()


def test_a_new_target_is_built_in_dependency_order(tree):
    plan = converge(tree, declaration())
    host = index(plan, "mkdir", "hosts/" + H1)
    subsystem = index(plan, "mkdir", "subsystems/" + S1)
    any_host = index(plan, "write", "/attr_allow_any_host")
    enable = index(plan, "write", "namespaces/1/enable", "1")
    device = index(plan, "write", "namespaces/1/device_path")
    allowed = index(plan, "symlink", "allowed_hosts/" + H1)
    port = index(plan, "mkdir", "ports/1")
    trtype = index(plan, "write", "ports/1/addr_trtype")
    traddr = index(plan, "write", "ports/1/addr_traddr")
    link = index(plan, "symlink", "ports/1/subsystems/" + S1)
    assert host < allowed and subsystem < any_host < allowed
    assert device < enable
    assert port < trtype < traddr < link, "the address is written before the port is enabled by its first link"
    after = dump(tree)
    assert after["ports"][0]["subsystems"] == [S1]
    assert after["subsystems"][0]["allowed_hosts"] == [H1]
    assert [ns["enable"] for ns in after["subsystems"][0]["namespaces"]] == [1, 1]


def test_a_second_run_changes_nothing(tree):
    converge(tree, declaration())
    assert plan_for(tree, declaration()).actions == []


def test_the_planned_after_matches_configfs_on_what_was_declared(tree):
    """Check mode's 'after' holds what was declared; the kernel's defaults of new objects appear only on reading."""
    plan = converge(tree, declaration())

    def declared(target: dict) -> list:
        return [
            (ns["nsid"], ns["enable"], ns["device"]["path"], sub["allowed_hosts"])
            for sub in target["subsystems"] for ns in sub["namespaces"]
        ] + [(port["portid"], port["subsystems"], port["addr"]["traddr"]) for port in target["ports"]]

    assert declared(plan.after.to_dict()) == declared(dump(tree))


def test_changing_one_namespace_device_touches_only_that_namespace(tree):
    converge(tree, declaration())
    wanted = declaration()
    wanted["subsystems"][0]["namespaces"][1]["device"]["path"] = "/dev/nvme2n1"
    plan = converge(tree, wanted)
    assert ops(plan) == [
        "write subsystems/%s/namespaces/2/enable=0" % S1,
        "write subsystems/%s/namespaces/2/device_path=/dev/nvme2n1" % S1,
        "write subsystems/%s/namespaces/2/enable=1" % S1,
    ]


def test_ana_group_of_a_live_namespace_changes_without_disabling_it(tree):
    converge(tree, declaration())
    wanted = declaration()
    wanted["subsystems"][0]["namespaces"][0]["ana_grpid"] = 2
    assert ops(plan_for(tree, wanted)) == ["write subsystems/%s/namespaces/1/ana_grpid=2" % S1]


@pytest.mark.parametrize(
    "key, value",
    [
        ("device", {"path": "/dev/nvme0n1", "uuid": "7F2C1F1E-0B7D-4F4E-9C55-9D1C7A2B3E4F"}),
        ("device", {"path": "/dev/nvme0n1", "nguid": "00112233445566778899aabbccddeeff"}),
        ("buffered_io", 1),
        ("p2pmem", "none"),
    ],
)
def test_values_frozen_while_enabled_are_written_between_disable_and_enable(tree, key, value):
    """EBUSY (device_*, p2pmem) and EINVAL (buffered_io) while enabled: disable, write, enable."""
    converge(tree, declaration())
    # Set up earlier by hand: the namespace uses p2pmem=1, which the declaration may turn off.
    tree.writer.write("%s/subsystems/%s/namespaces/1/p2pmem" % (CFG, S1), "1")
    wanted = declaration()
    wanted["subsystems"][0]["namespaces"][0][key] = value
    plan = plan_for(tree, wanted)
    disable = index(plan, "write", "namespaces/1/enable", "0")
    enable = index(plan, "write", "namespaces/1/enable", "1")
    writes = [i for i, a in enumerate(plan.actions) if a.op == "write" and "/namespaces/1/" in a.path
              and not a.path.endswith("/enable")]
    assert len(writes) == 1 and disable < writes[0] < enable
    assert not any("/namespaces/2/" in a.path for a in plan.actions), "the untouched live namespace stays enabled"
    apply_actions(tree.writer, plan.actions)
    assert plan_for(tree, wanted).actions == [], "uuids and nguids compare in the kernel's own form"


def test_a_port_address_change_unlinks_and_relinks_its_subsystems(tree):
    """addr_* answers EACCES while a subsystem is linked."""
    converge(tree, declaration())
    wanted = declaration()
    wanted["ports"][0]["addr"]["trsvcid"] = "4421"
    plan = converge(tree, wanted)
    assert ops(plan) == [
        "unlink ports/1/subsystems/%s" % S1,
        "write ports/1/addr_trsvcid=4421",
        "symlink ports/1/subsystems/%s" % S1,
    ]
    assert dump(tree)["ports"][0]["subsystems"] == [S1]


def test_a_port_whose_address_stays_keeps_its_links(tree):
    converge(tree, declaration())
    wanted = declaration()
    wanted["subsystems"].append({"nqn": S2, "attr": {"allow_any_host": "1"}, "allowed_hosts": []})
    wanted["ports"][0]["subsystems"].append(S2)
    plan = plan_for(tree, wanted)
    assert not any(a.op == "unlink" for a in plan.actions)
    assert ops(plan)[-1] == "symlink ports/1/subsystems/%s" % S2


def test_allow_any_host_is_set_only_after_the_hosts_are_unlinked(tree):
    """attr_allow_any_host=1 answers EINVAL while hosts are linked."""
    converge(tree, declaration())
    wanted = declaration()
    wanted["subsystems"][0]["attr"]["allow_any_host"] = "1"
    wanted["subsystems"][0]["allowed_hosts"] = []
    plan = converge(tree, wanted)
    assert index(plan, "unlink", "allowed_hosts/" + H1) < index(plan, "write", "attr_allow_any_host", "1")


def test_hosts_are_linked_only_after_allow_any_host_is_cleared(tree):
    """Linking a host while allow_any_host=1 answers EINVAL."""
    wanted = declaration()
    wanted["subsystems"][0]["attr"]["allow_any_host"] = "1"
    wanted["subsystems"][0]["allowed_hosts"] = []
    converge(tree, wanted)
    plan = plan_for(tree, declaration())
    assert index(plan, "write", "attr_allow_any_host", "0") < index(plan, "symlink", "allowed_hosts/" + H1)


def test_allow_any_host_with_hosts_kept_linked_is_refused(tree):
    converge(tree, declaration())
    wanted = declaration()
    wanted["subsystems"][0]["attr"]["allow_any_host"] = "1"
    del wanted["subsystems"][0]["allowed_hosts"]
    with pytest.raises(P2PError, match="allow_any_host=1 while hosts stay linked"):
        plan_for(tree, wanted)


@pytest.mark.parametrize(
    "key, value",
    [("serial", "other"), ("model", "other"), ("version", "2.0"), ("firmware", "1.0"), ("ieee_oui", "0x0")],
)
def test_identify_values_of_an_existing_subsystem_are_refused(tree, key, value):
    """These answer EINVAL once a host identified the subsystem; configfs cannot tell when, so never change them."""
    converge(tree, declaration())
    wanted = declaration()
    wanted["subsystems"][0]["attr"][key] = value
    with pytest.raises(P2PError, match="subsystem %s: %s is .* freezes the Identify values" % (S1, key)):
        plan_for(tree, wanted)


def test_version_compares_in_the_kernels_form(tree):
    wanted = declaration()
    wanted["subsystems"][0]["attr"]["version"] = "1.3.0"
    converge(tree, wanted)
    assert plan_for(tree, wanted).actions == []


def test_ana_groups_are_made_and_group_one_only_gets_a_state(tree):
    wanted = declaration()
    wanted["ports"][0]["ana_groups"] = [
        {"grpid": 1, "ana": {"state": "non-optimized"}},
        {"grpid": 2, "ana": {"state": "optimized"}},
    ]
    plan = converge(tree, wanted)
    assert not any(a.op == "mkdir" and a.path.endswith("ana_groups/1") for a in plan.actions)
    assert index(plan, "mkdir", "ana_groups/2") < index(plan, "write", "ana_groups/2/ana_state")
    groups = dump(tree)["ports"][0]["ana_groups"]
    assert groups == [{"grpid": 1, "ana": {"state": "non-optimized"}}, {"grpid": 2, "ana": {"state": "optimized"}}]


def test_removing_ana_group_one_is_refused(tree):
    wanted = declaration()
    wanted["ports"][0]["ana_groups"] = [{"grpid": 1, "state": "absent"}]
    with pytest.raises(P2PError, match="ANA group 1 is the port's default group.*EPERM"):
        plan_for(tree, wanted)


@pytest.mark.parametrize("grpid", [0, 129])
def test_ana_group_ids_outside_the_kernels_range_are_refused(tree, grpid):
    wanted = declaration()
    wanted["ports"][0]["ana_groups"] = [{"grpid": grpid}]
    with pytest.raises(P2PError, match="ANA group %d is not 1..128" % grpid):
        plan_for(tree, wanted)


def test_removing_everything_runs_in_reverse_order(tree):
    wanted = declaration()
    wanted["ports"][0]["ana_groups"] = [{"grpid": 2, "ana": {"state": "optimized"}}]
    converge(tree, wanted)
    plan = plan_for(tree, wanted, state="absent")
    unlink_port = index(plan, "unlink", "ports/1/subsystems/" + S1)
    ana = index(plan, "rmdir", "ports/1/ana_groups/2")
    port = index(plan, "rmdir", "ports/1")
    disable = index(plan, "write", "namespaces/1/enable", "0")
    namespace = index(plan, "rmdir", "namespaces/1")
    unlink_host = index(plan, "unlink", "allowed_hosts/" + H1)
    subsystem = index(plan, "rmdir", "subsystems/" + S1)
    host = index(plan, "rmdir", "hosts/" + H1)
    assert unlink_port < ana < port < disable < namespace < unlink_host < subsystem < host
    apply_actions(tree.writer, plan.actions)
    assert dump(tree) == {"hosts": [], "ports": [], "subsystems": []}


def test_one_absent_namespace_leaves_the_rest_alone(tree):
    converge(tree, declaration())
    wanted = declaration()
    wanted["subsystems"][0]["namespaces"][1] = {"nsid": 2, "state": "absent"}
    assert ops(converge(tree, wanted)) == [
        "write subsystems/%s/namespaces/2/enable=0" % S1,
        "rmdir subsystems/%s/namespaces/2" % S1,
    ]


def test_removing_a_host_unlinks_it_from_every_subsystem_first(tree):
    converge(tree, declaration())
    plan = plan_for(tree, {"hosts": [{"nqn": H1, "state": "absent"}]})
    assert ops(plan) == ["unlink subsystems/%s/allowed_hosts/%s" % (S1, H1), "rmdir hosts/%s" % H1]


def test_unmanaged_objects_stay_unless_purged(tree):
    converge(tree, declaration())
    tree.host(H2)
    tree.subsystem(S2)
    tree.namespace(S1, 9, "/dev/nvme2n1")
    assert plan_for(tree, declaration()).actions == []
    plan = plan_for(tree, declaration(), purge=True)
    assert sorted(ops(plan)) == sorted([
        "write subsystems/%s/namespaces/9/enable=0" % S1,
        "rmdir subsystems/%s/namespaces/9" % S1,
        "rmdir subsystems/%s" % S2,
        "rmdir hosts/%s" % H2,
    ])
    apply_actions(tree.writer, plan.actions)
    assert plan_for(tree, declaration(), purge=True).actions == []


def test_a_missing_block_device_is_refused_before_any_change(tree):
    wanted = declaration()
    wanted["subsystems"][0]["namespaces"][0]["device"]["path"] = "/dev/nvme7n1"
    with pytest.raises(P2PError, match="namespace 1: device /dev/nvme7n1 does not exist.*ENOENT"):
        plan_for(tree, wanted)
    assert dump(tree) == {"hosts": [], "ports": [], "subsystems": []}


def test_a_disabled_namespace_may_name_a_device_that_is_not_there_yet(tree):
    wanted = declaration()
    wanted["subsystems"][0]["namespaces"][0].update(device={"path": "/dev/nvme7n1"}, enable=0)
    plan = converge(tree, wanted)
    assert not any(a.path.endswith("namespaces/1/enable") for a in plan.actions)


def test_every_action_knows_how_to_undo_itself(tree):
    converge(tree, declaration())
    wanted = declaration()
    wanted["ports"][0]["addr"]["trsvcid"] = "4421"
    wanted["subsystems"][0]["namespaces"][1]["device"]["path"] = "/dev/nvme2n1"
    plan = plan_for(tree, wanted)
    undone = {a.path: a.undo for a in plan.actions}
    assert all(isinstance(u, Action) for undo in undone.values() for u in undo)
    assert undone[CFG + "/ports/1/addr_trsvcid"][0].value == "4420"
    assert undone["%s/subsystems/%s/namespaces/2/device_path" % (CFG, S1)][0].value == "/dev/nvme1n1"


def test_an_nvmetcli_dump_of_a_loop_target_is_pasted_and_converges(tree):
    """nvmetcli saves unset loop address fields as "" and every attribute it found; the paste must work twice."""
    saved = {
        "hosts": [],
        "ports": [{
            "addr": {"adrfam": "", "traddr": "", "treq": "not specified", "trsvcid": "", "trtype": "loop"},
            "ana_groups": [{"ana": {"state": "optimized"}, "grpid": 1}],
            "param": {"inline_data_size": "-1", "pi_enable": "0"},
            "portid": 3, "referrals": [], "subsystems": [S2],
        }],
        "subsystems": [{
            "allowed_hosts": [],
            "attr": {"allow_any_host": "1", "cntlid_max": "65519", "cntlid_min": "1", "model": "Linux",
                     "pi_enable": "0", "qid_max": "128", "serial": "0c2a64a3ab3b9b2f", "version": "1.3"},
            "namespaces": [{
                "ana_grpid": 1, "enable": 1, "nsid": 1,
                "device": {"nguid": "00000000-0000-0000-0000-000000000000", "path": "/dev/nvme0n1",
                           "uuid": "2c0ee6d5-7c1c-4a35-8f9b-1d1bb6b0e1f5"},
            }],
            "nqn": S2,
        }],
    }
    plan = converge(tree, saved)
    assert "write ports/3/addr_trtype=loop" in ops(plan)
    assert not any(a.path.endswith(("addr_adrfam", "addr_traddr", "addr_trsvcid")) for a in plan.actions)
    assert plan_for(tree, saved).actions == []


def drop_p2pmem_attributes(tree: ConfigfsTree) -> None:
    """What a kernel without CONFIG_PCI_P2PDMA shows: namespaces without a p2pmem file (Debian's stock 6.12)."""
    for subsystem in read_target(tree.root).subsystems:
        for ns in subsystem.namespaces:
            os.unlink(tree.root.host_path("%s/subsystems/%s/namespaces/%d/p2pmem" % (CFG, subsystem.nqn, ns.nsid)))


@pytest.mark.parametrize("p2pmem", ["auto", "0000:03:00.0"])
def test_p2pmem_on_a_kernel_without_p2pdma_is_refused(tree, p2pmem):
    converge(tree, declaration())
    drop_p2pmem_attributes(tree)
    wanted = declaration()
    wanted["subsystems"][0]["namespaces"].append({"nsid": 3, "device": {"path": "/dev/nvme2n1"}, "p2pmem": p2pmem})
    with pytest.raises(P2PError, match="namespace 3: p2pmem %s needs a kernel with CONFIG_PCI_P2PDMA" % p2pmem):
        plan_for(tree, wanted)


def test_p2pmem_none_on_a_kernel_without_p2pdma_writes_nothing(tree):
    converge(tree, declaration())
    drop_p2pmem_attributes(tree)
    wanted = declaration()
    wanted["subsystems"][0]["namespaces"][0]["p2pmem"] = "none"
    assert plan_for(tree, wanted).actions == []
