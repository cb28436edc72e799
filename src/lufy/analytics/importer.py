"""`lufy events import FILE`: NDJSON analytics events into the log, for backfills.

Each line is one event in the ingestion shape plus optional `listener_id`, `country` and
`device`; any past time is accepted. Lines go through the same validation, sampling and COPY
path as the HTTP API, in batches, so a re-run appends nothing twice (duplicates by event_id).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.errors import LufyError

__all__ = ["ImportRejectedError", "ImportReport", "ImportResources", "import_file", "import_lines"]

BATCH = 2000


class ImportRejectedError(LufyError):
    title = "Some lines were rejected"


_decoder = msgspec.json.Decoder()


@dataclass
class ImportReport:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    sampled_out: int = 0
    # (line number, reason), first ones only
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rejected_count: int = 0

    def summary(self) -> str:
        return (
            f"{self.lines} line(s): {self.accepted} accepted, {self.duplicates} duplicate(s), "
            f"{self.sampled_out} sampled out, {self.rejected_count} rejected"
        )


async def import_lines(
    ingestor: Ingestor, lines: TextIO, *, on_progress: Any = None
) -> ImportReport:
    report = ImportReport()
    context = IngestContext(historical=True)
    batch: list[Any] = []
    numbers: list[int] = []

    async def flush() -> None:
        if not batch:
            return
        result = await ingestor.ingest(batch, context, event_type=ImportedEvent)
        report.accepted += result.accepted
        report.duplicates += result.duplicates
        report.sampled_out += result.sampled_out
        for rejection in result.rejected:
            _reject(report, numbers[rejection.index], rejection.reason)
        batch.clear()
        numbers.clear()

    for number, line in enumerate(lines, start=1):
        if on_progress is not None:
            on_progress(len(line.encode()))
        if not line.strip():
            continue
        report.lines += 1
        try:
            batch.append(_decoder.decode(line))
        except msgspec.DecodeError as exc:
            _reject(report, number, f"not JSON: {exc}")
            continue
        except RecursionError:
            _reject(report, number, "nested too deeply to be an event")
            continue
        numbers.append(number)
        if len(batch) >= BATCH:
            await flush()
    await flush()
    return report


def _reject(report: ImportReport, number: int, reason: str) -> None:
    report.rejected_count += 1
    if len(report.rejected) < 50:
        report.rejected.append((number, reason))


class ImportResources(Protocol):
    """What `import_file` takes from the command's container (`bootstrap.Container` has it;
    a context may not import the composition root, so it names what it uses)."""

    ingestor: Ingestor


async def import_file(container: ImportResources, path: str | Path) -> ImportReport:
    """Import `path` (or `-` for stdin) through `container.ingestor` (its pool open: the command
    runs this with `run_with_container`), with a progress bar on stderr; summary at the end."""
    ingestor = container.ingestor
    console = Console(stderr=True)
    if str(path) == "-":
        report = await import_lines(ingestor, sys.stdin)
    else:
        file = Path(path)
        with (
            Progress(
                TextColumn("importing {task.fields[name]}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as progress,
            file.open(encoding="utf-8") as lines,  # noqa: ASYNC230 - a CLI, nothing else runs
        ):
            task = progress.add_task("import", total=file.stat().st_size, name=file.name)  # noqa: ASYNC240
            report = await import_lines(
                ingestor, lines, on_progress=lambda n: progress.advance(task, n)
            )
    for number, reason in report.rejected:
        console.print(f"line {number}: {reason}", markup=False, highlight=False)
    if report.rejected_count > len(report.rejected):
        console.print(f"... and {report.rejected_count - len(report.rejected)} more rejected")
    console.print(report.summary(), markup=False, highlight=False)
    if report.rejected_count:
        # Exit status 1 so scripts notice; the accepted lines are in, and a re-run after fixing
        # the file appends only what is missing.
        raise ImportRejectedError(f"{report.rejected_count} line(s) rejected (see above)")
    return report
