"""``p2pctl provision``: the site playbook on an inventory, with live per-host progress."""

from __future__ import annotations

import io
import os
import sys
from contextlib import ExitStack, closing
from typing import IO, Dict, Optional, Tuple

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import playbook_path
from p2pctl.commands.common import echo_json, json_option, minutes
from p2pctl.provision import PHASE_ORDER, Fleet, safety
from p2pctl.runner import PlaybookRun, run_playbook

# Tags besides the phases: kernel (both kernel phases), check (verify's old name), always (validation), and
# the roles' own finer tags (kernel_install_boot, p2p_check_report, ...).
OTHER_TAGS = ("kernel", "check", "always")
ROLE_TAG_PREFIXES = ("kernel_build_", "kernel_install_", "nvmet_", "p2p_check")
STATUS_STYLES = {"ok": "green", "failed": "red", "refused": "red", "unreachable": "yellow", "interrupted": "yellow"}


def _tags(_ctx: click.Context, param: click.Parameter, values: Tuple[str, ...]) -> Tuple[str, ...]:
    tags = tuple(tag.strip() for value in values for tag in value.split(",") if tag.strip())
    for tag in tags:
        if tag not in PHASE_ORDER + OTHER_TAGS and not tag.startswith(ROLE_TAG_PREFIXES):
            raise click.BadParameter("%r is no tag of the site playbook" % tag, param=param,
                                     param_hint="--%s" % (param.name or "tags").replace("_", "-"))
    return tags


def _with_controller(limit: str) -> str:
    """The limit plus the controller, which builds the kernel (kernel_build_hosts' default).

    Ansible splits a pattern on commas when it has any, and on colons only otherwise: the controller is
    joined with the separator the user's pattern already uses (``a,b:localhost`` would name host ``b:localhost``).
    """
    return "%s%slocalhost" % (limit, ":" if ":" in limit and "," not in limit else ",")


@click.command(short_help="Take nodes from a stock OS to a verified NVMe-oF target (the site playbook).")
@click.option("--inventory", "-i", required=True, type=click.Path(exists=True), help="Ansible inventory file or "
              "directory (p2pctl inventory init writes one).")
@click.option("--limit", "-l", metavar="PATTERN", help="Only these hosts (Ansible's host pattern); the controller, "
              "which builds the kernel, is always included.")
@click.option("--tags", "-t", multiple=True, callback=_tags, metavar="TAGS",
              help="Only these phases: " + ", ".join(PHASE_ORDER) + " (comma-separated or repeated).")
@click.option("--skip-tags", multiple=True, callback=_tags, metavar="TAGS", help="Skip these phases.")
@click.option("--check", is_flag=True, help="Ansible's check mode: report what would change, change nothing.")
@click.option("--diff", is_flag=True, help="Show the changes (files, nvmet configfs) as diffs.")
@click.option("--forks", "-f", type=click.IntRange(min=1), help="Hosts worked on at once (Ansible's forks).")
@click.option("--extra-vars", "-e", "extra_vars", multiple=True, metavar="VARS",
              help="Extra variables as for ansible-playbook: key=value, JSON or @file (repeatable).")
@json_option
@click.option("--log", "log_path", type=click.Path(dir_okay=False), help="Write Ansible's full output to FILE.")
def provision(
    inventory: str,
    limit: Optional[str],
    tags: Tuple[str, ...],
    skip_tags: Tuple[str, ...],
    check: bool,
    diff: bool,
    forks: Optional[int],
    extra_vars: Tuple[str, ...],
    as_json: bool,
    log_path: Optional[str],
) -> None:
    """Run the site playbook: validate, kernel_build, kernel_install, nvme, nvmet, verify.

    Every host is validated first; a problem on any host (an unknown variable, a missing namespace
    device, a provider the kernel would refuse, duplicate nsids or ports) stops all of them before
    anything changes. Progress is shown per host as it runs (phase, task, ok/changed/failed counts,
    elapsed), and a summary table at the end. --json prints
    {"hosts": [{host, ok, changed, failed, unreachable, status, phase, errors, checks}]} instead,
    checks being the verify phase's node report checks. The same run is
    'ansible-playbook -i INVENTORY p2pdma.storage.site'; docs/provision.md describes it.

    \b
    Exit status:
      0    every host went through every phase asked for
      2    bad input: options, inventory, or validation refused it (nothing changed)
      4    some host failed in a phase
      5    some host did not answer, and none failed
      130  interrupted (Ctrl-C): each node's phase is printed with whether it is left safe
    """
    run = PlaybookRun(
        playbook_path("site"),
        inventory=os.path.abspath(inventory),
        limit=_with_controller(limit) if limit else None,
        check=check,
        diff=diff,
        tags=tags,
        skip_tags=skip_tags,
        forks=forks,
        extra_vars_args=extra_vars,
        # The log file and the errors shown are plain text.
        envvars={"ANSIBLE_NOCOLOR": "1"},
    )
    fleet = Fleet()
    interrupted = follow(run, fleet, log_path)
    if not interrupted and not fleet.ended:
        raise P2PError("ansible-playbook stopped before the hosts ran: %s"
                       % (" ".join(fleet.messages[-3:]) or "no output"),
                       fix="check the inventory (ansible-inventory -i %s --graph)" % inventory)
    if as_json:
        echo_json(fleet.to_dict())
    else:
        click.echo(summary(fleet, interrupted))
    sys.exit(fleet.exit_status())


