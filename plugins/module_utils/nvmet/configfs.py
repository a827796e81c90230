# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nvmet's configfs: read it into a :class:`Target`, and apply planned actions with rollback.

The layout (drivers/nvme/target/configfs.c, 6.1 to 6.12)::

    /sys/kernel/config/nvmet/hosts/<hostnqn>/dhchap_{key,ctrl_key,hash,dhgroup}
    /sys/kernel/config/nvmet/ports/<portid>/addr_*, param_*, subsystems/<nqn> -> subsystem,
                                             ana_groups/<grpid>/ana_state (group 1 always there)
    /sys/kernel/config/nvmet/subsystems/<nqn>/attr_*, allowed_hosts/<hostnqn> -> host,
                                             namespaces/<nsid>/device_*, enable, ana_grpid,
                                             buffered_io, p2pmem (only with CONFIG_PCI_P2PDMA)

mkdir creates an object with its attribute files and default groups; the applier only
makes the directories, writes attributes, links and unlinks, as nvmetcli does.
"""

from __future__ import annotations

import errno
import os
from typing import List, Optional

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import (
    SECRET_KEYS,
    SECRET_MASK,
    AnaGroup,
    Host,
    Namespace,
    Port,
    Subsystem,
    Target,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot

NVMET = "/sys/kernel/config/nvmet"
HOSTS = NVMET + "/hosts"
PORTS = NVMET + "/ports"
SUBSYSTEMS = NVMET + "/subsystems"

HOST_DHCHAP = ("key", "ctrl_key", "hash", "dhgroup")
NS_DEVICE = ("path", "uuid", "nguid")


def host_dir(nqn: str) -> str:
    return "%s/%s" % (HOSTS, nqn)


def port_dir(portid: int) -> str:
    return "%s/%d" % (PORTS, portid)


def subsystem_dir(nqn: str) -> str:
    return "%s/%s" % (SUBSYSTEMS, nqn)


def namespace_dir(nqn: str, nsid: int) -> str:
    return "%s/namespaces/%d" % (subsystem_dir(nqn), nsid)


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def is_loaded(root: SysRoot) -> bool:
    """nvmet's configfs directory exists only while the nvmet module is loaded."""
    return root.is_dir(NVMET)


def read_target(root: SysRoot) -> Target:
    """What configfs holds now, as nvmetcli's dump() would see it (plus p2pmem and buffered_io)."""
    target = Target()
    for nqn in root.listdir(HOSTS):
        path = host_dir(nqn)
        target.hosts.append(Host(nqn=nqn, dhchap={k: _attr(root, path, "dhchap_" + k) for k in HOST_DHCHAP}))
    for name in root.listdir(PORTS):
        if not name.isdigit():
            continue
        path = port_dir(int(name))
        entries = root.listdir(path)
        groups = [
            AnaGroup(grpid=int(g), ana_state=_attr(root, "%s/ana_groups/%s" % (path, g), "ana_state"))
            for g in root.listdir(path + "/ana_groups")
            if g.isdigit()
        ]
        target.ports.append(
            Port(
                portid=int(name),
                addr={e[5:]: _attr(root, path, e) for e in entries if e.startswith("addr_")},
                param={e[6:]: _attr(root, path, e) for e in entries if e.startswith("param_")},
                subsystems=root.listdir(path + "/subsystems"),
                ana_groups=groups,
            )
        )
    for nqn in root.listdir(SUBSYSTEMS):
        path = subsystem_dir(nqn)
        subsystem = Subsystem(
            nqn=nqn,
            attr={e[5:]: _attr(root, path, e) for e in root.listdir(path) if e.startswith("attr_")},
            allowed_hosts=root.listdir(path + "/allowed_hosts"),
        )
        for name in root.listdir(path + "/namespaces"):
            if name.isdigit():
                subsystem.namespaces.append(_read_namespace(root, nqn, int(name)))
        target.subsystems.append(subsystem)
    return target


def _read_namespace(root: SysRoot, nqn: str, nsid: int) -> Namespace:
    path = namespace_dir(nqn, nsid)
    grpid = _attr(root, path, "ana_grpid")
    buffered = _attr(root, path, "buffered_io")
    return Namespace(
        nsid=nsid,
        device={k: _attr(root, path, "device_" + k) for k in NS_DEVICE},
        enable=_attr(root, path, "enable") == "1",
        ana_grpid=int(grpid) if grpid and grpid.isdigit() else None,
        buffered_io=None if buffered is None else buffered == "1",
        p2pmem=_attr(root, path, "p2pmem"),
    )


def _attr(root: SysRoot, directory: str, name: str) -> Optional[str]:
    text = root.read_text("%s/%s" % (directory, name))
    return None if text is None else text.strip()


# --------------------------------------------------------------------------------------
# Actions and applying them
# --------------------------------------------------------------------------------------
MKDIR, RMDIR, WRITE, SYMLINK, UNLINK = "mkdir", "rmdir", "write", "symlink", "unlink"


