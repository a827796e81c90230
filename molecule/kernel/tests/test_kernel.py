"""Verify the kernel scenario on every node: the verified P2PDMA kernel runs and is the default."""

from __future__ import annotations

from typing import Any


def test_the_node_runs_the_p2pdma_kernel(host: Any) -> None:
    release = host.check_output("uname -r")
    assert "-p2p" in release
    assert "CONFIG_PCI_P2PDMA=y" in host.file("/boot/config-%s" % release).content_string.splitlines()


def test_the_verified_kernel_is_the_default(host: Any) -> None:
    release = host.check_output("uname -r")
    saved = [
        line for line in host.file("/boot/grub/grubenv").content_string.splitlines() if line.startswith("saved_entry=")
    ]
    assert saved and ("gnulinux-%s-advanced-" % release) in saved[0]
