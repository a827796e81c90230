"""p2pctl check --html, of a fleet and of one node: the page as headless Chromium (Debian's chromium) renders it.

Chromium comes with the test tools (python -m p2pctl.debian_packages test, run by scripts/bootstrap --all).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml

from ansible_collections.p2pdma.storage.plugins.module_utils.views.html import STATUS_COLOURS, VERDICT_COLOURS
from tests.support.fleet import DEAD_NODE, GUESTS, simulated_fleet
from tests.support.png import pixel_counts
from tests.unit.test_cli import p2pctl

WINDOW = (1280, 1600)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: install the test tools with scripts/bootstrap --all"
    argv = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
        "--disable-background-networking", "--user-data-dir=%s" % (tmp_path / "chromium-profile"),
        "--window-size=%d,%d" % WINDOW, *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120)


@pytest.fixture(scope="module")
def fleet_page(tmp_path_factory) -> Tuple[Path, Dict]:
    """A WARN node, a FAIL node (two drives behind different Intel root ports) and a node that does not answer."""
    directory = tmp_path_factory.mktemp("fleet-html")
    inventory = simulated_fleet(directory, 2)
    hosts = yaml.safe_load(inventory.read_text())
    hosts["all"]["hosts"]["node02"].update(
        p2p_check_root=str(GUESTS / "rootports" / "snapshot.tar.gz"),
        p2p_check_providers=["0000:01:00.0"],
        p2p_check_clients=["nvme2"],
    )
    inventory.write_text(yaml.safe_dump(hosts))
    page = directory / "fleet.html"
    result = p2pctl("check", "--inventory", str(inventory), "--json", "--html", str(page))
    assert result.returncode == 5, result.stderr
    return page, json.loads(result.stdout)


class _Elements(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: List[Tuple[str, Dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def test_the_dom_has_a_row_per_node_and_loads_nothing(fleet_page, tmp_path):
    page, fleet = fleet_page
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    elements = _Elements()
    elements.feed(dom)
    rows = [attrs["data-host"] for tag, attrs in elements.tags if tag == "tr" and "node" in attrs.get("class", "")]
    assert rows == [entry["host"] for entry in fleet["nodes"]] == [DEAD_NODE, "node01", "node02"]
    assert not [tag for tag, _attrs in elements.tags if tag in ("script", "link", "img", "iframe", "object")]
    references = [value for _tag, attrs in elements.tags for name, value in attrs.items() if name in ("src", "href")]
    assert references and all(value.startswith("#node-") for value in references)
    assert "url(" not in dom and "@import" not in dom
    # A tree and a pair matrix for each judged node.
    assert sum(1 for tag, _attrs in elements.tags if tag == "svg") == 4
    assert "locality:0000:01:00.0" in dom
    assert "put 0000:01:00.0 and 0000:03:00.0 under one PCIe switch" in dom


def test_the_screenshot_shows_the_status_cells_and_the_verdicts(fleet_page, tmp_path):
    page, _fleet = fleet_page
    shot = tmp_path / "fleet.png"
    chromium(tmp_path, "--screenshot=%s" % shot, page.as_uri())
    width, height, counts = pixel_counts(shot)
    assert (width, height) == WINDOW
    white = counts[(255, 255, 255)]
    assert white < 0.95 * width * height, "the page rendered (nearly) blank"
    for status in ("WARN", "FAIL", "UNREACHABLE"):
        assert counts[_rgb(STATUS_COLOURS[status])] > 500, "no %s status cell drawn" % status
    for verdict in ("bus_addr", "not_supported"):
        assert counts[_rgb(VERDICT_COLOURS[verdict])] > 500, "no %s pair cell drawn" % verdict
    assert counts[_rgb(STATUS_COLOURS["PASS"])] == 0  # no node passed, so no green status cell


def test_one_node_gets_the_same_page_with_its_tree_and_pairs(tmp_path):
    snapshot = GUESTS / "switch" / "snapshot.tar.gz"
    page = tmp_path / "node.html"
    result = p2pctl("check", "--root", str(snapshot), "--json", "--html", str(page))
    report = json.loads(result.stdout)
    assert result.returncode == 3 and report["status"] == "WARN", result.stderr
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    elements = _Elements()
    elements.feed(dom)
    # The snapshot has no hostname: the page is named after the snapshot.
    rows = [attrs["data-host"] for tag, attrs in elements.tags if tag == "tr" and "node" in attrs.get("class", "")]
    assert rows == [str(snapshot)]
    assert sum(1 for tag, _attrs in elements.tags if tag == "svg") == 2
    for check in report["checks"]:
        assert ("<td>%s</td>" % check["id"] in dom) == (check["status"] != "PASS"), check["id"]
    assert not [tag for tag, _attrs in elements.tags if tag in ("script", "link", "img", "iframe", "object")]


def _rgb(colour: str) -> Tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF
