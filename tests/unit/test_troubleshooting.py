"""docs/troubleshooting.md has a section for every check id the engine emits.

The ids are read from the engine's source (every id a CheckResult can carry, `rdma:%s` as the family
`rdma:<name>`), so a new check without a section fails here before any node shows it; the ids the
engine really emits on every captured guest are checked against the sections too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, List, Set

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p import checks
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.report import judge_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root
from tests.support.fleet import guest_snapshots

DOC = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"
# The calls that name a check, and which argument holds its id.
ID_ARGUMENT = {"CheckResult": 0, "_verdict_result": 1, "_config_unknown": 1}


def section_patterns() -> Dict[str, re.Pattern]:
    """Each '## `id`' heading, and the ids it covers (`<name>` matches any device name)."""
    headings = re.findall(r"^## `([^`]+)`$", DOC.read_text(), flags=re.MULTILINE)
    return {h: re.compile("^%s$" % re.sub(r"<[^>]+>", ".+", re.escape(h).replace(r"\<", "<").replace(r"\>", ">")))
            for h in headings}


def _id_text(node: ast.expr, assigned: Dict[str, ast.expr]) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
        return str(node.left.value).replace("%s", "<device>").replace("%d", "<number>")
    if isinstance(node, ast.Name) and node.id in assigned:
        return _id_text(assigned[node.id], assigned)
    raise AssertionError("a check id built in a way this test cannot read: %s" % ast.unparse(node))


def engine_check_ids() -> Set[str]:
    """Every id (or id family) the engine's source gives a check."""
    tree = ast.parse(Path(checks.__file__).read_text())
    ids: Set[str] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        # A local variable holding the id (check_id = "provider:%s" % bdf); parameters stand for their callers.
        assigned = {target.id: node.value for node in ast.walk(function) if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)}
        parameters = {argument.arg for argument in function.args.args}
        for call in ast.walk(function):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            index = ID_ARGUMENT.get(call.func.id)
            if index is None or len(call.args) <= index:
                continue
            argument = call.args[index]
            if isinstance(argument, ast.Name) and argument.id in parameters and argument.id not in assigned:
                continue
            ids.add(_id_text(argument, assigned))
    return ids


def test_the_source_scan_finds_the_engine_checks():
    ids = engine_check_ids()
    assert {"kernel-p2pdma", "locality", "locality:<device>", "provider:<device>", "rdma:<device>"} <= ids
    assert len(ids) >= 17


@pytest.mark.parametrize("check_id", sorted(engine_check_ids()))
def test_every_check_id_in_the_engine_has_a_section(check_id):
    patterns = section_patterns()
    assert any(pattern.match(check_id) for pattern in patterns.values()), (
        "docs/troubleshooting.md has no '## `%s`' section" % check_id.replace("<device>", "<name>"))


def emitted_ids() -> List[str]:
    ids: Set[str] = set()
    for snapshot in guest_snapshots():
        node = read_node(open_root(str(snapshot)))
        results, _report = judge_node(node)
        ids.update(result.id for result in results)
    return sorted(ids)


def test_every_id_emitted_on_the_captured_guests_has_a_section():
    patterns = section_patterns()
    missing = [i for i in emitted_ids() if not any(p.match(i) for p in patterns.values())]
    assert not missing, "no section in docs/troubleshooting.md for %s" % ", ".join(missing)
