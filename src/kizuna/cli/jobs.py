"""`kizuna submit|queue|show|why|cancel|logs`: jobs, the way Slurm users expect
(sbatch, squeue, scontrol show job, scancel; `logs` as `tail [-f]` of slurm-<id>.out)."""

from __future__ import annotations

import contextlib
import math
import signal as signals
import time as clock
from pathlib import Path
from typing import Annotated, Any

import typer

from kizuna.cli.choices import FINAL, JobState, Priority
from kizuna.cli.client import (
    EXIT_AUTH,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Client,
    CliError,
    Json,
    local_problem,
)
from kizuna.cli.output import OutputFormat
from kizuna.cli.present import (
    Names,
    Output,
    emit,
    fields,
    note,
    print_problem,
    say,
    service,
    show,
    slurm_time,
    table,
    when,
)
from kizuna.kernel.units import parse_duration

DEFAULT_TIME = "1h"
DEFAULT_SIGNAL = "TERM@30"
CHECKPOINT_SIGNALS = ("TERM", "INT", "USR1", "USR2", "HUP")
"""What the service accepts (kizuna.execution.backend.SIGNALS)."""
MAX_GRACE = 3600
FOLLOW_EVERY_S = 0.5
ACTIVE = tuple(s.value for s in JobState if s not in FINAL)
"""What `kizuna queue` shows without --state or --all: like squeue, jobs not yet ended."""
REASONS_SHOWN = 50
"""Pending jobs whose reason `kizuna queue` asks for; the others say `kizuna why`."""


def walltime(text: str) -> int:
    """--time in seconds: D-HH:MM:SS, HH:MM:SS, MM:SS, units (2h, 90m, 1d12h) or seconds."""
    try:
        seconds = float(parse_duration(text))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="'--time'") from None
    if not 1 <= math.ceil(seconds) <= 366 * 86_400:
        raise typer.BadParameter(
            f"{text!r}: a time limit is between 1 second and 366 days", param_hint="'--time'"
        )
    return math.ceil(seconds)


def checkpoint_signal(text: str) -> tuple[str, int]:
    """--signal SIG[@GRACE] as sbatch takes it (USR1@60, SIGTERM, 10@90): the signal's name
    and the seconds between it and the kill (default 30)."""
    name, at, grace_text = text.strip().partition("@")
    name = name.strip().upper().removeprefix("SIG")
    if name.isdigit():
        with contextlib.suppress(ValueError):
            name = signals.Signals(int(name)).name.removeprefix("SIG")
    grace = 30
    if at:
        if not grace_text.strip().isdigit():
            raise typer.BadParameter(f"{text!r}: GRACE is whole seconds", param_hint="'--signal'")
        grace = int(grace_text)
    if name not in CHECKPOINT_SIGNALS or grace > MAX_GRACE:
        raise typer.BadParameter(
            f"{text!r}: give SIG[@GRACE], SIG one of {', '.join(CHECKPOINT_SIGNALS)} and GRACE"
            f" at most {MAX_GRACE} seconds",
            param_hint="'--signal'",
        )
    return name, grace


def gpu_request(
    gpus: int | None, nodes: int | None, gpus_per_node: int | None
) -> tuple[int, int | None]:
    """(GPUs in all, GPUs per node) of --gpus, --nodes and --gpus-per-node."""
    if nodes is not None:
        if gpus_per_node is None:
            raise typer.BadParameter(
                "--nodes needs --gpus-per-node (GPUs in all = nodes x GPUs per node)",
                param_hint="'--nodes'",
            )
        if gpus is not None and gpus != nodes * gpus_per_node:
            raise typer.BadParameter(
                f"--gpus {gpus} is not --nodes {nodes} x --gpus-per-node {gpus_per_node}",
                param_hint="'--gpus'",
            )
        return nodes * gpus_per_node, gpus_per_node
    if gpus is None:
        return gpus_per_node or 1, gpus_per_node
    return gpus, gpus_per_node


def _gpu_type_of(client: Client, project: str) -> str:
    """The one GPU type the project's awards are of (for a submission without --gpu-type)."""
    types = sorted({a["gpu_type"] for a in client.pages("/awards", {"project": project})})
    if len(types) == 1:
        return str(types[0])
    if types:
        detail = f"give --gpu-type: project {project} has awards of {', '.join(types)}"
    else:
        detail = f"give --gpu-type: project {project} has no award to take it from"
    raise local_problem("Give --gpu-type", detail, EXIT_USAGE)


