"""nvmet configfs trees under a test directory, and a writer that acts like the kernel on mkdir/rmdir.

A plain directory is not configfs: mkdir makes no attribute files and rmdir refuses a
directory that holds files. :class:`KernelLikeWriter` adds only what the kernel itself
does there (drivers/nvme/target/configfs.c, 6.12): on mkdir of a host, port, ANA group,
subsystem or namespace it creates that object's attribute files with the kernel's
defaults and its default groups; on rmdir it removes them again. Writes, links and
unlinks go through unchanged, as the applier does them.
"""

from __future__ import annotations

import errno
import os
import uuid
from typing import Dict, Optional

from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import (
    HOSTS,
    NVMET,
    PORTS,
    SUBSYSTEMS,
    ConfigfsWriter,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot

# Attribute files and the values a fresh object shows (6.12, CONFIG_NVME_TARGET_AUTH and CONFIG_PCI_P2PDMA on;
# checked against Debian's 6.12.117 on a lab node, where the transports later set a port's param_* on enable).
HOST_ATTRS = {"dhchap_key": "", "dhchap_ctrl_key": "", "dhchap_hash": "hmac(sha256)", "dhchap_dhgroup": "null"}
PORT_ATTRS = {
    "addr_adrfam": "", "addr_traddr": "", "addr_treq": "not specified", "addr_trsvcid": "", "addr_trtype": "",
    "addr_tsas": "", "param_inline_data_size": "-1", "param_max_queue_size": "-1", "param_pi_enable": "0",
}
PORT_GROUPS = ("subsystems", "referrals", "ana_groups")
ANA_GROUP_ATTRS = {"ana_state": "optimized"}
SUBSYSTEM_ATTRS = {
    "attr_allow_any_host": "0", "attr_version": "1.3", "attr_serial": "8b3c8f0e6d1a2b4c", "attr_cntlid_min": "1",
    "attr_cntlid_max": "65519", "attr_model": "Linux", "attr_qid_max": "128", "attr_ieee_oui": "0x000000",
    "attr_firmware": "6.12.117", "attr_pi_enable": "0",
}
SUBSYSTEM_GROUPS = ("namespaces", "allowed_hosts")
NAMESPACE_ATTRS = {
    "device_path": "", "device_nguid": "00000000-0000-0000-0000-000000000000",
    "device_uuid": "00000000-0000-0000-0000-000000000000", "ana_grpid": "1", "enable": "0", "buffered_io": "0",
    "revalidate_size": "", "p2pmem": "0",
}


def _kind(path: str) -> Optional[str]:
    """Which nvmet object a node path names, as the kernel's make_group callbacks see it."""
    parent, _, _name = path.rpartition("/")
    if parent == HOSTS:
        return "host"
    if parent == PORTS:
        return "port"
    if parent == SUBSYSTEMS:
        return "subsystem"
    if parent.startswith(PORTS + "/") and parent.endswith("/ana_groups"):
        return "ana_group"
    if parent.startswith(SUBSYSTEMS + "/") and parent.endswith("/namespaces"):
        return "namespace"
    return None


_ATTRS: Dict[str, Dict[str, str]] = {
    "host": HOST_ATTRS, "port": PORT_ATTRS, "ana_group": ANA_GROUP_ATTRS, "subsystem": SUBSYSTEM_ATTRS,
    "namespace": NAMESPACE_ATTRS,
}
_GROUPS = {"port": PORT_GROUPS, "subsystem": SUBSYSTEM_GROUPS}


class KernelLikeWriter(ConfigfsWriter):
    """The applier's writer on a test tree, making and removing what the kernel would."""

    def mkdir(self, path: str) -> None:
        super().mkdir(path)
        kind = _kind(path)
        if kind is None:
            return
        for name, value in _ATTRS[kind].items():
            if kind == "namespace" and name == "device_uuid":
                value = str(uuid.uuid4())  # nvmet_ns_alloc() gives every new namespace a random UUID
            self.root.write_text("%s/%s" % (path, name), value + "\n" if value else "")
        for group in _GROUPS.get(kind, ()):
            os.mkdir(self.root.host_path("%s/%s" % (path, group)))
        if kind == "port":
            self.mkdir(path + "/ana_groups/1")

    def rmdir(self, path: str) -> None:
        kind = _kind(path)
        if kind is not None:
            host = self.root.host_path(path)
            made = set(_ATTRS[kind]) | set(_GROUPS.get(kind, ()))
            # configfs refuses the whole rmdir, touching nothing, when the object holds more than it made.
            if set(os.listdir(host)) - made:
                raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), host)
            for group in _GROUPS.get(kind, ()):
                if set(os.listdir(os.path.join(host, group))) - ({"1"} if group == "ana_groups" else set()):
                    raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), host)
            if kind == "port":
                self._drop_default(path + "/ana_groups/1")
            for group in _GROUPS.get(kind, ()):
                os.rmdir(os.path.join(host, group))
            for name in _ATTRS[kind]:
                os.unlink(os.path.join(host, name))
        super().rmdir(path)

    def _drop_default(self, path: str) -> None:
        host = self.root.host_path(path)
        for name in ANA_GROUP_ATTRS:
            os.unlink(os.path.join(host, name))
        os.rmdir(host)


class ConfigfsTree:
    """An empty nvmet configfs (nvmet loaded) under ``base``, with helpers that make objects as the kernel would."""

    def __init__(self, base: str) -> None:
        self.root = SysRoot(str(base))
        for directory in (NVMET, HOSTS, PORTS, SUBSYSTEMS):
            os.makedirs(self.root.host_path(directory), exist_ok=True)
        self.writer = KernelLikeWriter(self.root)

    def device(self, path: str) -> str:
        """A file standing for a block device node, so that the namespace's device exists."""
        host = self.root.host_path(path)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "w"):
            pass
        return path

    def host(self, nqn: str) -> str:
        path = "%s/%s" % (HOSTS, nqn)
        self.writer.mkdir(path)
        return path

    def port(self, portid: int, **addr: str) -> str:
        path = "%s/%d" % (PORTS, portid)
        self.writer.mkdir(path)
        for key in ("trtype", "adrfam", "traddr", "trsvcid", "treq", "tsas"):
            if key in addr:
                self.writer.write("%s/addr_%s" % (path, key), addr[key])
        if addr.get("trtype") == "tcp" and "tsas" not in addr:
            self.writer.write(path + "/addr_tsas", "none")  # what the kernel sets when trtype becomes tcp
        return path

    def subsystem(self, nqn: str, **attr: str) -> str:
        path = "%s/%s" % (SUBSYSTEMS, nqn)
        self.writer.mkdir(path)
        for key, value in attr.items():
            self.writer.write("%s/attr_%s" % (path, key), value)
        return path

    def namespace(self, nqn: str, nsid: int, device_path: str, enable: bool = True, **attrs: str) -> str:
        path = "%s/%s/namespaces/%d" % (SUBSYSTEMS, nqn, nsid)
        self.writer.mkdir(path)
        self.writer.write(path + "/device_path", self.device(device_path))
        for key, value in attrs.items():
            self.writer.write("%s/%s" % (path, key), value)
        if enable:
            self.writer.write(path + "/enable", "1")
        return path

    def link_port(self, portid: int, nqn: str) -> None:
        self.writer.symlink("%s/%s" % (SUBSYSTEMS, nqn), "%s/%d/subsystems/%s" % (PORTS, portid, nqn))

    def allow_host(self, nqn: str, host: str) -> None:
        self.writer.symlink("%s/%s" % (HOSTS, host), "%s/%s/allowed_hosts/%s" % (SUBSYSTEMS, nqn, host))
