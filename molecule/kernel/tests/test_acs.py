"""Verify the kernel scenario on the acs node: the engine's ACS parameter makes the kernel accept the path.

The kernel's own answer comes from tools/guest_kernel_answers.py, the script that recorded the
fixtures' answers: an nvmet namespace on one function with the other function's CMB as p2pmem.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict, List

testinfra_hosts = ["molecule-kernel-acs"]

ROOT_PORT = "0000:00:04.0"
PROVIDER = "0000:01:00.0"  # function 0 of the multifunction CMB drive
CLIENT = "0000:01:00.1"  # function 1
ACS_REDIRECT_BITS = 0x0004 | 0x0008 | 0x0020  # RR, CR, EC: what pci_bridge_has_acs_redir() tests
KERNEL_ANSWERS = Path(__file__).resolve().parents[3] / "tools" / "guest_kernel_answers.py"


def kernel_answers(host: Any) -> List[Dict[str, Any]]:
    script = base64.b64encode(KERNEL_ANSWERS.read_bytes()).decode()
    host.check_output("echo %s | base64 -d > /tmp/guest_kernel_answers.py" % script)
    host.check_output("python3 /tmp/guest_kernel_answers.py /tmp/kernel-answers.json")
    answers: List[Dict[str, Any]] = json.loads(host.file("/tmp/kernel-answers.json").content_string)["answers"]
    return answers


def test_the_command_line_disables_acs_redirect_at_the_root_port(host: Any) -> None:
    params = host.file("/proc/cmdline").content_string.split()
    assert "pci=disable_acs_redir=%s" % ROOT_PORT in params
    assert "intel_iommu=on" in params


def test_the_iommu_is_on_and_the_root_port_no_longer_redirects(host: Any) -> None:
    assert host.check_output("ls /sys/class/iommu")
    # The parameter clears redirect; the other bits differ by release: 6.1 keeps what the kernel enabled
    # (SV, UF), 6.12 puts back the firmware's value (0 under QEMU).
    control = int(host.check_output("setpci -s %s ECAP_ACS+6.w" % ROOT_PORT), 16)
    assert control & ACS_REDIRECT_BITS == 0


def test_the_kernel_accepts_each_function_as_p2pmem_for_the_other(host: Any) -> None:
    answers = kernel_answers(host)
    pairs = {(answer["provider"], answer["client"]): answer for answer in answers}
    for provider, client in ((PROVIDER, CLIENT), (CLIENT, PROVIDER)):
        answer = pairs[(provider, client)]
        assert answer["ok"], answer