def submit(
    command: Annotated[
        list[str],
        typer.Argument(
            metavar="CMD",
            help="The command to run; options after it are the command's own.",
            show_default=False,
        ),
    ],
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-A",
            envvar="KIZUNA_PROJECT",
            help="Project, org/name or id (default: $KIZUNA_PROJECT).",
            show_default=False,
        ),
    ] = None,
    gpus: Annotated[
        int | None, typer.Option("--gpus", "-G", min=1, help="GPUs in all (default: 1).")
    ] = None,
    nodes: Annotated[
        int | None, typer.Option("--nodes", "-N", min=1, help="Nodes (with --gpus-per-node).")
    ] = None,
    gpus_per_node: Annotated[
        int | None, typer.Option(min=1, help="GPUs on each node the job spans.")
    ] = None,
    gpu_type: Annotated[
        str | None,
        typer.Option(
            envvar="KIZUNA_GPU_TYPE",
            help="GPU type (default: $KIZUNA_GPU_TYPE, or the project's one awarded type).",
            show_default=False,
        ),
    ] = None,
    time: Annotated[
        str,
        typer.Option(
            "--time", "-t", help="Time limit: 1-00:00:00, 12:00:00, 2h, 90m, 1d12h or seconds."
        ),
    ] = DEFAULT_TIME,
    name: Annotated[
        str, typer.Option("--name", "-J", help="Job name (default: the command's name).")
    ] = "",
    priority: Annotated[Priority, typer.Option(help="Priority class.")] = Priority.NORMAL,
    one_domain: Annotated[
        bool, typer.Option("--one-domain", help="Place all its GPUs in one NVLink domain.")
    ] = False,
    signal: Annotated[
        str,
        typer.Option(
            "--signal",
            metavar="SIG[@GRACE]",
            help="Checkpoint signal sent before a stop, and the seconds until the kill "
            "(sbatch --signal): USR1@60.",
        ),
    ] = DEFAULT_SIGNAL,
    chdir: Annotated[
        Path | None,
        typer.Option(
            "--chdir",
            "-D",
            help="Folder the command runs in (default: the current folder).",
            show_default=False,
        ),
    ] = None,
    requeue: Annotated[
        bool,
        typer.Option(
            "--requeue/--no-requeue",
            help="On a run lost by its backend or a node that went down: back to the queue, "
            "or fail the job (sbatch --requeue/--no-requeue).",
        ),
    ] = True,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Submit a job, like sbatch: `kizuna submit -A acme/llm -G 8 -t 2h -- python train.py`."""
    if project is None:
        raise typer.BadParameter("give --project (or set KIZUNA_PROJECT)", param_hint="'--project'")
    seconds = walltime(time)
    sig, grace = checkpoint_signal(signal)
    workdir = (Path.cwd() / (chdir or Path())).expanduser().resolve()
    total, per_node = gpu_request(gpus, nodes, gpus_per_node)
    with service(output) as client:
        kind = gpu_type or _gpu_type_of(client, project)
        body: dict[str, Any] = {
            "project": project,
            "command": list(command),
            "gpus": total,
            "gpu_type": kind,
            "walltime": seconds,
            "name": name,
            "priority": priority.value,
            "one_domain": one_domain,
            "signal": sig,
            "grace": grace,
            "workdir": str(workdir),
            "requeue": requeue,
        }
        if per_node is not None:
            body["gpus_per_node"] = per_node
        made = client.post("/jobs", body)
    if output is OutputFormat.JSON:
        emit(made)
    else:
        say(f"Submitted job {made['id']}")


def queue(
    state: Annotated[
        list[JobState] | None,
        typer.Option("--state", "-t", help="Only jobs in this state (repeatable)."),
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-A", help="Only this project's jobs.")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", "-a", help="Also ended jobs (every state).")
    ] = False,
    reasons: Annotated[
        bool, typer.Option("--reasons/--no-reasons", help="Ask why each pending job waits.")
    ] = True,
    output: Output = OutputFormat.TABLE,
) -> None:
    """The job queue, like squeue: jobs not yet ended, unless --state or --all."""
    states = [s.value for s in state] if state else ([] if every else list(ACTIVE))
    with service(output) as client:
        items = list(client.pages("/jobs", {"state": states or None, "project": project}))
        if output is OutputFormat.JSON:
            emit(items)
            return
        names = Names(client)
        why_of = _reasons(client, items) if reasons else {}
        rows = [
            (
                j["id"],
                names.project(j["project_id"]),
                j["name"],
                j["state"].upper(),
                j["gpus"],
                j["gpu_type"],
                slurm_time(j["walltime"]),
                when(j["submitted_at"]),
                why_of.get(j["id"], ""),
            )
            for j in items
        ]
    show(
        table(
            [
                "JOBID",
                "PROJECT",
                "NAME",
                "STATE",
                "GPUS",
                "GPU_TYPE",
                "TIME_LIMIT",
                "SUBMITTED",
                "REASON",
            ],
            rows,
        )
    )


def _reasons(client: Client, items: list[Json]) -> dict[int, str]:
    found: dict[int, str] = {}
    pending = [j["id"] for j in items if j["state"] == JobState.PENDING.value]
    for number, job_id in enumerate(pending):
        if number >= REASONS_SHOWN:
            found[job_id] = "(kizuna why)"
            continue
        try:
            reason = client.get(f"/jobs/{job_id}/reason")
        except CliError as error:
            if error.exit_code in (EXIT_NOT_FOUND, EXIT_AUTH):  # gone or hidden meanwhile
                continue
            raise
        found[job_id] = "(starts next cycle)" if reason is None else f"({reason['code']})"
    return found


def job_show(
    job: Annotated[int, typer.Argument(metavar="JOB", min=1, help="The job's id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """One job: its request, its state, why it waits and its timeline (scontrol show job)."""
    with service(output) as client:
        found = client.get(f"/jobs/{job}")
        if output is OutputFormat.JSON:
            emit(found)
            return
        full = Names(client).project(found["project_id"])
    reason = found.get("reason")
    fields(
        [
            ("JobId", found["id"]),
            ("JobName", found["name"]),
            ("Project", full),
            ("SubmittedBy", found["submitted_by"]),
            ("State", found["state"].upper()),
            ("Reason", f"{reason['code']}: {reason['message']}" if reason else None),
            ("EarliestStart", when(reason.get("earliest_start")) if reason else None),
            ("Gpus", found["gpus"]),
            ("GpusPerNode", found["gpus_per_node"]),
            ("GpuType", found["gpu_type"]),
            ("OneDomain", "yes" if found["one_domain"] else "no"),
            ("Priority", found["priority"]),
            ("TimeLimit", slurm_time(found["walltime"])),
            ("SubmitTime", when(found["submitted_at"])),
            ("StartTime", when(found["started_at"])),
            ("EndTime", when(found["ended_at"])),
            ("ExitCode", found["exit_code"]),
            ("Command", " ".join(found["command"])),
        ]
    )
    events = found.get("events") or []
    if events:
        say("")
        show(
            table(
                ["AT", "EVENT", "BY", "MESSAGE"],
                [(when(e["at"]), e["kind"], e["actor"], e["message"]) for e in events],
                title="Timeline",
            )
        )


def why(
    job: Annotated[int, typer.Argument(metavar="JOB", min=1, help="The job's id.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """Why a job waits: the scheduler's reason code and sentence, or that it does not wait."""
    with service(output) as client:
        reason = client.get(f"/jobs/{job}/reason")
        state = JobState.PENDING.value if reason else client.get(f"/jobs/{job}")["state"]
    if output is OutputFormat.JSON:
        emit({"job": job, "state": state, "waiting": reason is not None, "reason": reason})
        return
    if reason is not None:
        say(f"Job {job} is waiting: {reason['code']}")
        say(f"  {reason['message']}")
        if reason.get("earliest_start"):
            say(f"  Earliest start: {when(reason['earliest_start'])}")
    elif state == JobState.PENDING.value:
        say(f"Job {job} is not waiting for anything: it starts at the next scheduling cycle.")
    else:
        say(f"Job {job} is not waiting: it is {state}.")


