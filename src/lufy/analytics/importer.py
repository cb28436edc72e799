"""`lufy events import FILE`: NDJSON analytics events into the log, for backfills.

Each line is one event in the ingestion shape plus optional `listener_id`, `country` and
`device`; any past time is accepted. Lines go through the same validation, sampling and COPY
path as the HTTP API, in batches, so a re-run appends nothing twice (duplicates by event_id).
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.errors import LufyError

__all__ = ["ImportRejectedError", "ImportReport", "ImportResources", "import_file", "import_lines"]

# Lines per `Ingestor.ingest` call: one key lookup, one idempotency check, one COPY and one
# commit per chunk.
BATCH = 10_000
# Connections a chunk is written on at once (split by session): PostgreSQL parses the JSON and
# updates six indexes per row, the larger part of the work, in as many backends.
WRITERS = 2
# Chunks between two runs of the cyclic garbage collector (see `import_lines`).
COLLECT_EVERY = 10
# The interpreter's switch interval during an import (the default is 5 ms): the event loop,
# which feeds the COPYs, waits for the worker thread preparing the next chunk to hand over the
# GIL every time the server has taken the data sent so far.
SWITCH_INTERVAL = 0.0005


class ImportRejectedError(LufyError):
    title = "Some lines were rejected"


_decoder = msgspec.json.Decoder()
_typed = msgspec.json.Decoder(ImportedEvent)


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


def _decode(line: str | bytes) -> tuple[Any, str | None]:
    """A line as the event it is (decoded straight into its Struct), else as plain JSON for
    `validate` to name what is wrong, else why it is not JSON."""
    try:
        return _typed.decode(line), None
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        pass
    try:
        return _decoder.decode(line), None
    except msgspec.DecodeError as exc:
        return None, f"not JSON: {exc}"
    except RecursionError:
        return None, "nested too deeply to be an event"


_Chunk = list[tuple[int, str | bytes]]


def _decode_chunk(chunk: _Chunk) -> tuple[list[Any], list[int], list[tuple[int, str]]]:
    """The events of a chunk of (line number, line), their line numbers, and the lines that
    are not JSON with why."""
    events: list[Any] = []
    numbers: list[int] = []
    broken: list[tuple[int, str]] = []
    for number, line in chunk:
        event, problem = _decode(line)
        if problem is not None:
            broken.append((number, problem))
        else:
            events.append(event)
            numbers.append(number)
    return events, numbers, broken


_CONTEXT = IngestContext(historical=True)


async def import_lines(
    ingestor: Ingestor, lines: Iterable[str | bytes], *, on_progress: Any = None
) -> ImportReport:
    """Check and append `lines` (text or bytes) in chunks of `BATCH` lines: each chunk is
    decoded and checked in a worker thread while the previous one is being written. A bad
    line is reported with its number; the other lines of its chunk are imported."""
    report = ImportReport()
    chunk: _Chunk = []
    size = 0
    chunks = 0
    writing: asyncio.Task[None] | None = None
    collecting = gc.isenabled()
    switch = sys.getswitchinterval()
    # The cyclic garbage collector would rescan every decoded event of the chunks in flight
    # hundreds of times per chunk (measured: a third of the import's CPU); refcounting frees
    # what holds no reference cycle. It is paused during the import and run every
    # `COLLECT_EVERY` chunks instead, over what was allocated since the import began
    # (`gc.freeze` sets the rest aside): while it runs, the event loop feeds no COPY.
    gc.freeze()
    gc.disable()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        for number, line in enumerate(lines, start=1):
            size += len(line)
            if not line.strip():
                continue
            report.lines += 1
            chunk.append((number, line))
            if len(chunk) >= BATCH:
                writing = await _next_chunk(ingestor, chunk, report, writing)
                chunk = []
                chunks += 1
                if chunks % COLLECT_EVERY == 0:
                    gc.collect()
                if on_progress is not None:
                    on_progress(size)
                size = 0
        writing = await _next_chunk(ingestor, chunk, report, writing)
        if on_progress is not None and size:
            on_progress(size)
    finally:
        if writing is not None:
            await writing
        sys.setswitchinterval(switch)
        gc.unfreeze()
        if collecting:
            gc.enable()
    return report


async def _next_chunk(
    ingestor: Ingestor, chunk: _Chunk, report: ImportReport, writing: asyncio.Task[None] | None
) -> asyncio.Task[None] | None:
    """Decode and prepare `chunk` (while `writing`, the previous chunk's append, goes on),
    report its bad lines, then start its own append; that task."""
    events, numbers, broken = await asyncio.to_thread(_decode_chunk, chunk)
    prepared = await ingestor.prepare(
        events, _CONTEXT, event_type=ImportedEvent, offload=True, writers=WRITERS
    )
    result = prepared.result
    rejected = [*broken, *((numbers[r.index], r.reason) for r in result.rejected)]
    for number, reason in sorted(rejected):
        _reject(report, number, reason)
    report.sampled_out += result.sampled_out
    if writing is not None:
        await writing

    if not report.duplicates:
        # No id of this import was in the log so far: copy straight away, the unique index on
        # event_id is the check (`BulkRows.check_first`); once one was, look ids up first (a
        # file imported again is all duplicates).
        prepared.rows = [msgspec.structs.replace(r, check_first=False) for r in prepared.rows]

    async def write() -> None:
        written = await ingestor.write(prepared)
        report.accepted += written.accepted
        report.duplicates += written.duplicates

    return asyncio.create_task(write()) if prepared.rows else None


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
        report = await import_lines(ingestor, sys.stdin.buffer)
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
            file.open("rb") as lines,  # noqa: ASYNC230 - a CLI, nothing else runs
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
