import os
import stat

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.files import (
    fsync_directory,
    open_atomic,
    write_atomic,
)


def test_write_creates_the_file_with_its_content_and_mode(tmp_path):
    path = tmp_path / "hosts.yml"
    write_atomic(path, "all: {}\n")
    assert path.read_text() == "all: {}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["hosts.yml"]


def test_a_reader_of_the_old_file_keeps_the_old_content(tmp_path):
    path = tmp_path / "node.json"
    write_atomic(path, b'{"ssh_port": 1}\n', mode=0o600)
    with open(path, "rb") as old:
        write_atomic(path, b'{"ssh_port": 2}\n')
        assert old.read() == b'{"ssh_port": 1}\n'  # renamed over, not rewritten in place
    assert path.read_bytes() == b'{"ssh_port": 2}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "provenance.json"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), open_atomic(path) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["provenance.json"]


def test_a_missing_directory_is_an_error_not_a_file_elsewhere(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "absent" / "file", "x")
    assert os.listdir(tmp_path) == []


def test_fsync_directory_refuses_a_file(tmp_path):
    fsync_directory(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        fsync_directory(tmp_path / "file")
