# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception family of the project.

Every domain error names the thing, the reason and the fix. Ansible modules turn
it into ``fail_json(msg=str(err))``; the CLI turns it into a one-line error and a
non-zero exit. Nothing above these two boundaries prints tracebacks.
"""

from __future__ import annotations

from typing import Optional


class P2PError(Exception):
    """An error a user can act on: ``str(err)`` is the whole message, fix included."""

    def __init__(self, message: str, fix: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return "%s; fix: %s" % (self.message, self.fix)
        return self.message