class Action:
    """One configfs change, with the changes that undo it (from the state read before)."""

    def __init__(
        self,
        op: str,
        path: str,
        why: str,
        value: Optional[str] = None,
        target: Optional[str] = None,
        undo: Optional[List[Action]] = None,
    ) -> None:
        self.op = op
        self.path = path
        self.why = why
        self.value = value
        self.target = target
        self.undo: List[Action] = undo if undo is not None else self._inverse()

    def _inverse(self) -> List[Action]:
        if self.op == MKDIR:
            return [Action(RMDIR, self.path, "roll back: " + self.why, undo=[])]
        if self.op == SYMLINK:
            return [Action(UNLINK, self.path, "roll back: " + self.why, undo=[])]
        if self.op == UNLINK and self.target is not None:
            return [Action(SYMLINK, self.path, "roll back: " + self.why, target=self.target, undo=[])]
        # A write's and an rmdir's inverse need the value and attributes read before: the planner gives them.
        return []

    def to_dict(self) -> dict:
        out = {"op": self.op, "path": self.path, "why": self.why}
        if self.value is not None:
            secret = any(self.path.endswith("/dhchap_" + key) for key in SECRET_KEYS)
            out["value"] = SECRET_MASK if secret and self.value else self.value
        if self.target is not None:
            out["target"] = self.target
        return out

    def __repr__(self) -> str:
        extra = " %r" % self.value if self.value is not None else (" -> %s" % self.target if self.target else "")
        return "%s %s%s" % (self.op, self.path, extra)


class ConfigfsWriter:
    """The five operations the applier needs, on the node's configfs through SysRoot."""

    def __init__(self, root: SysRoot) -> None:
        self.root = root

    def mkdir(self, path: str) -> None:
        self.root.mkdir(path)

    def rmdir(self, path: str) -> None:
        self.root.rmdir(path)

    def write(self, path: str, value: str) -> None:
        self.root.write_text(path, value)

    def symlink(self, target: str, path: str) -> None:
        self.root.symlink(target, path)

    def unlink(self, path: str) -> None:
        self.root.unlink(path)


def _perform(writer: ConfigfsWriter, action: Action) -> None:
    if action.op == MKDIR:
        writer.mkdir(action.path)
    elif action.op == RMDIR:
        writer.rmdir(action.path)
    elif action.op == WRITE:
        writer.write(action.path, action.value or "")
    elif action.op == SYMLINK:
        writer.symlink(action.target or "", action.path)
    elif action.op == UNLINK:
        writer.unlink(action.path)
    else:
        raise ValueError("unknown configfs operation %r" % action.op)


# What the kernel means by each errno on an nvmet attribute or directory.
_ERRNO_MEANING = {
    errno.EBUSY: "the object is in use (an enabled namespace, or a directory that still holds links)",
    errno.EACCES: "the port is enabled (a subsystem is linked): its addr_/param_ attributes are frozen",
    errno.EINVAL: "the kernel refused the value (see the kernel log: dmesg | grep nvmet)",
    errno.ENODEV: "no such device, or it has no peer-to-peer memory",
    errno.ENOENT: "a parent directory or the named file does not exist",
    errno.EEXIST: "it exists already",
    errno.ENOTEMPTY: "the directory still holds objects",
    errno.EPERM: "the kernel does not allow removing it (a default group)",
}


def _describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error %s" % exc.errno)
    meaning = _ERRNO_MEANING.get(exc.errno or 0, exc.strerror or "")
    return "%s: %s" % (name, meaning)


def apply_actions(writer: ConfigfsWriter, actions: List[Action]) -> List[Action]:
    """Perform ``actions`` in order; on a failure undo the ones done, in reverse, then raise.

    Returns the actions performed. The P2PError names the failed action, the kernel's
    errno and, when the rollback itself failed, what is left to fix by hand.
    """
    done: List[Action] = []
    for action in actions:
        try:
            _perform(writer, action)
        except OSError as exc:
            leftovers = _roll_back(writer, done)
            message = "nvmet: %s %s failed (%s) while %s" % (action.op, action.path, _describe(exc), action.why)
            if leftovers:
                raise P2PError(
                    message + "; the rollback failed too: %s" % "; ".join(leftovers),
                    fix="compare configfs with the diff's 'before' dump and repair these objects by hand",
                ) from exc
            raise P2PError(
                message + "; the %d change(s) already made were undone, configfs is as before" % len(done),
                fix="correct the declaration (or the node) and run again",
            ) from exc
        done.append(action)
    return done


def _roll_back(writer: ConfigfsWriter, done: List[Action]) -> List[str]:
    failures = []
    for action in reversed(done):
        for undo in action.undo:
            try:
                _perform(writer, undo)
            except OSError as exc:
                failures.append("%s %s (%s)" % (undo.op, undo.path, os.strerror(exc.errno or 0)))
    return failures


__all__ = [
    "Action",
    "ConfigfsWriter",
    "HOSTS",
    "MKDIR",
    "NVMET",
    "PORTS",
    "RMDIR",
    "SUBSYSTEMS",
    "SYMLINK",
    "UNLINK",
    "WRITE",
    "apply_actions",
    "host_dir",
    "is_loaded",
    "namespace_dir",
    "port_dir",
    "read_target",
    "subsystem_dir",
]
