"""The kernel build's log: every command's output as it comes, stage by stage, and a reader that follows it."""

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel.kbuild import BuildLog, BuildLogReader, StepTimes


def test_each_stage_and_its_output_go_to_the_log(tmp_path):
    log = tmp_path / "build.log"
    times = StepTimes(log=BuildLog(str(log)))
    output = times.run("make olddefconfig", ["sh", "-c", "echo '  HOSTCC  scripts/basic/fixdep'; echo done"])
    times.run("make bindeb-pkg", ["sh", "-c", "echo '  CC      drivers/nvme/host/pci.o' >&2"])
    assert output == "  HOSTCC  scripts/basic/fixdep\ndone\n"
    assert log.read_text().splitlines() == [
        "==> make olddefconfig: sh -c echo '  HOSTCC  scripts/basic/fixdep'; echo done",
        "  HOSTCC  scripts/basic/fixdep",
        "done",
        "==> make bindeb-pkg: sh -c echo '  CC      drivers/nvme/host/pci.o' >&2",
        "  CC      drivers/nvme/host/pci.o",
    ]
    assert set(times.seconds) == {"make olddefconfig", "make bindeb-pkg"}


def test_a_new_build_starts_a_new_log(tmp_path):
    log = tmp_path / "logs" / "build.log"
    StepTimes(log=BuildLog(str(log))).run("first", ["echo", "one"])
    BuildLog(str(log))
    assert log.read_text() == ""


def test_a_failed_stage_names_the_log(tmp_path):
    log = tmp_path / "build.log"
    with pytest.raises(P2PError, match=r"make bindeb-pkg failed \(exit 2\).*\nno space left") as caught:
        StepTimes(log=BuildLog(str(log))).run("make bindeb-pkg", ["sh", "-c", "echo no space left; exit 2"])
    assert str(log) in str(caught.value)
    assert log.read_text().endswith("no space left\n")


def test_without_a_log_the_output_is_still_returned():
    assert StepTimes().run("echo", ["echo", "release"]) == "release\n"


def test_the_reader_follows_stages_as_the_log_grows(tmp_path):
    path = tmp_path / "build.log"
    reader = BuildLogReader(str(path))
    reader.poll()
    assert (reader.stage, reader.last_line) == (None, "")  # no log yet

    log = BuildLog(str(path))
    with log.stage("prepare the source tree", "debian source of 6.12") as sink:
        sink.write("extracting\n")
    reader.poll()
    assert (reader.stage, reader.last_line) == ("prepare the source tree", "extracting")

    with log.stage("make bindeb-pkg", "make -C linux bindeb-pkg") as sink:
        sink.write("  CC      kernel/fork.o\n  CC      mm/memr")
        reader.poll()
        assert (reader.stage, reader.last_line) == ("make bindeb-pkg", "  CC      kernel/fork.o")  # not half a line
        sink.write("emap.o\n")
    reader.poll()
    assert reader.last_line == "  CC      mm/memremap.o"

    BuildLog(str(path))  # the next build truncates the log
    with BuildLog(str(path)).stage("make tinyconfig") as sink:
        sink.write("#\n")
    reader.poll()
    assert (reader.stage, reader.last_line) == ("make tinyconfig", "#")
