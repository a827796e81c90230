# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of p2pdma.storage.preflight: hand the module what only the controller knows.

The roles' argument specs live in the collection on the controller, and the host's variables in its
inventory; the module then judges both with the node's own devices.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible.plugins.action import ActionBase

from ansible_collections.p2pdma.storage.plugins.module_utils.provision.preflight import declared_variables

ROLES = Path(__file__).resolve().parents[2] / "roles"


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        # Ansible's own variables cannot be a role's; every other name may be a misspelt one.
        args["variables"] = sorted(name for name in task_vars if not name.startswith(("ansible_", "_")))
        args["declared"] = declared_variables(
            yaml.safe_load(spec.read_text()) for spec in sorted(ROLES.glob("*/meta/argument_specs.yml"))
        )
        result.update(self._execute_module(module_name="p2pdma.storage.preflight", module_args=args,
                                           task_vars=task_vars))
        return result
