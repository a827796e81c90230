"""The lazy Debian install: what is missing, the refusal without root, and --help that installs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from p2pctl import debian_packages

pytestmark = pytest.mark.skipif(not shutil.which("dpkg-query"), reason="needs dpkg (a Debian host)")

P2PCTL = os.path.join(os.path.dirname(sys.executable), "p2pctl")
ABSENT = "p2pctl-test-no-such-package"


def as_nobody(code: str) -> subprocess.CompletedProcess:
    """Run Python code as an unprivileged user, so the install path meets a non-root caller."""
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def test_missing_lists_only_packages_dpkg_does_not_have():
    assert debian_packages.missing(["dpkg", ABSENT]) == [ABSENT]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")
def test_a_non_root_caller_gets_the_packages_and_the_fix_instead_of_an_install():
    result = as_nobody(
        "from p2pctl import debian_packages as d\n"
        "d.CAPABILITIES['lab'] = ('dpkg', %r)\n"
        "d.ensure('lab')\n" % ABSENT
    )
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "P2PError" in message and ABSENT in message and "as root" in message
    assert "dpkg " not in message  # installed packages are not asked for


@pytest.mark.parametrize("argv", [["--help"], ["lab", "--help"], ["lab", "up", "--help"], ["kernel", "build", "-h"]])
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")
def test_help_installs_nothing_even_when_packages_are_missing(argv):
    # As nobody the install would be refused with an error, so a clean exit shows it was not attempted. The lab's
    # list gains a package no machine has, so "missing" is true whatever this host has installed.
    result = as_nobody(
        "import sys\n"
        "from p2pctl import debian_packages as d\n"
        "d.CAPABILITIES['lab'] += (%r,)\n"
        "d.CAPABILITIES['kernel'] += (%r,)\n"
        "from p2pctl.main import main\n"
        "sys.argv = ['p2pctl', *%r]\n"
        "main()\n" % (ABSENT, ABSENT, argv)
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")
def test_a_lab_command_asks_for_its_packages_before_it_runs():
    result = as_nobody(
        "import sys\n"
        "from p2pctl import debian_packages as d\n"
        "d.CAPABILITIES['lab'] += (%r,)\n"
        "from p2pctl.main import main\n"
        "sys.argv = ['p2pctl', 'lab', 'status']\n"
        "main()\n" % ABSENT
    )
    assert result.returncode == 2
    assert "p2pctl: error: p2pctl's lab commands need Debian packages" in result.stderr
    assert ABSENT in result.stderr
