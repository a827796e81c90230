"""Verify the kernel_fallback scenario: the broken kernel left the node on its stock kernel and default."""

from __future__ import annotations

import json
from typing import Any, List


def failure(host: Any) -> List[str]:
    return json.loads(host.file("/root/kernel_install_failure.json").content_string)


def test_the_node_is_back_on_its_previous_kernel(host: Any) -> None:
    assert "-p2p" not in host.check_output("uname -r")


def test_the_default_entry_is_not_the_broken_kernel(host: Any) -> None:
    grubenv = host.file("/boot/grub/grubenv").content_string
    saved = [line for line in grubenv.splitlines() if line.startswith("saved_entry=")]
    assert saved and "-p2p" not in saved[0]
    assert "next_entry=gnulinux" not in grubenv


def test_the_failure_names_the_kernel_and_the_outcome(host: Any) -> None:
    message = failure(host)
    running = host.check_output("uname -r")
    assert "was not made the default" in message[0]
    assert "came back on its previous kernel %s" % running in message[1]


def test_the_failure_quotes_the_trial_boot_from_the_serial_console(host: Any) -> None:
    message = failure(host)
    assert message[4].startswith("serial console of the trial boot")
    # initramfs-tools could not mount root, and panic= made it reboot into GRUB's default.
    assert any("Rebooting automatically due to panic= boot argument" in line for line in message[5])
