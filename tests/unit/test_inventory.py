"""p2pctl inventory init and add-node on real files, read back by Ansible's own inventory parser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.unit.test_cli import p2pctl
from tests.unit.test_preflight import declared

ANSIBLE_INVENTORY = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")


def ansible_sees(inventory: Path) -> dict:
    listed = subprocess.run([ANSIBLE_INVENTORY, "-i", str(inventory), "--list"], capture_output=True, text=True,
                            check=True)
    return json.loads(listed.stdout)


def test_init_writes_an_inventory_ansible_reads_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    directory = tmp_path / "inv"
    result = p2pctl("inventory", "init", str(directory))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["wrote %s/hosts.yml" % directory, "wrote %s/group_vars/all.yml" % directory]
    assert "storage" in ansible_sees(directory)["all"]["children"]  # the group is there, with no node yet
    again = p2pctl("inventory", "init", str(directory))
    assert again.returncode == 2
    assert "%s/hosts.yml and %s/group_vars/all.yml already exist" % (directory, directory) in again.stderr


def test_the_starter_group_vars_name_only_declared_variables_and_set_none(tmp_path: Path) -> None:
    p2pctl("inventory", "init", str(tmp_path))
    text = (tmp_path / "group_vars" / "all.yml").read_text()
    assert yaml.safe_load(text) is None  # every default stays in its role
    named = set(re.findall(r"^# ([a-z0-9_]+):", text, re.MULTILINE))
    assert named and named <= set(declared()) | {"nvmet_config"}


def test_add_node_keeps_comments_and_order_and_ansible_sees_the_nodes(tmp_path: Path) -> None:
    p2pctl("inventory", "init", str(tmp_path))
    hosts = tmp_path / "hosts.yml"
    # The user's own edits: a comment and a group of their own, which must survive.
    hosts.write_text(hosts.read_text() + "    # monitoring runs elsewhere\n    clients:\n      hosts:\n"
                     "        c1: {ansible_host: 192.0.2.50}\n")
    before = hosts.read_text()
    nodes = (["n1", "--address", "192.0.2.11", "--user", "root"], ["n2", "--address", "192.0.2.12", "--port", "2222"])
    for args in nodes:
        result = p2pctl("inventory", "add-node", *args, "--inventory", str(tmp_path))
        assert result.returncode == 0, result.stderr
    after = hosts.read_text()
    comments = [line for line in after.splitlines() if line.lstrip().startswith("#")]
    assert comments == [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert after.index("n1:") < after.index("n2:") < after.index("clients:")
    seen = ansible_sees(tmp_path)
    assert seen["storage"]["hosts"] == ["n1", "n2"] and seen["clients"]["hosts"] == ["c1"]
    variables = seen["_meta"]["hostvars"]
    assert variables["n1"] == {"ansible_host": "192.0.2.11", "ansible_user": "root"}
    assert variables["n2"] == {"ansible_host": "192.0.2.12", "ansible_port": 2222}


def test_add_node_refuses_a_name_or_address_already_there_naming_the_file(tmp_path: Path) -> None:
    p2pctl("inventory", "init", str(tmp_path))
    p2pctl("inventory", "add-node", "n1", "--address", "192.0.2.11", "-i", str(tmp_path))
    before = (tmp_path / "hosts.yml").read_text()
    name = p2pctl("inventory", "add-node", "n1", "--address", "192.0.2.99", "-i", str(tmp_path))
    assert name.returncode == 2
    assert "node n1 is already in %s/hosts.yml (group storage)" % tmp_path in name.stderr
    address = p2pctl("inventory", "add-node", "n9", "--address", "192.0.2.11", "-i", str(tmp_path))
    assert address.returncode == 2
    assert "address 192.0.2.11 is already node n1 in %s/hosts.yml" % tmp_path in address.stderr
    assert (tmp_path / "hosts.yml").read_text() == before


def test_add_node_on_an_ini_inventory_says_so(tmp_path: Path) -> None:
    ini = tmp_path / "hosts"
    ini.write_text("[storage]\nn1 ansible_host=192.0.2.11\n")
    result = p2pctl("inventory", "add-node", "n2", "--address", "192.0.2.12", "-i", str(ini))
    assert result.returncode == 2 and "is not a YAML inventory" in result.stderr
