"""`kizuna audit checkpoint|verify`: the tamper-evident audit log, checked by the caller.

`verify` does not trust the service's word: it fetches every record and rebuilds the Merkle
tree itself (`kizuna.audit.verify_log`), checks the latest signed checkpoint with the
verifier key (the service's, or one the auditor pins with --key/--key-file), and, given a
checkpoint saved earlier (--checkpoint), checks with a consistency proof that today's log
extends the one seen then (`verify_extension`). `--record N` checks one record with an
inclusion proof (`verify_record`). Any problem: a table of them and exit code 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kizuna.cli.output import OutputFormat
from kizuna.cli.present import Output, emit, say, service

audit = typer.Typer(
    help="The tamper-evident audit log: signed checkpoints, verification by anyone.",
    no_args_is_help=True,
    add_completion=False,
)


@audit.command("checkpoint")
def checkpoint(output: Output = OutputFormat.TABLE) -> None:
    """Sequence pending audit entries and sign a checkpoint of the log now (platform roles)."""
    with service(output) as client:
        made = client.post("/audit/checkpoints")
    if output is OutputFormat.JSON:
        emit(made)
        return
    say(f"Checkpoint: {made['size']} records, root {made['root']}")
    typer.echo(made["note"], nl=False)


@audit.command("verify")
def verify(
    checkpoint_file: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint saved earlier (--save-checkpoint): check today's log extends it.",
        ),
    ] = None,
    save_checkpoint: Annotated[
        Path | None,
        typer.Option(help="Once verified, save the latest checkpoint here for next time."),
    ] = None,
    record: Annotated[
        int | None,
        typer.Option(min=0, help="Check only record N, by an inclusion proof."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(help="Pin the verifier key (name+id+key) instead of the service's."),
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="Pin the verifier key read from this file.")
    ] = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Verify the audit log: every record against the signed checkpoints, and (with
    --checkpoint) that the log only grew since a checkpoint you saved. Exit 1 on a problem."""
    from kizuna.cli import audit_check  # noqa: PLC0415 (the crypto loads for this verb only)

    audit_check.run(output, checkpoint_file, save_checkpoint, record, key, key_file)
