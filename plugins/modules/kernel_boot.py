#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_boot
short_description: Make GRUB boot a kernel release once (grub-reboot) or by default (grub-set-default)
version_added: "0.1.0"
description:
  - Finds the GRUB menu entry that boots I(release) in the generated C(grub.cfg) and names it by its menu ids
    (C(submenu-id>entry-id)), which stay valid when update-grub reorders the menu.
  - I(boot=once) sets C(next_entry) with C(grub-reboot), for the next boot only, after which GRUB falls back to the
    default. I(boot=default) sets C(saved_entry) with C(grub-set-default).
  - Both need C(GRUB_DEFAULT=saved) in the GRUB configuration, which the C(p2pdma.storage.kernel_install) role sets.
  - Changes nothing when the grubenv variable already names that entry.
author:
  - p2pdma.storage maintainers (@p2pdma)
options:
  release:
    description: The kernel release (C(uname -r)) to boot.
    type: str
    required: true
  boot:
    description: C(once) for the next boot only, C(default) for every boot.
    type: str
    choices: [once, default]
    required: true
  grub_dir:
    description: GRUB's directory with C(grub.cfg) and C(grubenv).
    type: path
    default: /boot/grub
extends_documentation_fragment:
  - p2pdma.storage.attributes
  - p2pdma.storage.attributes.changes
"""

EXAMPLES = r"""
- name: Keep the running kernel as the default while a new one is tried
  p2pdma.storage.kernel_boot:
    release: "{{ ansible_facts.kernel }}"
    boot: default

- name: Boot the new kernel once
  p2pdma.storage.kernel_boot:
    release: 6.1.192-p2p82cce0cc8ba5
    boot: once
"""

RETURN = r"""
entry:
  description: The menu entry path given to grub-reboot or grub-set-default.
  returned: always
  type: str
  sample: gnulinux-advanced-LABEL=root>gnulinux-6.1.192-p2p82cce0cc8ba5-advanced-LABEL=root
releases:
  description: Kernel releases that have a menu entry.
  returned: always
  type: list
  elements: str
actions:
  description: The commands run (or, in check mode, that would run).
  returned: always
  type: list
  elements: list
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import grub  # noqa: E402

_VARIABLE = {"once": "next_entry", "default": "saved_entry"}
_COMMAND = {"once": "grub-reboot", "default": "grub-set-default"}


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        raise P2PError("%s does not exist" % path, fix="install grub and run update-grub") from None


def run(module: AnsibleModule) -> dict:
    grub_dir = module.params["grub_dir"]
    boot = module.params["boot"]
    entries = grub.parse_menu(_read(os.path.join(grub_dir, "grub.cfg")))
    entry = grub.entry_for(entries, module.params["release"])
    grubenv_path = os.path.join(grub_dir, "grubenv")
    grubenv = grub.parse_grubenv(_read(grubenv_path)) if os.path.exists(grubenv_path) else {}
    before = grubenv.get(_VARIABLE[boot], "")
    actions = [] if before == entry.path else [[_COMMAND[boot], entry.path]]
    if actions and not module.check_mode:
        for argv in actions:
            module.run_command(argv, check_rc=True)
    return {
        "changed": bool(actions),
        "entry": entry.path,
        "releases": sorted({e.release for e in entries if e.release}),
        "actions": actions,
        "diff": {"before": {_VARIABLE[boot]: before}, "after": {_VARIABLE[boot]: entry.path}},
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            release=dict(type="str", required=True),
            boot=dict(type="str", choices=["once", "default"], required=True),
            grub_dir=dict(type="path", default="/boot/grub"),
        ),
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except P2PError as err:
        module.fail_json(msg=str(err))


if __name__ == "__main__":
    main()
