"""The `kizuna` command: the simulator and planner (`demo`, `simulate`, `trace`) and the
control plane's client (`server`, `admin`, `login`, `whoami`, `passwd`, `org`, `project`,
`award`, `node`, `token`, `submit`, `queue`, `show`, `why`, `cancel`, `logs`, `balance`,
`usage`, `audit`; docs/cli.md).

Exit codes scripts can trust:
  0  success
  1  the service refused or failed (any other 4xx or 5xx), or audit verification failed
  2  bad usage: a wrong option or argument (Click's code), a malformed config file
  3  not found (404)
  4  not signed in, or not allowed (401, 403)
  5  conflict (409): a name taken, a job already ended
  6  invalid request (422)
  7  cannot reach the service

The Typer `app` is the only module-level object; consoles, settings and HTTP clients are
built per command, so the commands stay testable with `typer.testing.CliRunner`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from kizuna import __version__
from kizuna.cli import history, jobs, ledger, platform, resources
from kizuna.cli.admin import admin, login, passwd, server, whoami
from kizuna.cli.audit import audit
from kizuna.cli.demo import run_demo
from kizuna.cli.output import OutputFormat
from kizuna.cli.render import print_report, replay_progress
from kizuna.cli.simulate import simulate
from kizuna.cli.trace import app as trace_app
from kizuna.kernel.errors import InvalidRequest, UnknownName
from kizuna.scheduling import POLICIES, Policy, make_policy
from kizuna.simulation import WorkloadSpec, generate

app = typer.Typer(
    name="kizuna",
    help="Kizuna runs a national AI capacity program: awards, fair GPU scheduling, planning.",
    epilog="Exit codes: 0 ok, 1 refused or failed, 2 bad usage, 3 not found, "
    "4 not signed in or forbidden, 5 conflict, 6 invalid request, 7 service unreachable.",
    no_args_is_help=True,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"kizuna {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Kizuna runs a national AI capacity program: awards, fair GPU scheduling, planning."""


@app.command()
def demo(
    jobs: Annotated[int, typer.Option(min=1, help="Jobs to generate.")] = 300,
    nodes: Annotated[int, typer.Option(min=1, help="Nodes of 8 GPUs, half H100, half A100.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the generated workload.")] = 7,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help=f"Policy to replay, repeatable; default: all ({', '.join(POLICIES)}).",
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option(help="Tables for people, JSON for scripts.")] = (
        OutputFormat.TABLE
    ),
) -> None:
    """Replay a generated workload under each policy, with the real scheduler.

    Compares the policies' results, then shows why jobs wait at the busiest moment.
    """
    policies = _policies(policy or list(POLICIES))
    try:
        workload = generate(WorkloadSpec(jobs=jobs, nodes=nodes), seed)
    except InvalidRequest as e:
        raise typer.BadParameter(str(e)) from None
    as_json = output is OutputFormat.JSON
    with replay_progress(Console(stderr=True), enabled=not as_json) as track:
        report = run_demo(workload, policies, seed, track)
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        print_report(Console(), report)


def _policies(names: list[str]) -> list[Policy]:
    """Each named policy once, in the order given, with backfill on."""
    try:
        return [make_policy(name, backfill=True) for name in dict.fromkeys(names)]
    except UnknownName as e:
        raise typer.BadParameter(str(e), param_hint="'--policy'") from None


app.command()(simulate)
app.add_typer(trace_app, name="trace")

# The control plane (docs/cli.md)
app.command()(server)
app.command()(platform.up)
app.add_typer(admin, name="admin")
app.command()(login)
app.command()(whoami)
app.command()(passwd)
app.add_typer(resources.org, name="org")
app.add_typer(resources.project, name="project")
app.add_typer(resources.award, name="award")
app.add_typer(resources.node, name="node")
app.add_typer(resources.token, name="token")
app.command(context_settings={"allow_interspersed_args": False})(jobs.submit)
app.command()(jobs.queue)
app.command("show")(jobs.job_show)
app.command()(jobs.why)
app.command()(jobs.cancel)
app.command()(jobs.logs)
app.command()(ledger.balance)
app.command()(ledger.usage)
app.add_typer(history.jobs, name="jobs")
app.add_typer(audit, name="audit")
