#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight
short_description: Find everything that would stop the site playbook on a node, before anything changes
version_added: "0.1.0"
description:
  - Lists every problem in one pass, each with its fix, instead of stopping at the first.
  - Variables whose names start with a role prefix of the collection (C(kernel_build_), C(kernel_install_),
    C(nvme_), C(nvmet_), C(p2p_check_)) but that no role's C(meta/argument_specs.yml) declares. Ansible ignores
    such a variable silently, so a typo would leave a default in place. The action plugin of the same name reads
    the roles' argument specs and the host's variables on the controller and passes both.
  - In the declared NVMe-oF target (I(nvmet_config), nvmetcli's JSON schema), what the nvmet module's validation
    refuses (duplicate port ids and nsids among it), namespace devices that do not exist on the node, and
    namespaces whose p2pmem provider the kernel would refuse, judged by the nvmet module's own p2pmem judge.
  - On a node that does not run a P2PDMA kernel yet, or when I(kernel_pending=true), a named provider is judged by
    the path alone (the engine's verdict on the PCI topology); publication is verified after the trial boot, and
    C(p2pmem=auto) on the kernel that publishes.
author:
  - p2pdma.storage maintainers (@p2pdma)
options:
  variables:
    description: Names of the host's variables (the action plugin fills it in).
    type: list
    elements: str
    default: []
  declared:
    description: Names the roles' argument specs declare (the action plugin fills it in).
    type: list
    elements: str
    default: []
  nvmet_config:
    description: The NVMe-oF target the nvmet phase will configure, in nvmetcli's JSON schema; null for none.
    type: dict
  kernel_pending:
    description: This run boots another kernel or command line before the nvmet phase.
    type: bool
    default: false
  fail:
    description: Fail the task when there is a problem. The site playbook collects every host's answer first.
    type: bool
    default: true
extends_documentation_fragment:
  - p2pdma.storage.attributes
  - p2pdma.storage.node_root
"""

EXAMPLES = r"""
- name: Find every problem before the site playbook changes anything
  p2pdma.storage.preflight:
    nvmet_config: "{{ nvmet_config }}"
    kernel_pending: true
  become: true
  register: preflight
"""

RETURN = r"""
problems:
  description: Every problem found, each with C(msg) and C(fix); empty when the node is ready.
  returned: always
  type: list
  elements: dict
  sample:
    - msg: variable kernel_instal_use_cmb_sqes is declared by no role of p2pdma.storage, so Ansible would ignore it
      fix: rename it to kernel_install_use_cmb_sqes
p2pmem:
  description: The verdict on each namespace with p2pmem that could be judged (as the nvmet module returns it).
  returned: always
  type: list
  elements: dict
msg:
  description: The problems and their fixes in one text, or that the node is ready.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.provision.preflight import (  # noqa: E402
    target_problems,
    unknown_variables,
)

ARGUMENT_SPEC = {
    "variables": {"type": "list", "elements": "str", "default": []},
    "declared": {"type": "list", "elements": "str", "default": []},
    "nvmet_config": {"type": "dict"},
    "kernel_pending": {"type": "bool", "default": False},
    "fail": {"type": "bool", "default": True},
    "root": {"type": "path", "default": "/"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    problems = unknown_variables(params["variables"], params["declared"])
    verdicts: list = []
    if params["nvmet_config"] is not None:
        try:
            judge = P2PJudge(open_root(params["root"]))
            target, verdicts = target_problems(params["nvmet_config"], judge, params["kernel_pending"])
            problems += target
        except P2PError as exc:
            problems.append(exc)
    listed = [{"msg": err.message, "fix": err.fix} for err in problems]
    msg = "; ".join(str(err) for err in problems) or "ready: no problem found"
    if problems and params["fail"]:
        module.fail_json(msg=msg, problems=listed, p2pmem=verdicts)
    module.exit_json(changed=False, msg=msg, problems=listed, p2pmem=verdicts)


if __name__ == "__main__":
    main()