def cancel(
    jobs: Annotated[list[int], typer.Argument(metavar="JOB...", min=1, help="Job ids.")],
    output: Output = OutputFormat.TABLE,
) -> None:
    """Cancel jobs, like scancel. Goes on past a job it cannot cancel; the exit code is that
    of the first failure."""
    results: list[dict[str, Any]] = []
    code = EXIT_OK
    with service(output) as client:
        for job in dict.fromkeys(jobs):
            try:
                done = client.post(f"/jobs/{job}/cancel")
            except CliError as error:
                if error.exit_code == EXIT_UNREACHABLE:
                    raise
                code = code or error.exit_code
                results.append({"job": job, "cancelled": False, "problem": error.problem})
                if output is not OutputFormat.JSON:
                    print_problem(error, output)
                continue
            results.append({"job": job, "cancelled": True, "state": done["state"]})
            if output is not OutputFormat.JSON:
                say(f"Cancelled job {job}")
    if output is OutputFormat.JSON:
        emit(results)
    if code:
        raise typer.Exit(code)


def logs(
    job: Annotated[int, typer.Argument(metavar="JOB", min=1, help="The job's id.")],
    rank: Annotated[int, typer.Option("--rank", "-r", min=0, help="Which rank's log.")] = 0,
    run: Annotated[
        int | None,
        typer.Option("--run", min=1, help="Which run (segment) of the job (default: latest)."),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing until the run has ended (tail -f)."),
    ] = False,
) -> None:
    """A rank's output (stdout and stderr). With --follow, waits for a pending job to start
    and prints what its run writes until the run ends."""
    offset, state = 0, "pending"
    with service(OutputFormat.TABLE) as client:
        while True:
            params = {"rank": rank, "run": run, "offset": offset}
            answer = client.raw(f"/jobs/{job}/logs", params, "text/plain")
            data = answer.content
            if data:
                typer.echo(data, nl=False)
            offset = int(answer.headers.get("x-log-offset", offset + len(data)))
            state = answer.headers.get("x-run-state", "ended")
            if run is None and "x-run-segment" in answer.headers:
                run = int(answer.headers["x-run-segment"])  # offsets are of this run's file
            if data:
                continue  # there may be more at once
            if not follow and state == "pending":
                note(f"Job {job} has not started yet: nothing to show (--follow waits for it).")
            if not follow or state == "ended":
                return
            clock.sleep(FOLLOW_EVERY_S)
