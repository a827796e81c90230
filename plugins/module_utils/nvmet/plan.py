# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired target vs configfs -> the ordered, minimal list of configfs actions.

The kernel's rules (drivers/nvme/target/configfs.c, 6.1 to 6.12) fix the order:

- teardown first, in reverse dependency order: unlink port -> subsystem, remove ports
  (their ANA groups first), disable and remove namespaces, unlink allowed hosts and
  remove subsystems, remove hosts (EBUSY / ENOTEMPTY otherwise);
- then hosts, subsystems (allow_any_host before hosts are linked: EINVAL otherwise),
  namespaces, allowed hosts, ports and their links;
- a port's ``addr_*``/``param_*`` change only while no subsystem is linked (EACCES), so
  its links are dropped and relinked around the writes, and only when something changes;
- a namespace's device_*, p2pmem and buffered_io change only while it is disabled
  (EBUSY / EINVAL): only a namespace whose such value changes is disabled and re-enabled;
- serial, model, version, ieee_oui and firmware are frozen after the first Identify (EINVAL), and we cannot
  tell from configfs whether a host has identified: they change only on a new subsystem;
- ANA group 1 is the port's default group (EPERM on rmdir); others are 2..128.

Every action carries its undo, built from the state read before, so that a failure
half-way can be rolled back (configfs.apply_actions).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Set

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import (
    MKDIR,
    RMDIR,
    SYMLINK,
    UNLINK,
    WRITE,
    Action,
    host_dir,
    namespace_dir,
    port_dir,
    subsystem_dir,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import (
    ABSENT,
    NS_DISABLED_ONLY,
    P2PMEM_KERNEL,
    P2PMEM_NONE,
    SECRET_KEYS,
    AnaGroup,
    Host,
    Namespace,
    Port,
    Subsystem,
    Target,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.validate import validate

# The order the kernel needs: trtype resets tsas, so it goes first.
ADDR_ORDER = ("trtype", "adrfam", "traddr", "trsvcid", "treq", "tsas")
# Identify data the kernel freezes once a host has discovered the subsystem (EINVAL).
FROZEN_SUBSYSTEM_ATTRS = ("serial", "model", "version", "ieee_oui", "firmware")
NS_ATTR_ORDER = ("device_path", "device_uuid", "device_nguid", "ana_grpid", "buffered_io", "p2pmem")


class Plan:
    def __init__(self) -> None:
        self.actions: List[Action] = []
        self.after: Target = Target()
        self.p2pmem: List[dict] = []

    def add(self, action: Action) -> None:
        self.actions.append(action)


def _write(path: str, value: str, why: str, old: Optional[str], empty_clears: bool = False) -> Action:
    """A write whose undo puts ``old`` back; most attributes refuse "", a DH-HMAC-CHAP secret is cleared by it."""
    restorable = old is not None and (old != "" or empty_clears)
    undo = [Action(WRITE, path, "roll back: " + why, value=old, undo=[])] if restorable else []
    return Action(WRITE, path, why, value=value, undo=undo)


def _addr_order(key: str) -> tuple:
    return (ADDR_ORDER.index(key) if key in ADDR_ORDER else len(ADDR_ORDER), key)


def _canonical_uuid(value: str) -> str:
    """How the kernel shows a uuid or nguid (%pUb): lower case, 8-4-4-4-12."""
    digits = re.sub(r"[-:]", "", value).lower()
    return "%s-%s-%s-%s-%s" % (digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:])


def _canonical_version(value: str) -> str:
    parts = value.split(".")
    return ".".join(parts[:2]) if len(parts) == 3 and int(parts[2]) == 0 else value


def _ns_values(ns: Namespace) -> Dict[str, Optional[str]]:
    return {name: ns.value(name) for name in NS_ATTR_ORDER}


class _Planner:
    def __init__(self, desired: Target, current: Target, judge: P2PJudge, purge: bool) -> None:
        self.desired = desired
        self.current = current
        self.judge = judge
        self.purge = purge
        self.plan = Plan()
        self.after = current.copy()
        self.plan.after = self.after
        self.removed_hosts = self._removed([h.nqn for h in current.hosts], desired.hosts, lambda h: h.nqn)
        self.removed_subsystems = self._removed(
            [s.nqn for s in current.subsystems], desired.subsystems, lambda s: s.nqn
        )
        self.removed_ports = self._removed([p.portid for p in current.ports], desired.ports, lambda p: p.portid)

    def _removed(self, existing: list, declared: list, key: Callable[[Any], Any]) -> set:
        names = {key(item) for item in declared}
        gone = {key(item) for item in declared if item.state == ABSENT} & set(existing)
        if self.purge:
            gone |= set(existing) - names
        return gone

    # -- what the links should be --------------------------------------------------------
    def port_links(self, port: Port) -> Set[str]:
        declared = self.desired.port(port.portid)
        links = declared.subsystems if declared is not None and declared.subsystems is not None else port.subsystems
        return set(links or []) - self.removed_subsystems

    def host_links(self, subsystem: Subsystem) -> Set[str]:
        declared = self.desired.subsystem(subsystem.nqn)
        links = subsystem.allowed_hosts
        if declared is not None and declared.allowed_hosts is not None:
            links = declared.allowed_hosts
        return set(links or []) - self.removed_hosts

    def removed_namespaces(self, subsystem: Subsystem) -> List[Namespace]:
        if subsystem.nqn in self.removed_subsystems:
            return list(subsystem.namespaces)
        declared = self.desired.subsystem(subsystem.nqn)
        if declared is None:
            return []
        named = {ns.nsid: ns for ns in declared.namespaces}
        return [
            ns for ns in subsystem.namespaces
            if (ns.nsid in named and named[ns.nsid].state == ABSENT) or (self.purge and ns.nsid not in named)
        ]

    # -- teardown ------------------------------------------------------------------------
    def teardown(self) -> None:
        plan = self.plan
        for port in self.current.ports:
            keep = set() if port.portid in self.removed_ports else self.port_links(port)
            for nqn in sorted(set(port.subsystems or []) - keep):
                plan.add(self._unlink_port(port.portid, nqn, "subsystem %s leaves port %d" % (nqn, port.portid)))
        for port in self.current.ports:
            if port.portid in self.removed_ports:
                for group in port.ana_groups:
                    if group.grpid != 1:
                        plan.add(self._rmdir_ana_group(port.portid, group))
                plan.add(self._rmdir_port(port))
                self.after.ports = [p for p in self.after.ports if p.portid != port.portid]
        for subsystem in self.current.subsystems:
            for ns in self.removed_namespaces(subsystem):
                path = namespace_dir(subsystem.nqn, ns.nsid)
                what = "namespace %d of %s is removed" % (ns.nsid, subsystem.nqn)
                if ns.enable:
                    plan.add(_write(path + "/enable", "0", what, "1"))
                plan.add(self._rmdir_namespace(subsystem.nqn, ns, what))
                after = self.after.subsystem(subsystem.nqn)
                if after is not None:
                    after.namespaces = [n for n in after.namespaces if n.nsid != ns.nsid]
        for subsystem in self.current.subsystems:
            keep = set() if subsystem.nqn in self.removed_subsystems else self.host_links(subsystem)
            for hostnqn in sorted(set(subsystem.allowed_hosts or []) - keep):
                plan.add(Action(
                    UNLINK, "%s/allowed_hosts/%s" % (subsystem_dir(subsystem.nqn), hostnqn),
                    "host %s is no longer allowed on %s" % (hostnqn, subsystem.nqn), target=host_dir(hostnqn),
                ))
            after = self.after.subsystem(subsystem.nqn)
            if after is not None:
                after.allowed_hosts = sorted(set(after.allowed_hosts or []) & keep)
            if subsystem.nqn in self.removed_subsystems:
                plan.add(self._rmdir_subsystem(subsystem))
                self.after.subsystems = [s for s in self.after.subsystems if s.nqn != subsystem.nqn]
        for host in self.current.hosts:
            if host.nqn in self.removed_hosts:
                undo = [Action(MKDIR, host_dir(host.nqn), "roll back: remove host", undo=[])] + [
                    Action(WRITE, "%s/dhchap_%s" % (host_dir(host.nqn), k), "roll back: remove host", value=v, undo=[])
                    for k, v in sorted(host.dhchap.items()) if v
                ]
                plan.add(Action(RMDIR, host_dir(host.nqn), "host %s is removed" % host.nqn, undo=undo))
                self.after.hosts = [h for h in self.after.hosts if h.nqn != host.nqn]

    def _unlink_port(self, portid: int, nqn: str, why: str) -> Action:
        after = self.after.port(portid)
        if after is not None and after.subsystems:
            after.subsystems = [s for s in after.subsystems if s != nqn]
        return Action(UNLINK, "%s/subsystems/%s" % (port_dir(portid), nqn), why, target=subsystem_dir(nqn))

    def _rmdir_ana_group(self, portid: int, group: AnaGroup) -> Action:
        path = "%s/ana_groups/%d" % (port_dir(portid), group.grpid)
        why = "ANA group %d of port %d is removed" % (group.grpid, portid)
        undo = [Action(MKDIR, path, "roll back: " + why, undo=[])]
        if group.ana_state:
            undo.append(Action(WRITE, path + "/ana_state", "roll back: " + why, value=group.ana_state, undo=[]))
        return Action(RMDIR, path, why, undo=undo)

    def _rmdir_port(self, port: Port) -> Action:
        path = port_dir(port.portid)
        why = "port %d is removed" % port.portid
        undo = [Action(MKDIR, path, "roll back: " + why, undo=[])]
        for key in sorted(port.addr, key=_addr_order):
            if port.addr[key]:
                undo.append(Action(WRITE, "%s/addr_%s" % (path, key), "roll back: " + why, value=port.addr[key],
                                   undo=[]))
        for key, value in sorted(port.param.items()):
            if value:
                undo.append(Action(WRITE, "%s/param_%s" % (path, key), "roll back: " + why, value=value, undo=[]))
        group = port.ana_group(1)
        if group is not None and group.ana_state:
            undo.append(Action(WRITE, path + "/ana_groups/1/ana_state", "roll back: " + why, value=group.ana_state,
                               undo=[]))
        return Action(RMDIR, path, why, undo=undo)

    def _rmdir_namespace(self, nqn: str, ns: Namespace, why: str) -> Action:
        path = namespace_dir(nqn, ns.nsid)
        undo = [Action(MKDIR, path, "roll back: " + why, undo=[])]
        for name, value in _ns_values(ns).items():
            if value:
                undo.append(Action(WRITE, "%s/%s" % (path, name), "roll back: " + why, value=value, undo=[]))
        return Action(RMDIR, path, why, undo=undo)

    def _rmdir_subsystem(self, subsystem: Subsystem) -> Action:
        path = subsystem_dir(subsystem.nqn)
        why = "subsystem %s is removed" % subsystem.nqn
        undo = [Action(MKDIR, path, "roll back: " + why, undo=[])]
        # allow_any_host first: the rest of the undo relinks hosts only if it is 0.
        for key in sorted(subsystem.attr, key=lambda k: (k != "allow_any_host", k)):
            value = subsystem.attr[key]
            if value:
                undo.append(Action(WRITE, "%s/attr_%s" % (path, key), "roll back: " + why, value=value, undo=[]))
        return Action(RMDIR, path, why, undo=undo)

    # -- creation and updates --------------------------------------------------------------
    def build(self) -> None:
        for host in self.desired.hosts:
            if host.state != ABSENT:
                self._host(host)
        for subsystem in self.desired.subsystems:
            if subsystem.state != ABSENT:
                self._subsystem(subsystem)
        for subsystem in self.desired.subsystems:
            if subsystem.state != ABSENT:
                self._namespaces(subsystem)
        for subsystem in self.after.subsystems:
            self._allowed_hosts(subsystem)
        for port in self.desired.ports:
            if port.state != ABSENT:
                self._port(port)

    def _host(self, host: Host) -> None:
        plan, path = self.plan, host_dir(host.nqn)
        current = self.after.host(host.nqn)
        if current is None:
            plan.add(Action(MKDIR, path, "host %s is added" % host.nqn))
            current = Host(nqn=host.nqn)
            self.after.hosts.append(current)
        for key, value in sorted(host.dhchap.items()):
            if value is not None and current.dhchap.get(key) != value:
                plan.add(_write("%s/dhchap_%s" % (path, key), value, "host %s dhchap %s" % (host.nqn, key),
                                current.dhchap.get(key), empty_clears=key in SECRET_KEYS))
                current.dhchap[key] = value

    def _subsystem(self, subsystem: Subsystem) -> None:
        plan, path = self.plan, subsystem_dir(subsystem.nqn)
        current = self.after.subsystem(subsystem.nqn)
        new = current is None
        if current is None:
            plan.add(Action(MKDIR, path, "subsystem %s is added" % subsystem.nqn))
            current = Subsystem(nqn=subsystem.nqn, allowed_hosts=[])
            self.after.subsystems.append(current)
        wanted = dict(subsystem.attr)
        if "version" in wanted and wanted["version"]:
            wanted["version"] = _canonical_version(wanted["version"])
        final_any = wanted.get("allow_any_host", current.attr.get("allow_any_host"))
        if final_any == "1" and self.host_links(current):
            raise P2PError(
                "subsystem %s: allow_any_host=1 while hosts stay linked in allowed_hosts (the kernel answers EINVAL)"
                % subsystem.nqn,
                fix="declare allowed_hosts: [] together with allow_any_host, or drop allow_any_host",
            )
        for key in sorted(wanted, key=lambda k: (k != "allow_any_host", k)):
            value = wanted[key]
            old = current.attr.get(key)
            if value is None or old == value:
                continue
            if key in FROZEN_SUBSYSTEM_ATTRS and not new:
                raise P2PError(
                    "subsystem %s: %s is %r and cannot become %r: the kernel freezes the Identify values (%s) once "
                    "a host has identified the subsystem (EINVAL)"
                    % (subsystem.nqn, key, old, value, ", ".join(FROZEN_SUBSYSTEM_ATTRS)),
                    fix="keep %s: %s, or remove the subsystem (state: absent) and create it again" % (key, old),
                )
            plan.add(_write("%s/attr_%s" % (path, key), value, "subsystem %s %s" % (subsystem.nqn, key),
                            None if new else old))
            current.attr[key] = value

    def _namespaces(self, subsystem: Subsystem) -> None:
        after = self.after.subsystem(subsystem.nqn)
        assert after is not None
        for ns in subsystem.namespaces:
            if ns.state != ABSENT:
                self._namespace(after, ns)

    def _desired_ns_values(self, what: str, ns: Namespace) -> Dict[str, Optional[str]]:
        values = _ns_values(ns)
        for key in ("device_uuid", "device_nguid"):
            if values[key]:
                values[key] = _canonical_uuid(values[key] or "")
        if ns.p2pmem is not None:
            values["p2pmem"] = self.judge.kernel_value(what, ns.p2pmem)
        return values

    def _namespace(self, after: Subsystem, ns: Namespace) -> None:
        plan = self.plan
        what = "subsystem %s namespace %d" % (after.nqn, ns.nsid)
        path = namespace_dir(after.nqn, ns.nsid)
        wanted = self._desired_ns_values(what, ns)
        current = after.namespace(ns.nsid)
        new = current is None
        if current is None:
            plan.add(Action(MKDIR, path, "%s is added" % what))
            current = Namespace(nsid=ns.nsid, enable=False)
            after.namespaces.append(current)
        if wanted["p2pmem"] is not None and not self._has_p2pmem_attr(after, current, new):
            if wanted["p2pmem"] != P2PMEM_KERNEL[P2PMEM_NONE]:
                raise P2PError(
                    "%s: p2pmem %s needs a kernel with CONFIG_PCI_P2PDMA; this kernel gives namespaces no p2pmem "
                    "attribute" % (what, ns.p2pmem),
                    fix="boot a P2PDMA kernel (the collection's kernel_build and kernel_boot), or set p2pmem: none",
                )
            # Without the attribute every buffer comes from system memory, which is what none asks for.
            wanted["p2pmem"] = None
        old = _ns_values(current)
        changed = [k for k in NS_ATTR_ORDER if wanted[k] is not None and wanted[k] != old[k]]
        needs_disable = bool(current.enable) and any(k in NS_DISABLED_ONLY for k in changed)
        enable = bool(ns.enable)
        if enable and (new or needs_disable or not current.enable):
            self._check_enable(what, ns, wanted)
        if needs_disable:
            plan.add(_write(path + "/enable", "0", "%s: %s change only while it is disabled"
                            % (what, ", ".join(k for k in changed if k in NS_DISABLED_ONLY)), "1"))
            current.enable = False
        for key in changed:
            plan.add(_write("%s/%s" % (path, key), wanted[key] or "", "%s %s" % (what, key),
                            None if new else old[key]))
        _set_ns_values(current, {k: wanted[k] for k in changed})
        if enable != bool(current.enable):
            plan.add(_write(path + "/enable", "1" if enable else "0", "%s is %s" % (
                what, "enabled" if enable else "disabled"), "0" if enable else "1"))
            current.enable = enable

    def _has_p2pmem_attr(self, subsystem: Subsystem, current: Namespace, new: bool) -> bool:
        """configfs shows p2pmem on every namespace, or on none (CONFIG_PCI_P2PDMA): ask one that exists."""
        if not new:
            return current.p2pmem is not None
        existing = [n for s in self.current.subsystems for n in s.namespaces]
        if existing:
            return existing[0].p2pmem is not None
        return self.judge.kernel_has_p2pdma()

    def _check_enable(self, what: str, ns: Namespace, wanted: Dict[str, Optional[str]]) -> None:
        device = wanted["device_path"] or ""
        if not self.judge.root.exists(device):
            raise P2PError(
                "%s: device %s does not exist, enable would fail ('failed to open block device', ENOENT)"
                % (what, device),
                fix="create the device first (or correct the path), or declare the namespace with enable: false",
            )
        p2pmem = wanted["p2pmem"]
        if p2pmem is not None and p2pmem != P2PMEM_KERNEL[P2PMEM_NONE]:
            self.plan.p2pmem.append(self.judge.judge(what, device, p2pmem))

    def _allowed_hosts(self, subsystem: Subsystem) -> None:
        links = self.host_links(subsystem)
        for host in sorted(links - set(subsystem.allowed_hosts or [])):
            self.plan.add(Action(
                SYMLINK, "%s/allowed_hosts/%s" % (subsystem_dir(subsystem.nqn), host),
                "host %s is allowed on %s" % (host, subsystem.nqn), target=host_dir(host),
            ))
        subsystem.allowed_hosts = sorted(links)

    def _port(self, port: Port) -> None:
        plan, path = self.plan, port_dir(port.portid)
        current = self.after.port(port.portid)
        new = current is None
        if current is None:
            plan.add(Action(MKDIR, path, "port %d is added" % port.portid))
            current = Port(portid=port.portid, subsystems=[], ana_groups=[AnaGroup(grpid=1)])
            self.after.ports.append(current)
        writes = [("addr_" + k, v, current.addr.get(k)) for k, v in sorted(port.addr.items(), key=lambda i:
                  _addr_order(i[0])) if v is not None and v != current.addr.get(k)]
        writes += [("param_" + k, v, current.param.get(k)) for k, v in sorted(port.param.items())
                   if v is not None and v != current.param.get(k)]
        linked = sorted(current.subsystems or [])
        if writes and linked:
            # The port is enabled while a subsystem is linked; its address is frozen then (EACCES).
            for nqn in linked:
                plan.add(self._unlink_port(port.portid, nqn, "port %d: unlinked while its address changes"
                                           % port.portid))
        for name, value, old in writes:
            if value == "" and old in (None, ""):
                continue
            plan.add(_write("%s/%s" % (path, name), value or "", "port %d %s" % (port.portid, name),
                            None if new else old))
            if name.startswith("addr_"):
                current.addr[name[5:]] = value
            else:
                current.param[name[6:]] = value
        if writes and linked:
            for nqn in linked:
                plan.add(Action(SYMLINK, "%s/subsystems/%s" % (path, nqn), "port %d: relinked after its address "
                                "changed" % port.portid, target=subsystem_dir(nqn)))
            current.subsystems = list(linked)
        self._ana_groups(port, current)
        for nqn in sorted(self.port_links(current) - set(current.subsystems or [])):
            plan.add(Action(SYMLINK, "%s/subsystems/%s" % (path, nqn), "subsystem %s is offered on port %d"
                            % (nqn, port.portid), target=subsystem_dir(nqn)))
            current.subsystems = sorted(set(current.subsystems or []) | {nqn})

    def _ana_groups(self, port: Port, current: Port) -> None:
        plan = self.plan
        declared = {g.grpid: g for g in port.ana_groups}
        for group in list(current.ana_groups):
            wanted = declared.get(group.grpid)
            if group.grpid != 1 and ((wanted is not None and wanted.state == ABSENT) or
                                     (self.purge and wanted is None)):
                plan.add(self._rmdir_ana_group(port.portid, group))
                current.ana_groups.remove(group)
        for grpid, wanted in sorted(declared.items()):
            if wanted.state == ABSENT:
                continue
            path = "%s/ana_groups/%d" % (port_dir(port.portid), grpid)
            found = current.ana_group(grpid)
            if found is None:
                plan.add(Action(MKDIR, path, "ANA group %d is added to port %d" % (grpid, port.portid)))
                found = AnaGroup(grpid=grpid)
                current.ana_groups.append(found)
            group = found
            if wanted.ana_state is not None and wanted.ana_state != group.ana_state:
                plan.add(_write(path + "/ana_state", wanted.ana_state, "port %d ANA group %d state"
                                % (port.portid, grpid), group.ana_state))
                group.ana_state = wanted.ana_state


def _set_ns_values(ns: Namespace, values: Dict[str, Optional[str]]) -> None:
    for key, value in values.items():
        if key.startswith("device_"):
            ns.device[key[len("device_"):]] = value
        elif key == "ana_grpid":
            ns.ana_grpid = int(value) if value else None
        elif key == "buffered_io":
            ns.buffered_io = value == "1"
        else:
            ns.p2pmem = value


def plan_target(desired: Target, current: Target, judge: P2PJudge, purge: bool = False) -> Plan:
    """Validate ``desired``, judge its p2pmem, and order the actions that make configfs match it.

    Raises P2PError before any action is returned when anything would be refused.
    """
    validate(desired, current)
    planner = _Planner(desired, current, judge, purge)
    planner.teardown()
    planner.build()
    return planner.plan


__all__ = ["Plan", "plan_target"]
