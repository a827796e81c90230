"""Validation before any change: every problem of a host in one pass, judged on captured guests."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import yaml

from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.provision.preflight import (
    declared_variables,
    target_problems,
    unknown_variables,
)
from tests.unit.test_nvmet_p2pmem import guest_tree

ROLES = Path(__file__).resolve().parents[2] / "roles"
ROOTPORTS = "linux-6.12/rootports"  # nvme0 (01:00.0) and nvme1 (02:00.0) with CMBs under two root ports


def declared() -> list:
    return declared_variables(yaml.safe_load(p.read_text()) for p in ROLES.glob("*/meta/argument_specs.yml"))


def test_the_roles_declare_their_variables_in_every_entry_point() -> None:
    names = declared()
    assert {"kernel_install_use_cmb_sqes", "kernel_build_fetch_dir", "p2p_check_root"} <= set(names)


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("kernel_instal_use_cmb_sqes", "rename it to kernel_install_use_cmb_sqes"),  # a typo in the prefix
        ("p2p_check_acept", "rename it to p2p_check_accept"),
        ("kernel_install_frobnicate", "remove it; the roles' variables are in their meta/argument_specs.yml"),
        ("nvme_use_cmb_sqes", "rename it to kernel_install_use_cmb_sqes"),
    ],
)
def test_a_variable_no_role_declares_is_named_with_its_fix(name: str, fix: str) -> None:
    problems = unknown_variables([name, "kernel_install_use_cmb_sqes", "ntp_servers", "p2p_check_hosts"], declared())
    assert [(p.message, p.fix) for p in problems] == [
        ("variable %s is declared by no role of p2pdma.storage, so Ansible would ignore it" % name, fix)
    ]


def namespace(nsid: int, device: str, p2pmem: str = "none") -> dict:
    return {"nsid": nsid, "device": {"path": device}, "p2pmem": p2pmem}


def config(*namespaces: dict, ports: tuple = (1,)) -> dict:
    return {
        "ports": [{"portid": p, "addr": {"trtype": "loop"}, "subsystems": []} for p in ports],
        "subsystems": [{"nqn": "nqn.2026-01.com.example:s1", "attr": {"allow_any_host": True},
                        "namespaces": list(namespaces)}],
    }


@pytest.fixture
def p2pdma_kernel() -> P2PJudge:
    return P2PJudge(guest_tree(ROOTPORTS).root)


@pytest.fixture
def stock_kernel(tmp_path: Path) -> P2PJudge:
    """The same machine on a kernel without CONFIG_PCI_P2PDMA: no p2pmem anywhere, as before provisioning."""
    root = tmp_path / "stock"
    shutil.copytree(guest_tree(ROOTPORTS).root.root, root, symlinks=True)
    (root / "proc" / "config.gz").write_bytes(gzip.compress(b"# CONFIG_PCI_P2PDMA is not set\nCONFIG_NVME_CORE=y\n"))
    for p2pmem in root.glob("sys/devices/**/p2pmem"):
        shutil.rmtree(p2pmem)
    judge = P2PJudge(SysRoot(str(root)))
    assert not judge.kernel_has_p2pdma()
    return judge


@pytest.mark.parametrize("kernel", ["p2pdma_kernel", "stock_kernel"])
def test_a_provider_behind_another_root_port_is_refused_with_the_engines_reason(kernel: str, request) -> None:
    judge = request.getfixturevalue(kernel)
    problems, verdicts = target_problems(
        config(namespace(1, "/dev/nvme0n1", "0000:02:00.0"), namespace(2, "/dev/nvme1n1", "0000:02:00.0")),
        judge, kernel_pending=False)
    # The kernel's own answers (kernel-answers.json): nvme0n1 with 02:00.0 is EINVAL, nvme1n1 with its own CMB is ok.
    assert len(problems) == 1
    assert problems[0].message.startswith(
        "subsystem nqn.2026-01.com.example:s1 namespace 1 (device nvme0n1, client 0000:01:00.0): provider "
        "0000:02:00.0 is refused by the kernel")
    assert problems[0].fix
    assert [(v["device"], v["provider"]) for v in verdicts] == [("nvme1n1", "0000:02:00.0")]


def test_on_a_stock_kernel_auto_waits_for_the_kernel_that_publishes(stock_kernel: P2PJudge) -> None:
    assert target_problems(config(namespace(1, "/dev/nvme0n1", "auto")), stock_kernel, False) == ([], [])


def test_publication_is_judged_on_the_running_p2pdma_kernel_unless_a_kernel_boot_is_pending(p2pdma_kernel) -> None:
    # 03:00.0 has no CMB: enable answers ENODEV on this kernel. With a kernel boot pending (which may bring the
    # pseudo-CMB quirk) only its path is judged, and the path from nvme2n1 to its own controller is fine.
    declared_ns = config(namespace(1, "/dev/nvme2n1", "0000:03:00.0"))
    now = target_problems(declared_ns, p2pdma_kernel, kernel_pending=False)[0]
    assert len(now) == 1 and "has no published p2pmem, the kernel refuses it (ENODEV)" in now[0].message
    pending, verdicts = target_problems(declared_ns, p2pdma_kernel, kernel_pending=True)
    assert pending == [] and [v["provider"] for v in verdicts] == ["0000:03:00.0"]


def test_every_problem_of_the_declaration_is_listed_in_one_pass(p2pdma_kernel: P2PJudge) -> None:
    problems = target_problems(
        config(namespace(1, "/dev/nvme0n1"), namespace(1, "/dev/nvme1n1"), namespace(3, "/dev/nvme9n1"),
               namespace(4, "/dev/nvme0n1", "0000:02:00.0"), ports=(1, 1)),
        p2pdma_kernel, kernel_pending=False)[0]
    messages = [p.message for p in problems]
    assert messages[0] == "port id 1 is declared twice; nsid 1 is declared twice"
    assert messages[1] == "subsystem nqn.2026-01.com.example:s1 namespace 3: device /dev/nvme9n1 does not exist " \
        "on this node"
    assert "namespace 4 (device nvme0n1, client 0000:01:00.0): provider 0000:02:00.0 is refused" in messages[2]
    assert len(messages) == 3


def test_a_declaration_outside_nvmetcli_schema_is_one_problem(p2pdma_kernel: P2PJudge) -> None:
    problems = target_problems({"subsystems": [{"namespaces": []}]}, p2pdma_kernel, False)[0]
    assert len(problems) == 1 and problems[0].message.startswith("nvmet_config is not in nvmetcli's JSON schema")
