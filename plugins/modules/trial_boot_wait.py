#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: trial_boot_wait
short_description: Wait for a node's trial boot, failing as soon as its serial console shows the boot failing
version_added: "0.1.0"
description:
  - Runs where the node's serial console log is written (the controller, for a lab node), after a reboot into a
    kernel on trial was asked for.
  - Follows the log from I(offset) (its size before the reboot). The trial boot is the first kernel banner
    (C(Linux version ...)) after it.
  - Fails at once when that boot runs another release than I(release), when its console shows a kernel panic,
    initramfs-tools giving up on the root device (C(Rebooting automatically due to panic= boot argument)), or
    systemd's emergency mode, or when the node starts another boot. The message quotes the failing line.
  - Returns once the trial boot has started and I(host):I(port) answers with an SSH banner.
  - Changes nothing.
author:
  - p2pdma.storage maintainers (@p2pdma)
options:
  console_log:
    description: The node's serial console log.
    type: path
    required: true
  offset:
    description: Where the output after the reboot request starts in I(console_log), in bytes.
    type: int
    default: 0
  release:
    description: The kernel release (C(uname -r)) on trial.
    type: str
    required: true
  host:
    description: Address of the node's SSH server as seen from where the module runs.
    type: str
    required: true
  port:
    description: Port of the node's SSH server.
    type: int
    default: 22
  timeout:
    description: Seconds to wait in all.
    type: int
    default: 900
extends_documentation_fragment:
  - p2pdma.storage.attributes
attributes:
  check_mode:
    support: full
    description: Waits in check mode too; it only reads.
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to compare.
notes:
  - The console must carry the kernel's messages (C(console=) on the kernel command line, no C(quiet)), or the
    trial boot is never seen to start and the wait ends at I(timeout).
seealso:
  - module: p2pdma.storage.kernel_boot
"""

EXAMPLES = r"""
- name: Note where the serial log stands
  ansible.builtin.stat:
    path: /root/.cache/p2pctl/lab/nodes/lab1/serial.log
  register: serial_before
  delegate_to: localhost

- name: Reboot (not waiting here)
  ansible.builtin.shell: sleep 2 && shutdown -r now
  async: 60
  poll: 0

- name: Wait for the trial boot
  p2pdma.storage.trial_boot_wait:
    console_log: /root/.cache/p2pctl/lab/nodes/lab1/serial.log
    offset: "{{ serial_before.stat.size }}"
    release: 6.12.117-p2p24f1f87ab096
    host: "{{ ansible_host }}"
    port: "{{ ansible_port }}"
  delegate_to: localhost
"""

RETURN = r"""
release:
  description: The release the trial boot's banner names.
  returned: success
  type: str
  sample: 6.12.117-p2p24f1f87ab096
seconds:
  description: How long the wait took.
  returned: always
  type: float
console:
  description: The trial boot's last console lines (on failure, those up to the failing line).
  returned: always
  type: list
  elements: str
"""

import socket  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import console  # noqa: E402

_POLL_SECONDS = 1.0
_QUOTED_LINES = 40


def _read_from(path: str, offset: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def ssh_answers(host: str, port: int) -> bool:
    """An SSH server sends its banner first; a port forward with nothing behind it closes instead."""
    try:
        with socket.create_connection((host, port), timeout=5) as connection:
            connection.settimeout(5)
            return connection.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def run(module: AnsibleModule) -> dict:
    params = module.params
    started = time.monotonic()
    deadline = started + params["timeout"]
    while True:
        boot = console.trial_boot(_read_from(params["console_log"], params["offset"]))
        failure = boot.failure(params["release"])
        seconds = round(time.monotonic() - started, 1)
        if failure is not None:
            module.fail_json(
                msg="the trial boot of %s failed after %.0f s: %s" % (params["release"], seconds, failure.reason),
                console=list(failure.lines)[-_QUOTED_LINES:],
                seconds=seconds,
            )
        if boot.started and ssh_answers(params["host"], params["port"]):
            return {"changed": False, "release": boot.release, "seconds": seconds, "console": list(boot.lines)[-10:]}
        if time.monotonic() >= deadline:
            module.fail_json(
                msg="the trial boot of %s did not answer SSH on %s:%d within %d s (%s)"
                % (
                    params["release"],
                    params["host"],
                    params["port"],
                    params["timeout"],
                    "its kernel started" if boot.started else "no kernel banner on the console",
                ),
                console=list(boot.lines)[-_QUOTED_LINES:],
                seconds=seconds,
            )
        time.sleep(_POLL_SECONDS)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            console_log=dict(type="path", required=True),
            offset=dict(type="int", default=0),
            release=dict(type="str", required=True),
            host=dict(type="str", required=True),
            port=dict(type="int", default=22),
            timeout=dict(type="int", default=900),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