def follow(run: PlaybookRun, fleet: Fleet, log_path: Optional[str]) -> bool:
    """Feed ``fleet`` with the run's events, showing them live; True when Ctrl-C stopped the run."""
    console = Console(stderr=True, highlight=False)
    with ExitStack() as stack:
        log: Optional[IO[str]] = stack.enter_context(open(log_path, "w", encoding="utf-8")) if log_path else None
        if console.is_terminal:
            stack.enter_context(Live(_Progress(fleet), console=console, refresh_per_second=4, transient=True))
        phases: Dict[str, Optional[str]] = {}
        try:
            for event in stack.enter_context(closing(run_playbook(run, hosts_may_fail=True))):
                fleet.feed(event)
                if log is not None and event.get("stdout"):
                    # ansible-runner reads Ansible through a terminal: its lines end in CR LF.
                    log.write(event["stdout"].replace("\r\n", "\n") + "\n")
                if not console.is_terminal:
                    for host in fleet.hosts.values():
                        if phases.get(host.name) != host.phase:
                            phases[host.name] = host.phase
                            console.print("%s: %s" % (host.name, host.phase))
        except KeyboardInterrupt:
            fleet.stop()
            return True
    return False


class _Progress:
    """The live table: one row per host."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def __rich__(self) -> Table:
        table = Table(box=None, pad_edge=False)
        for column in ("host", "phase", "task", "ok", "changed", "failed", "elapsed"):
            table.add_column(column, justify="right" if column in ("ok", "changed", "failed", "elapsed") else "left",
                             no_wrap=True, overflow="ellipsis", max_width=48 if column == "task" else None)
        for name in sorted(self.fleet.hosts):
            host = self.fleet.hosts[name]
            table.add_row(name, host.phase or "", host.task or "", str(host.ok), str(host.changed),
                          str(host.failed + host.unreachable), minutes(host.elapsed),
                          style="red" if host.failed or host.unreachable else None)
        return table


def summary(fleet: Fleet, interrupted: bool) -> str:
    """The per-host summary table, then every host's errors; for an interrupted run where each node was left."""
    table = Table(box=None, pad_edge=False)
    columns = ["host", "status", "phase", "ok", "changed", "failed", "unreachable", "checks", "elapsed"]
    if interrupted:
        columns += ["safe", "left with"]
    for column in columns:
        table.add_column(column)
    for name in sorted(fleet.hosts):
        host = fleet.hosts[name]
        row = [name, "[%s]%s[/]" % (STATUS_STYLES.get(host.status, "default"), host.status), host.phase or "",
               str(host.ok), str(host.changed), str(host.failed), str(host.unreachable), _checks(host.checks),
               minutes(host.elapsed)]
        if interrupted:
            safe, what = safety(host.phase, host.task, host.task_path)
            row += ["yes" if safe else "[red]no[/]", what]
        table.add_row(*row)
    console = Console(record=True, width=200, highlight=False, file=io.StringIO())
    console.print(table)
    for name in sorted(fleet.hosts):
        for error in fleet.hosts[name].errors:
            console.print("%s: %s" % (name, error), markup=False, soft_wrap=True)
    if interrupted:
        console.print("Interrupted: provision again to continue; the phases already done change nothing the "
                      "second time.")
    return console.export_text().rstrip()


def _checks(checks: list) -> str:
    counts: Dict[str, int] = {}
    for item in checks:
        counts[item.get("status")] = counts.get(item.get("status"), 0) + 1
    return " ".join("%d %s" % (counts[s], s) for s in ("PASS", "WARN", "FAIL") if s in counts) or "-"
