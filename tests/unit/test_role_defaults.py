"""Role defaults that must agree across roles."""

from __future__ import annotations

from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


def role_defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())


def test_the_build_hands_its_packages_to_the_directory_the_install_reads_by_default() -> None:
    fetch_dir = role_defaults("kernel_build")["kernel_build_fetch_dir"]
    assert fetch_dir == role_defaults("kernel_install")["kernel_install_package_dir"]
    # The controller's p2pctl cache root, found as p2pctl finds it.
    assert "lookup('ansible.builtin.env', 'P2PCTL_CACHE')" in fetch_dir
