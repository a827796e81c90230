#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvmet
short_description: Declare an NVMe-oF target (hosts, ports, subsystems, namespaces with p2pmem) in configfs
version_added: "0.1.0"
description:
  - Makes nvmet's configfs (C(/sys/kernel/config/nvmet)) match a declaration written in nvmetcli's JSON schema
    (C(hosts), C(ports), C(subsystems) with their C(attr), C(addr), C(param) and C(device) groups), so that the output
    of C(nvmetcli save) can be pasted. Namespaces add C(p2pmem) and C(buffered_io), hosts their DH-HMAC-CHAP
    C(dhchap) values, which nvmetcli does not save.
  - The module reads configfs, plans the changes in the order the kernel needs, and applies them. Changes are
    minimal, with no clear-and-rebuild. A port's address is written while its subsystems are briefly unlinked, and
    only when it changes. A namespace is disabled only when its device, p2pmem or buffered_io changes.
  - Before any change the declaration is validated (NQN format and length, port ids, addresses, service ids, device
    paths, nsids, duplicates). Every namespace that will be enabled with p2pmem is judged the way the kernel will judge
    it. The provider must publish p2pmem and the kernel's P2PDMA rules must accept the path from it to the
    namespace's controller. The namespace must be a whole namespace of a PCIe NVMe controller, not a partition,
    device-mapper, MD, loop, fabrics or multipath device. For C(auto) the module reports which provider the kernel
    will take. A refusal changes nothing.
  - When an action fails half-way, the actions already done are undone in reverse, so configfs is left as before.
  - Objects that are not declared are left alone unless I(purge=true).
author:
  - p2pdma.storage maintainers (@p2pdma)
