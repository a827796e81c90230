"""The trial boot on a serial console (module_utils/kernel/console.py, modules/trial_boot_wait.py).

``kernel-fallback.serial.log.xz`` is a lab node's serial.log as QEMU wrote it (CRLF line ends) during molecule's
kernel_fallback scenario (2026-12-01): from the stock kernel's login prompt, through the reboot into
a P2PDMA kernel built without ext4 (initramfs-tools cannot mount root and reboots after panic=10),
to GRUB's default, the stock kernel, starting again.
"""

from __future__ import annotations

import json
import lzma
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import console

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOG = REPO / "tests" / "fixtures" / "console" / "kernel-fallback.serial.log.xz"
TRIAL = "6.12.117-p2p4cefdc2c6c27"
STOCK = "6.12.117+deb13-amd64"
PANIC = "Rebooting automatically due to panic= boot argument"


@pytest.fixture(scope="module")
def text() -> str:
    return lzma.decompress(LOG.read_bytes()).decode("utf-8", "replace")


def upto(text: str, marker: str) -> str:
    """The console as it stood just before ``marker`` was written."""
    return text[: text.index(marker)]


def test_the_failing_trial_boot_is_named_by_its_initramfs_line(text: str) -> None:
    boot = console.trial_boot(text)
    assert (boot.release, boot.next_release) == (TRIAL, STOCK)
    failure = boot.failure(TRIAL)
    assert failure is not None
    assert failure.reason == PANIC
    assert failure.lines[0].startswith("Linux version %s " % TRIAL)
    assert failure.lines[-3:] == ["mount: No such device", "Failed to mount /dev/vda1 as root file system.", PANIC]


def test_the_failure_is_known_as_soon_as_the_panic_line_is_written(text: str) -> None:
    before = console.trial_boot(upto(text, PANIC))
    assert before.started and before.failure(TRIAL) is None
    after = console.trial_boot(upto(text, PANIC) + PANIC + "\r\n")
    failure = after.failure(TRIAL)
    assert failure is not None and failure.reason == PANIC


def test_the_old_boot_shutting_down_is_not_the_trial_boot(text: str) -> None:
    boot = console.trial_boot(upto(text, "Linux version"))
    assert not boot.started
    assert boot.failure(TRIAL) is None


def test_another_release_on_trial_fails_at_its_banner(text: str) -> None:
    failure = console.trial_boot(upto(text, "Command line:")).failure("6.12.117-p2p0123456789ab")
    assert failure is not None
    assert failure.reason == "the node booted %s instead of 6.12.117-p2p0123456789ab" % TRIAL


def test_terminal_escapes_and_carriage_returns_are_dropped() -> None:
    assert console.clean_lines("\x1b[0;32m  OK  \x1b[0m] Started\r\n[  754.06\rLinux version") == [
        "  OK  ] Started",
        "[  754.06",
        "Linux version",
    ]


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The trial boot of the captured console
      p2pdma.storage.trial_boot_wait:
        console_log: "{{ console_log }}"
        release: "{{ release }}"
        host: 127.0.0.1
        port: "{{ port }}"
        timeout: "{{ timeout }}"
      register: waited
      ignore_errors: true

    - name: Keep what the module returned
      ansible.builtin.copy:
        dest: "{{ results_file }}"
        content: "{{ waited | to_json }}"
"""


def wait_on(tmp_path: Path, console_log: Path, timeout: int) -> Tuple[Dict[str, Any], int]:
    """Run the module for real by ansible-playbook; nothing listens on its SSH port (returned)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    playbook = tmp_path / "wait.yml"
    playbook.write_text(textwrap.dedent(PLAYBOOK))
    results_file = tmp_path / "results.json"
    extra_vars = {
        "console_log": str(console_log),
        "release": TRIAL,
        "port": port,
        "timeout": timeout,
        "results_file": str(results_file),
        "ansible_python_interpreter": sys.executable,
    }
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=str(BIN) + os.pathsep + os.environ["PATH"])
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook), "-e", json.dumps(extra_vars)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result: Dict[str, Any] = json.loads(results_file.read_text())
    return result, port


def test_the_module_fails_with_the_console_line_and_what_led_to_it(tmp_path: Path) -> None:
    captured = tmp_path / "serial.log"
    captured.write_bytes(lzma.decompress(LOG.read_bytes()))
    result = wait_on(tmp_path, captured, timeout=600)[0]
    assert result["failed"]
    assert result["msg"].startswith("the trial boot of %s failed after " % TRIAL)
    assert result["msg"].endswith(": " + PANIC)
    assert result["console"][-2:] == ["Failed to mount /dev/vda1 as root file system.", PANIC]
    # It read what was already written and did not wait for the timeout.
    assert result["seconds"] < 600


def test_the_module_gives_up_at_the_timeout_and_says_no_kernel_started(tmp_path: Path, text: str) -> None:
    shutting_down = tmp_path / "serial.log"
    shutting_down.write_text(upto(text, "Linux version"))
    result, port = wait_on(tmp_path, shutting_down, timeout=2)
    assert result["failed"]
    assert result["msg"] == (
        "the trial boot of %s did not answer SSH on 127.0.0.1:%d within 2 s (no kernel banner on the console)"
        % (TRIAL, port)
    )
