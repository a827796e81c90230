"""The captured guest fixtures still describe the topologies tools/capture_fixtures.py defines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


def _load_capture_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("capture_fixtures", REPO / "tools" / "capture_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


capture = _load_capture_tool()


CAPTURED = sorted(str(path.parent.relative_to(capture.FIXTURES)) for path in capture.FIXTURES.glob("**/qemu-args.txt"))


@pytest.mark.parametrize("name", sorted(capture.FIXTURES_BY_NAME))
def test_every_fixture_is_captured(name: str) -> None:
    assert (capture.FIXTURES / name / "qemu-args.txt").exists(), (
        "run: .venv/bin/python tools/capture_fixtures.py %s" % name
    )


@pytest.mark.parametrize("captured", CAPTURED)
def test_fixture_was_captured_from_the_current_topology(captured: str, tmp_path: Path) -> None:
    """A preset or fixture that changed since its capture makes its fixture stale: recapture it."""
    name = Path(captured).name
    output_dir = tmp_path / "out"
    kernel = Path("/kernel")
    argv = capture.qemu_command(
        capture.FIXTURES_BY_NAME[name], kernel, tmp_path / "initramfs.cpio.gz", tmp_path, output_dir
    )
    recorded = (capture.FIXTURES / captured / "qemu-args.txt").read_text()
    assert capture.portable_args(argv, tmp_path, output_dir, kernel) == recorded, (
        "stale fixture %s; recapture it with tools/capture_fixtures.py (docs/fixtures.md)" % captured
    )