options:
  hosts:
    description:
      - Hosts (initiators) known to the target, by host NQN.
    type: list
    elements: dict
    default: []
    suboptions:
      nqn:
        description: The host NQN (C(nqn.yyyy-mm.reverse-domain:name) or the UUID form), at most 223 bytes.
        type: str
        required: true
      dhchap:
        description:
          - DH-HMAC-CHAP settings (needs a kernel with C(CONFIG_NVME_TARGET_AUTH)).
          - Keep the secrets in Ansible Vault; they are masked in the diff and in C(actions).
        type: dict
        suboptions:
          key:
            description: The host's secret, as C(nvme gen-dhchap-key) prints it (C(DHHC-1:0N:<base64>:)).
            type: str
          ctrl_key:
            description: The controller's secret for bidirectional authentication.
            type: str
          hash:
            description: The HMAC hash.
            type: str
            choices: [hmac(sha256), hmac(sha384), hmac(sha512)]
          dhgroup:
            description: The Diffie-Hellman group.
            type: str
            choices: ["null", ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192]
      state:
        description: C(absent) removes the host, after unlinking it from every subsystem.
        type: str
        choices: [present, absent]
  ports:
    description:
      - Ports the target listens on, by port id.
    type: list
    elements: dict
    default: []
    suboptions:
      portid:
        description: The port id, 0..65535 (the configfs directory name).
        type: int
        required: true
      addr:
        description: The port's address (configfs C(addr_*) attributes).
        type: dict
        default: {}
        suboptions:
          trtype:
            description: The transport. Only C(rdma) on a PCI RDMA device ever uses p2pmem.
            type: str
            choices: [rdma, tcp, loop, fc]
          adrfam:
            description:
              - The address family; it must suit I(trtype).
              - An empty value, as nvmetcli saves a loop port's, leaves it unset.
            type: str
            choices: [ipv4, ipv6, ib, fc, loop, ""]
          traddr:
            description: The address to listen on (an IP address of the I(adrfam) for tcp and rdma).
            type: str
          trsvcid:
            description: The service id; for tcp and rdma the port number, 1..65535 (4420 by convention).
            type: str
          treq:
            description: Whether a secure channel is required.
            type: str
            choices: [not specified, required, not required]
          tsas:
            description: Transport specific settings; C(tls1.3) turns on TLS for tcp (kernel 6.12 and later).
            type: str
      param:
        description: The port's C(param_*) attributes.
        type: dict
        default: {}
        suboptions:
          inline_data_size:
            description: Inline data size in bytes (C(-1) is the transport's default).
            type: str
          max_queue_size:
            description: The largest queue size offered (C(-1) is the transport's default).
            type: str
          pi_enable:
            description: Protection information (C(0) or C(1)).
            type: str
      subsystems:
        description:
          - NQNs of the subsystems offered on this port; exactly these are linked.
          - When omitted, the links are left as they are.
        type: list
        elements: str
      referrals:
        description: Discovery referrals; not managed yet, so only an empty list is accepted (nvmetcli writes one).
        type: list
        elements: dict
        default: []
      ana_groups:
        description:
          - ANA groups of the port. Group 1 always exists; groups 2..128 are created.
        type: list
        elements: dict
        default: []
        suboptions:
          grpid:
            description: The group id, 1..128.
            type: int
            required: true
          ana:
            description: The group's ANA settings.
            type: dict
            suboptions:
              state:
                description: The ANA state the port reports for this group.
                type: str
                choices: [optimized, non-optimized, inaccessible, persistent-loss, change]
          state:
            description: C(absent) removes the group (never group 1).
            type: str
            choices: [present, absent]
            default: present
      state:
        description: C(absent) removes the port, after unlinking its subsystems.
        type: str
        choices: [present, absent]
  subsystems:
    description:
      - NVMe subsystems by NQN, with their allowed hosts and namespaces.
    type: list
    elements: dict
    default: []
    suboptions:
      nqn:
        description: The subsystem NQN, at most 223 bytes; not the discovery NQN.
        type: str
        required: true
      attr:
        description:
          - The subsystem's C(attr_*) attributes.
          - I(serial), I(model), I(version), I(ieee_oui) and I(firmware) are frozen once a host has identified the
            subsystem, so they are only written when the subsystem is created; a change on an existing subsystem is
            refused.
        type: dict
        default: {}
        suboptions:
          allow_any_host:
            description:
              - Let any host connect. It excludes I(allowed_hosts).
              - Off unless asked for; prefer host NQN allow-lists. Asking for it on a subsystem offered on a port
                other hosts can reach (not loop, not a loopback address) gives a warning naming the port.
            type: bool
          serial:
            description: The serial number, 1..20 printable ASCII characters.
            type: str
          model:
            description: The model number, 1..40 printable ASCII characters.
            type: str
          version:
            description: The NVMe version reported, C(major.minor[.tertiary]).
            type: str
          cntlid_min:
            description: The lowest controller id.
            type: str
          cntlid_max:
            description: The highest controller id.
            type: str
          ieee_oui:
            description: The IEEE OUI reported in Identify.
            type: str
          firmware:
            description: The firmware revision reported in Identify.
            type: str
          pi_enable:
            description: Protection information (C(0) or C(1)).
            type: str
          qid_max:
            description: The largest I/O queue id.
            type: str
      allowed_hosts:
        description:
          - Host NQNs allowed to connect; exactly these are linked. Each must be a host on the target.
          - When omitted, the links are left as they are.
        type: list
        elements: str
      namespaces:
        description: The subsystem's namespaces by nsid.
        type: list
        elements: dict
        default: []
        suboptions:
          nsid:
            description: The namespace id, 1..4294967294, unique in the subsystem.
            type: int
            required: true
          enable:
            description: Whether the namespace is enabled.
            type: bool
            default: true
          device:
            description: The backing device.
            type: dict
            default: {}
            suboptions:
              path:
                description:
                  - Absolute path of the block device or file; no C(..).
                  - Stable names such as C(/dev/disk/by-path/pci-0000:05:00.0-nvme-1) are followed to the disk.
                  - Use a stable name. C(/dev/nvme1n1), C(/dev/sdb) and the like are handed out in probe order, so
                    they can name another disk after a reboot, when the saved configuration is restored; they give
                    a warning.
                type: str
              uuid:
                description: The namespace UUID.
                type: str
              nguid:
                description: The namespace NGUID, 16 bytes of hex.
                type: str
          ana_grpid:
            description: The ANA group of the namespace, 1..128. It can change while the namespace is enabled.
            type: int
          buffered_io:
            description: Use the page cache for a file-backed namespace (changes only while disabled).
            type: bool
          p2pmem:
            description:
              - The peer-to-peer memory for the namespace's data buffers (changes only while disabled).
              - C(auto) lets the kernel take the nearest published provider (written as C(1)).
              - C(none) uses system memory (written as C(0)).
              - A PCI address (C(0000:03:00.0)) or an NVMe controller name (C(nvme0), written as its address) names
                the provider. Controller names follow probe order and can change at a reboot, so a name gives a
                warning; prefer the address.
              - Only nvmet-rdma on a PCI RDMA device uses it; tcp, loop and fc serve from system memory.
            type: str
          state:
            description: C(absent) disables and removes the namespace.
            type: str
            choices: [present, absent]
            default: present
      state:
        description: C(absent) removes the subsystem with its namespaces, after unlinking it from every port.
        type: str
        choices: [present, absent]
  state:
    description:
      - The default state of the declared hosts, ports and subsystems.
      - C(absent) tears the declared objects down in reverse order.
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - Remove what is not declared. These are hosts, ports and subsystems, the namespaces of declared subsystems
        and the ANA groups of declared ports.
    type: bool
    default: false
  root:
    description:
      - The tree to act on, laid out like C(/). Use C(/) on a live node, or a directory holding a copy of a node's
        C(/sys) and C(/dev).
      - configfs is read and written at C(<root>/sys/kernel/config/nvmet), and p2pmem is judged from C(<root>/sys).
    type: path
    default: /
  modprobe:
    description:
      - Load nvmet and the transport modules the declared ports need (C(nvmet-tcp), C(nvmet-rdma), C(nvme-loop),
        C(nvmet-fc)) with C(modprobe -a) before reading configfs. Not in check mode.
      - A module built into the kernel has nothing to load; modprobe's complaint about it is ignored as long as nvmet's
        configfs directory exists. The kernel itself also asks for a port's transport module when the port is
        enabled, and answers EINVAL if it has none.
    type: bool
    default: false
  save:
    description:
      - After the run, save the whole target as configfs holds it to this file (in check mode, the planned target),
        in nvmetcli's JSON schema with C(p2pmem), C(buffered_io) and the hosts' C(dhchap) values.
      - The file is replaced atomically and only when its content changes, with mode 0600 because it holds the
        DH-HMAC-CHAP secrets. Its directory must exist.
      - The nvmet role saves to C(/etc/nvmet/config.json), which its boot-time restore and C(nvmetcli restore) read.
    type: path
attributes:
  check_mode:
    support: full
    description: In check mode the module plans and judges everything, and returns the actions and the diff it would
      apply, without writing.
  diff_mode:
    support: full
    description: The diff shows the target before and after, in nvmetcli's JSON schema, with secrets masked.
notes:
  - Run with C(become=true). The nvmet module and the transports the ports use (nvmet-tcp, nvmet-rdma, nvme-loop) must
    be loaded.
  - The configuration does not survive a reboot by itself; the collection's nvmet role saves and restores it.
"""

EXAMPLES = r"""
- name: A namespace on a drive behind the switch, served over RDMA with the nearest CMB as p2pmem
  p2pdma.storage.nvmet:
    hosts:
      - nqn: nqn.2026-01.com.example:client1
    subsystems:
      - nqn: nqn.2026-01.com.example:store1
        attr:
          serial: p2p0001
        allowed_hosts: [nqn.2026-01.com.example:client1]
        namespaces:
          - nsid: 1
            device:
              path: /dev/disk/by-path/pci-0000:05:00.0-nvme-1
            p2pmem: auto
          - nsid: 2
            device:
              path: /dev/disk/by-id/nvme-Example_SSD_S5XYNA0R123456-1
            p2pmem: "0000:03:00.0"
    ports:
      - portid: 1
        addr:
          trtype: rdma
          adrfam: ipv4
          traddr: 192.0.2.10
          trsvcid: "4420"
        subsystems: [nqn.2026-01.com.example:store1]
  become: true
  register: target

- name: Show which provider p2pmem auto will take
  ansible.builtin.debug:
    var: target.p2pmem

- name: A TCP port with DH-HMAC-CHAP for one host
  p2pdma.storage.nvmet:
    hosts:
      - nqn: nqn.2026-01.com.example:client2
        dhchap:
          key: "{{ vault_client2_dhchap_key }}"
          hash: hmac(sha256)
          dhgroup: ffdhe2048
    subsystems:
      - nqn: nqn.2026-01.com.example:store2
        allowed_hosts: [nqn.2026-01.com.example:client2]
        namespaces:
          - nsid: 1
            device:
              path: /dev/disk/by-path/pci-0000:07:00.0-nvme-1
    ports:
      - portid: 2
        addr: {trtype: tcp, adrfam: ipv4, traddr: 192.0.2.10, trsvcid: "4420"}
        subsystems: [nqn.2026-01.com.example:store2]
  become: true

- name: Remove one namespace, leaving the rest of the subsystem serving
  p2pdma.storage.nvmet:
    subsystems:
      - nqn: nqn.2026-01.com.example:store1
        namespaces:
          - nsid: 2
            state: absent
  become: true

- name: Make configfs hold exactly what nvmetcli saved, removing anything else
  p2pdma.storage.nvmet:
    hosts: "{{ (lookup('file', '/etc/nvmet/config.json') | from_json).hosts }}"
    ports: "{{ (lookup('file', '/etc/nvmet/config.json') | from_json).ports }}"
    subsystems: "{{ (lookup('file', '/etc/nvmet/config.json') | from_json).subsystems }}"
    purge: true
  become: true
"""

RETURN = r"""
actions:
  description:
    - The configfs changes in the order they were made (or would be, in check mode). Empty when nothing changes.
    - Each has C(op) (mkdir, rmdir, write, symlink, unlink), C(path), C(why), and C(value) for a write or C(target)
      for a link. Secrets are masked.
  returned: always
  type: list
  elements: dict
  sample:
    - op: write
      path: /sys/kernel/config/nvmet/subsystems/nqn.2026-01.com.example:store1/namespaces/1/enable
      value: "0"
      why: "subsystem nqn.2026-01.com.example:store1 namespace 1: device_path change only while it is disabled"
p2pmem:
  description:
    - The judgement of every namespace that is enabled with p2pmem in this run. Each has C(namespace), C(device),
      C(client) (the PCI function nvmet asks about), C(p2pmem), C(provider) (None when several tie for C(auto)),
      C(candidates) (every provider the kernel may take), C(map_type), C(distance) and C(reason).
  returned: always
  type: list
  elements: dict
  sample:
    - namespace: subsystem nqn.2026-01.com.example:store1 namespace 1
      device: nvme2n1
      client: "0000:05:00.0"
      p2pmem: auto
      provider: null
      candidates: ["0000:03:00.0", "0000:04:00.0"]
      map_type: null
      distance: 4
      reason: "pci_p2pmem_find_many() takes the nearest published provider (distance 4); 2 are tied and the kernel
        picks one at random"
saved:
  description: Whether the I(save) file was written (or would be, in check mode).
  returned: always
  type: bool
diff:
  description: The target before and after, in nvmetcli's JSON schema. In check mode, C(after) is the planned state.
  returned: always
  type: dict
  contains:
    before:
      description: What configfs held.
      type: dict
    after:
      description: What configfs holds after the run (or would hold).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.boot import (  # noqa: E402
    SAVED_MODE,
    saved_text,
    transport_modules,
    write_if_changed,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import (  # noqa: E402
    NVMET,
    ConfigfsWriter,
    apply_actions,
    is_loaded,
    read_target,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import target_from_dict  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.plan import plan_target  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.validate import exposures, unstable_names  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot  # noqa: E402

STATES = ["present", "absent"]
TEXT = {"type": "str"}

ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "dict", "default": [], "options": {
        "nqn": {"type": "str", "required": True},
        "dhchap": {"type": "dict", "options": {
            "key": {"type": "str", "no_log": True},
            "ctrl_key": {"type": "str", "no_log": True},
            "hash": {"type": "str", "choices": ["hmac(sha256)", "hmac(sha384)", "hmac(sha512)"]},
            "dhgroup": {"type": "str", "choices": ["null", "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144",
                                                   "ffdhe8192"]},
        }},
        "state": {"type": "str", "choices": STATES},
    }},
    "ports": {"type": "list", "elements": "dict", "default": [], "options": {
        "portid": {"type": "int", "required": True},
        "addr": {"type": "dict", "default": {}, "options": {
            "trtype": {"type": "str", "choices": ["rdma", "tcp", "loop", "fc"]},
            "adrfam": {"type": "str", "choices": ["ipv4", "ipv6", "ib", "fc", "loop", ""]},
            "traddr": TEXT,
            "trsvcid": TEXT,
            "treq": {"type": "str", "choices": ["not specified", "required", "not required"]},
            "tsas": TEXT,
        }},
        "param": {"type": "dict", "default": {}, "options": {
            "inline_data_size": TEXT, "max_queue_size": TEXT, "pi_enable": TEXT,
        }},
        "subsystems": {"type": "list", "elements": "str"},
        "referrals": {"type": "list", "elements": "dict", "default": []},
        "ana_groups": {"type": "list", "elements": "dict", "default": [], "options": {
            "grpid": {"type": "int", "required": True},
            "ana": {"type": "dict", "options": {
                "state": {"type": "str", "choices": [
                    "optimized", "non-optimized", "inaccessible", "persistent-loss", "change",
                ]},
            }},
            "state": {"type": "str", "choices": STATES, "default": "present"},
        }},
        "state": {"type": "str", "choices": STATES},
    }},
    "subsystems": {"type": "list", "elements": "dict", "default": [], "options": {
        "nqn": {"type": "str", "required": True},
        "attr": {"type": "dict", "default": {}, "options": {
            "allow_any_host": {"type": "bool"},
            "serial": TEXT, "model": TEXT, "version": TEXT, "cntlid_min": TEXT, "cntlid_max": TEXT,
            "ieee_oui": TEXT, "firmware": TEXT, "pi_enable": TEXT, "qid_max": TEXT,
        }},
        "allowed_hosts": {"type": "list", "elements": "str"},
        "namespaces": {"type": "list", "elements": "dict", "default": [], "options": {
            "nsid": {"type": "int", "required": True},
            "enable": {"type": "bool", "default": True},
            "device": {"type": "dict", "default": {}, "options": {"path": TEXT, "uuid": TEXT, "nguid": TEXT}},
            "ana_grpid": {"type": "int"},
            "buffered_io": {"type": "bool"},
            "p2pmem": TEXT,
            "state": {"type": "str", "choices": STATES, "default": "present"},
        }},
        "state": {"type": "str", "choices": STATES},
    }},
    "state": {"type": "str", "choices": STATES, "default": "present"},
    "purge": {"type": "bool", "default": False},
    "root": {"type": "path", "default": "/"},
    "save": {"type": "path"},
    "modprobe": {"type": "bool", "default": False},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    root = SysRoot(params["root"])
    try:
        try:
            desired = target_from_dict(params, params["state"])
        except ValueError as exc:
            raise P2PError(str(exc), fix="correct the declaration") from exc
        modprobe = ["modprobe", "-a"] + transport_modules(desired)
        if params["modprobe"] and not module.check_mode and root.is_live:
            rc, _out, err = module.run_command(modprobe)
            if rc != 0 and not is_loaded(root):
                raise P2PError("%s failed: %s" % (" ".join(modprobe), err.strip()),
                               fix="install the kernel's modules for nvmet, or boot a kernel with CONFIG_NVME_TARGET")
        if not is_loaded(root):
            raise P2PError("nvmet is not loaded: %s does not exist%s" % (
                NVMET, "" if root.is_live else " below %s" % root.root),
                fix="%s (or modprobe: true), with configfs mounted" % " ".join(modprobe))
        current = read_target(root)
        plan = plan_target(desired, current, P2PJudge(root), purge=params["purge"])
        for warning in exposures(plan.after) + unstable_names(desired):
            module.warn(warning)
        before = current.to_dict(hide_secrets=True)
        if plan.actions and not module.check_mode:
            apply_actions(ConfigfsWriter(root), plan.actions)
            final = read_target(root)
        else:
            final = plan.after
        after = final.to_dict(hide_secrets=True)
        saved = bool(params["save"]) and write_if_changed(
            params["save"], saved_text(final), SAVED_MODE, check_mode=module.check_mode)
    except (P2PError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=bool(plan.actions) or saved,
        saved=saved,
        actions=[action.to_dict() for action in plan.actions],
        p2pmem=plan.p2pmem,
        diff={"before": before, "after": after},
    )


if __name__ == "__main__":
    main()
