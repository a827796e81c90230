"""Declarations the nvmet planner refuses before any change, each with the object, the reason and a fix."""

from __future__ import annotations

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import Target, target_from_dict
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.validate import (
    check_nqn,
    exposures,
    unstable_names,
    validate,
)
from tests.unit.test_nvmet_plan import H1, S1, declaration


def refused(change) -> P2PError:  # type: ignore[no-untyped-def]
    wanted = declaration()
    change(wanted)
    with pytest.raises(P2PError) as failure:
        validate(target_from_dict(wanted), Target())
    assert failure.value.fix, "every refusal says how to fix it"
    return failure.value


def test_the_declaration_used_by_the_tests_is_valid():
    validate(target_from_dict(declaration()), Target())


@pytest.mark.parametrize(
    "nqn",
    [
        "nqn.2026-01.com.example:store1",
        "nqn.2014-08.org.nvmexpress:uuid:7f2c1f1e-0b7d-4f4e-9c55-9d1c7a2b3e4f",
        "nqn.1992-05.com.ibm:nvme:2145.0000020060e0105c",
        "nqn.2026-12.io.x:" + "a" * (223 - len("nqn.2026-12.io.x:")),
    ],
)
def test_nqns_in_the_spec_format_pass(nqn):
    check_nqn(nqn, "subsystem")


