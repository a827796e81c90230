# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of p2pdma.storage.p2p_check: judge in this process when the module would run on the controller.

With a local connection and no become (a fleet's snapshots judged on the controller with
``p2p_check_root``, or the controller itself), the module would only be a new Python process on
this machine that loads the engine from source again: about 0.4 CPU seconds a node, against the
few milliseconds of judging. This action runs the same task code (module_utils/p2p/check_task.py)
with the same argument spec instead. Anywhere else (SSH, become, async) the module runs on the node.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.check_task import ARGUMENT_SPEC, run_check_task

MODULE = "p2pdma.storage.p2p_check"


class ActionModule(ActionBase):
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if not self._judges_here():
            result.update(self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars,
                                               wrap_async=bool(self._task.async_val)))
            return result
        validated = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validated.error_messages:
            result.update(failed=True, msg="; ".join(validated.error_messages))
            return result
        params = validated.validated_parameters
        result["invocation"] = {"module_args": params}
        try:
            outcome = run_check_task(params)
        except P2PError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(outcome.result, changed=False)
        if outcome.warnings:
            result["warnings"] = outcome.warnings
        if outcome.failed:
            result["failed"] = True
        return result

    def _judges_here(self) -> bool:
        """Whether the module would run on this machine, as this user, in the foreground."""
        return self._connection.transport == "local" and not self._play_context.become and not self._task.async_val
