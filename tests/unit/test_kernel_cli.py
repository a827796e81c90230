"""``p2pctl kernel build``: what it runs, and the status line it keeps while the build runs."""

from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import collection_root
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel.kbuild import BuildLog
from p2pctl.commands.kernel import BuildStatus, build_log, build_run


def test_the_build_runs_the_kernel_build_playbook_in_the_p2pctl_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("P2PCTL_CACHE", str(tmp_path))
    run = build_run({"kernel_build_version": "6.12", "kernel_build_jobs": 4}, check=True)
    assert run.playbook == collection_root() / "playbooks" / "kernel_build.yml"
    assert run.extravars == {
        "kernel_build_cache_root": str(tmp_path),
        "kernel_build_log_file": str(tmp_path / "kernel-pkg" / "build.log"),
        "kernel_build_version": "6.12",
        "kernel_build_jobs": 4,
    }
    assert build_log() == tmp_path / "kernel-pkg" / "build.log"
    assert run.options() == ["--check", "--diff"]
    assert run.inventory["all"]["hosts"]["localhost"]["ansible_connection"] == "local"


def test_the_status_line_shows_the_task_then_the_build_stage(tmp_path):
    log = tmp_path / "build.log"
    status = BuildStatus(log)
    status.task = "Install the build dependencies"
    assert status.__rich__().plain.startswith("Install the build dependencies (total 0:0")
    with BuildLog(str(log)).stage("make bindeb-pkg", "make -C linux bindeb-pkg") as sink:
        sink.write("  CC      drivers/pci/p2pdma.o\n")
    line = status.__rich__().plain
    assert line.startswith("make bindeb-pkg 0:00 (total 0:0")
    assert line.endswith("CC      drivers/pci/p2pdma.o")