@pytest.mark.parametrize(
    "nqn, reason",
    [
        ("store1", "not in the NVMe spec's format"),
        ("nqn.2026-13.com.example:x", "not in the NVMe spec's format"),
        ("nqn.26-01.com.example:x", "not in the NVMe spec's format"),
        ("nqn.2026-01.com.example", "not in the NVMe spec's format"),
        ("nqn.2026-01.-bad.example:x", "not in the NVMe spec's format"),
        ("nqn.2026-01.com.example:a/b", "contains '/'"),
        ("nqn.2026-01.com.example:../../x", "contains '/'"),
        ("nqn.2026-12.io.x:" + "a" * (224 - len("nqn.2026-12.io.x:")), "224 bytes, more than the 223"),
    ],
)
def test_malformed_nqns_are_refused(nqn, reason):
    with pytest.raises(P2PError, match="subsystem NQN .*" + reason.replace("(", r"\(")):
        check_nqn(nqn, "subsystem")


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda w: w["subsystems"][0]["namespaces"].append({"nsid": 1, "device": {"path": "/dev/x"}}),
            "nsid 1 is declared twice",
        ),
        (lambda w: w["ports"].append(dict(w["ports"][0])), "port id 1 is declared twice"),
        (lambda w: w["hosts"].append({"nqn": H1}), "host %s is declared twice" % H1),
        (lambda w: w["subsystems"][0]["namespaces"][0].update(nsid=0), "namespace 0: the nsid must be 1..4294967294"),
        (lambda w: w["subsystems"][0]["namespaces"][0].update(nsid=0xFFFFFFFF), "the nsid must be 1..4294967294"),
        (lambda w: w["subsystems"][0]["namespaces"][0].update(device={"path": "dev/nvme0n1"}), "is not absolute"),
        (
            lambda w: w["subsystems"][0]["namespaces"][0].update(device={"path": "/dev/../etc/passwd"}),
            "not a plain absolute path",
        ),
        (lambda w: w["subsystems"][0]["namespaces"][0].update(device={}), "namespace 1 has no device path"),
        (lambda w: w["subsystems"][0]["namespaces"][0]["device"].update(uuid="1234"), "device uuid '1234' is not"),
        (lambda w: w["subsystems"][0]["namespaces"][0]["device"].update(nguid="xyz"), "nguid 'xyz' is not 16 bytes"),
        (lambda w: w["subsystems"][0]["namespaces"][0].update(p2pmem="0000:zz:00.0"), "p2pmem '0000:zz:00.0' is not"),
        (lambda w: w["subsystems"][0]["namespaces"][0].update(p2pmem="cmb0"), "neither auto, none, a PCI address"),
        (lambda w: w["subsystems"][0]["namespaces"][0].update(ana_grpid=129), "ana_grpid 129 is not 1..128"),
        (lambda w: w["ports"][0]["addr"].update(traddr="300.1.1.1"), "traddr '300.1.1.1' is not an IP address"),
        (lambda w: w["ports"][0]["addr"].update(traddr="fe80::1"), "traddr fe80::1 is not an ipv4 address"),
        (lambda w: w["ports"][0]["addr"].update(adrfam="fc"), "adrfam 'fc' does not go with trtype tcp"),
        (lambda w: w["ports"][0]["addr"].update(trsvcid="70000"), "trsvcid '70000' is not a TCP/UDP port"),
        (lambda w: w["ports"][0]["addr"].update(trsvcid="http"), "trsvcid 'http' is not a TCP/UDP port"),
        (lambda w: w["ports"][0]["addr"].update(tsas="datagram"), "tsas for tcp 'datagram' is not one"),
        (lambda w: w["ports"][0]["addr"].update(trtype="iwarp"), "trtype 'iwarp' is not one"),
        (lambda w: w["ports"][0].update(portid=70000), "port 70000: the port id must be 0..65535"),
        (lambda w: w["ports"][0].update(subsystems=["nqn.2026-01.com.example:nothere"]), "is not on the target"),
        (
            lambda w: w["subsystems"][0].update(allowed_hosts=["nqn.2026-01.com.example:stranger"]),
            "allowed host nqn.2026-01.com.example:stranger is not a host on the target",
        ),
        (lambda w: w["subsystems"][0]["attr"].update(allow_any_host="1"), "allow_any_host and allowed_hosts exclude"),
        (lambda w: w["subsystems"][0]["attr"].update(serial="x" * 21), "serial 'xxxxxxxxxxxxxxxxxxxxx' must be 1..20"),
        (lambda w: w["subsystems"][0].update(nqn="nqn.2014-08.org.nvmexpress.discovery"), "the discovery NQN"),
        (lambda w: w["hosts"][0].update(dhchap={"key": "secret"}), "dhchap key is not a DH-HMAC-CHAP secret"),
        (lambda w: w["hosts"][0].update(dhchap={"hash": "md5"}), "dhchap hash 'md5' is not one the kernel knows"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_declarations_are_refused_naming_the_object(change, message):
    """The message names the object (subsystem, namespace, port, host) and the reason."""
    assert message in refused(change).message


def test_a_dhchap_secret_in_nvme_cli_format_passes():
    wanted = declaration()
    wanted["hosts"][0]["dhchap"] = {
        "key": "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:",
        "hash": "hmac(sha512)",
        "dhgroup": "ffdhe4096",
    }
    validate(target_from_dict(wanted), Target())


def test_a_subsystem_removed_in_the_same_run_cannot_stay_linked():
    wanted = declaration()
    wanted["subsystems"][0]["state"] = "absent"
    assert "subsystem %s is not on the target" % S1 in str(
        pytest.raises(P2PError, validate, target_from_dict(wanted), Target()).value
    )


@pytest.mark.parametrize(
    ("addr", "warned"),
    [
        ({"trtype": "tcp", "adrfam": "ipv4", "traddr": "192.0.2.10", "trsvcid": "4420"}, True),
        ({"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4420"}, False),
        ({"trtype": "tcp", "adrfam": "ipv6", "traddr": "::1", "trsvcid": "4420"}, False),
        ({"trtype": "loop"}, False),
    ],
)
def test_any_host_on_a_port_others_reach_is_named(addr, warned):
    wanted = declaration()
    wanted["subsystems"][0]["attr"]["allow_any_host"] = "1"
    wanted["subsystems"][0]["allowed_hosts"] = []
    wanted["ports"][0]["addr"] = addr
    warnings = exposures(target_from_dict(wanted))
    assert bool(warnings) == warned
    if warned:
        assert warnings[0].startswith(
            "subsystem %s allows any host (allow_any_host) and is offered on port 1 (tcp 192.0.2.10:4420)" % S1
        )
    wanted["subsystems"][0]["attr"]["allow_any_host"] = "0"
    assert exposures(target_from_dict(wanted)) == []


@pytest.mark.parametrize(
    ("path", "p2pmem", "warned"),
    [
        ("/dev/nvme1n1", None, ["device /dev/nvme1n1 is a name the kernel gives in probe order"]),
        ("/dev/sdb", "auto", ["device /dev/sdb is a name the kernel gives in probe order"]),
        ("/dev/loop0", None, ["device /dev/loop0 is a name the kernel gives in probe order"]),
        ("/dev/disk/by-path/pci-0000:05:00.0-nvme-1", "nvme0", ["p2pmem nvme0 names a controller in probe order"]),
        ("/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_cmb1-1", "0000:03:00.0", []),
        ("/dev/mapper/vg0-data", "none", []),
        ("/dev/nullb0", None, []),
    ],
)
def test_names_the_kernel_gives_in_probe_order_are_warned_of(path, p2pmem, warned):
    wanted = declaration()
    namespace, other = wanted["subsystems"][0]["namespaces"]
    other["device"]["path"] = "/dev/disk/by-path/pci-0000:04:00.0-nvme-1"
    namespace["device"]["path"] = path
    namespace["p2pmem"] = p2pmem
    warnings = unstable_names(target_from_dict(wanted))
    assert len(warnings) == len(warned)
    for warning, start in zip(warnings, warned):
        assert warning.startswith("namespace %d of %s: %s" % (namespace["nsid"], S1, start)), warning
