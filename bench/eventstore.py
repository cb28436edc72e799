"""Event-store figures, each a ratio to a baseline measured in the same run.

    python bench/eventstore.py append   [--clients 1 8] [--seconds 2] [--rounds 7] [--emmett]
                                        [--base-src OTHER_CHECKOUT/src]
    python bench/eventstore.py bulk     [--batches 60] [--batch-size 500] [--rounds 3]
    python bench/eventstore.py catchup  [--events 300000] [--batch-size 1000] [--rounds 7]
                                        [--read-ahead-connections 2] [--read-ahead-pages 20]
                                        [--page-reader columns ...]   [--base-src MAIN/src]
    python bench/eventstore.py all      (append --clients 1 8, then catchup, defaults: ~5 min)

Each command creates a throw-away database (migrated like production), runs as the app role
`lufy_app`, prints one line per figure and drops the database. The baselines write the same
rows into a table created with `LIKE lufy.events INCLUDING ALL` (same columns, defaults, identity,
checks and indexes; no triggers), so the ratio is the cost of the event store itself.
Admin connection: LUFY_BENCH_ADMIN_URL (default: the current OS user on 127.0.0.1:5432); the
database is named lufy_bench_<LUFY_BENCH_TAG><random>.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import psycopg
from benchkit import drop_database

from lufy.eventstore import EventCodec, EventStore, NewEvent, Notifier, Subscription, younggc
from lufy.eventstore import subscription as subscription_module
from lufy.eventstore.envelope import Event, EventMetadata
from lufy.migrate import migrate

ADMIN_BASE = os.environ.get(
    "LUFY_BENCH_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)


class TrackPlayed(Event, frozen=True, tag="bench.track_played"):
    """About the size of a real analytics fact (~200 bytes of JSON)."""

    track_id: uuid.UUID
    artist_id: uuid.UUID
    session_id: str
    listened_ms: int
    source: str = "library"
    country: str | None = None
    device: str | None = None


CODEC = EventCodec([TrackPlayed])
_encoder = msgspec.json.Encoder()
_TRACK, _ARTIST = uuid.uuid4(), uuid.uuid4()


def _event(i: int) -> TrackPlayed:
    return TrackPlayed(
        track_id=_TRACK,
        artist_id=_ARTIST,
        session_id=f"s-{i:08d}",
        listened_ms=30_000 + i % 1000,
        country="DE",
        device="ios",
    )


def _metadata(cls: type[EventMetadata] = EventMetadata) -> EventMetadata:
    return cls(correlation_id=str(uuid.uuid4()), actor_id=str(_ARTIST))


# --- database lifecycle -------------------------------------------------------------------------


def _url(dbname: str, user: str | None = None) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = base.netloc
    if user:
        netloc = f"{user}:{user}@{base.hostname}:{base.port or 5432}"
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


class BenchDatabase:
    def __init__(self) -> None:
        # LUFY_BENCH_TAG (e.g. a branch name) marks whose database it is on a shared server.
        self.name = f"lufy_bench_{os.environ.get('LUFY_BENCH_TAG', '')}{uuid.uuid4().hex[:8]}"
        self.admin_url = _url(self.name)
        self.app_url = _url(self.name, "lufy_app")

    def __enter__(self) -> BenchDatabase:
        migrate(self.admin_url, self.app_url)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                "CREATE SCHEMA bench;"
                "CREATE TABLE bench.plain_events (LIKE lufy.events INCLUDING ALL);"
                "GRANT USAGE ON SCHEMA bench TO lufy_app;"
                "GRANT SELECT, INSERT ON bench.plain_events TO lufy_app;"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        drop_database(ADMIN_BASE, self.name)


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


# --- single-event appends -----------------------------------------------------------------------

_PLAIN_INSERT = (
    "INSERT INTO bench.plain_events (event_id, stream_type, stream_id, stream_version, type,"
    " schema_version, data, metadata, occurred_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)"
)


async def _timed(
    clients: int, seconds: float, make: Callable[[int], Awaitable[Callable[[], Awaitable[None]]]]
) -> float:
    """Run `clients` loops of one-operation calls for `seconds`; return operations per second."""
    ops = [await make(c) for c in range(clients)]
    counts = [0] * clients
    start = time.perf_counter()
    deadline = start + seconds

    async def loop(c: int) -> None:
        op = ops[c]
        while time.perf_counter() < deadline:
            await op()
            counts[c] += 1

    await asyncio.gather(*(loop(c) for c in range(clients)))
    return sum(counts) / (time.perf_counter() - start)


def _store_op(
    store: EventStore,
    conn: psycopg.AsyncConnection[Any],
    seq: list[int],
    envelope: Any = sys.modules[NewEvent.__module__],
) -> Callable[[], Awaitable[None]]:
    """One append per call; `envelope`: the module whose NewEvent and EventMetadata the store
    takes (another checkout's with --base-src)."""
    stream = uuid.uuid4().hex[:12]
    version = [0]
    new_event, metadata = envelope.NewEvent, envelope.EventMetadata

    async def op() -> None:
        seq[0] += 1
        result = await store.append(
            conn,
            "bench",
            stream,
            [new_event(event=_event(seq[0]), metadata=_metadata(metadata))],
            expected=version[0],
        )
        version[0] = result.stream_version

    return op


def _plain_op(
    conn: psycopg.AsyncConnection[Any], seq: list[int], *, one_cursor: bool = False
) -> Callable[[], Awaitable[None]]:
    """One INSERT per call of the row the store writes: the same payload (the JSON object
    without its type tag, as the store keeps it) and metadata. `one_cursor`: through one cursor
    per connection, as the store's appends go (--plain-one-cursor), instead of
    `conn.execute`'s cursor per call."""
    stream = uuid.uuid4().hex[:12]
    version = [0]
    execute = conn.cursor().execute if one_cursor else conn.execute

    async def op() -> None:
        seq[0] += 1
        version[0] += 1
        await execute(
            _PLAIN_INSERT,
            (
                uuid.uuid4(),
                "bench",
                stream,
                version[0],
                "bench.track_played",
                1,
                "{" + _encoder.encode(_event(seq[0])).decode()[_TAG_PREFIX:],
                _encoder.encode(_metadata()).decode(),
                datetime.now(UTC),
            ),
            prepare=True,
        )

    return op


_EMMETT_PACKAGE = "@event-driven-io/emmett-postgresql@0.42.0"
_EMMETT_SCRIPT = Path(__file__).with_name("emmett_peer.mjs")


def _install_emmett(folder: Path) -> None:
    """Emmett is a peer to measure against, never a dependency of Lufy: it goes into a scratch
    folder of its own, only when `--emmett` is given."""
    if (folder / "node_modules" / "@event-driven-io" / "emmett-postgresql").is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"private": true}\n')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder), _EMMETT_PACKAGE],
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def _emmett_rate(folder: Path, url: str, clients: int, seconds: float) -> float:
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(_EMMETT_SCRIPT),
        url,
        str(clients),
        str(seconds),
        env={**os.environ, "EMMETT_DIR": str(folder)},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"emmett_peer.mjs exited with {proc.returncode}")
    return float(json.loads(out.decode().strip().splitlines()[-1])["rate"])


def _backend_cpu(pids: list[int]) -> float | None:
    """Seconds on CPU of these server processes (Linux /proc/<pid>/schedstat, readable when the
    server runs on this machine as this user or the bench runs as root), else None."""
    try:
        return sum(int(Path(f"/proc/{p}/schedstat").read_text().split()[0]) for p in pids) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class _CpuMeter:
    """CPU per operation of each side: this process (the clients, and the store's notifier
    task) and every backend of the bench database (the writers' and the notifier's). On a
    2-core machine both share the cores, so when they are saturated the rate ratio follows
    the ratio of these sums; CPU per operation also moves less with the neighbours' load."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.samples: dict[str, list[tuple[float, float | None]]] = {}

    async def run(self, name: str, side: Callable[[], Awaitable[float]]) -> float:
        cur = await self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
        pids = [pid for (pid,) in await cur.fetchall()]
        c0, b0, w0 = time.process_time(), _backend_cpu(pids), time.perf_counter()
        rate = await side()
        b1, ops = _backend_cpu(pids), rate * (time.perf_counter() - w0)
        server = None if b0 is None or b1 is None else (b1 - b0) / ops * 1e6
        self.samples.setdefault(name, []).append(((time.process_time() - c0) / ops * 1e6, server))
        return rate

    def summary(self) -> str:
        parts = []
        for name, rows in self.samples.items():
            servers = [s for _, s in rows if s is not None]
            server = f"{statistics.median(servers):,.0f}" if len(servers) == len(rows) else "n/a"
            client = statistics.median(c for c, _ in rows)
            parts.append(f"{name} client {client:,.0f} + server {server}")
        return "  CPU µs per append (medians): " + "; ".join(parts)


def _load_base(src: Path) -> ModuleType:
    """`lufy.eventstore` of another checkout (its `src` folder, e.g. a worktree of main), loaded
    beside this one: the old code's appends are then a side of the same run, interleaved with
    the new code's on the same connections. Its modules import each other as they were loaded;
    sys.modules is given back this checkout's afterwards."""
    ours = {k: m for k, m in sys.modules.items() if k == "lufy" or k.startswith("lufy.")}
    for name in ours:
        del sys.modules[name]
    sys.path.insert(0, str(src))
    try:
        base = importlib.import_module("lufy.eventstore")
    finally:
        sys.path.remove(str(src))
        for name in [k for k in sys.modules if k == "lufy" or k.startswith("lufy.")]:
            del sys.modules[name]
        sys.modules.update(ours)
    return base


async def bench_append(
    clients_list: list[int],
    seconds: float,
    rounds: int,
    emmett: Path | None,
    base_src: Path | None = None,
    plain_one_cursor: bool = False,
) -> None:
    seq = [0]
    if emmett is not None:
        _install_emmett(emmett)
    base = None if base_src is None else _load_base(base_src)
    with BenchDatabase() as bench:
        # As bootstrap() builds it: the post-commit NOTIFY goes through the notifier.
        store = EventStore(CODEC, notifier=Notifier(bench.app_url))
        assert store.notifier is not None
        await store.notifier.start()
        if base is not None:
            base_store = base.EventStore(
                base.EventCodec([TrackPlayed]), notifier=base.Notifier(bench.app_url)
            )
            await base_store.notifier.start()
        conns = [await _connect(bench.app_url) for _ in range(max(clients_list))]
        for clients in clients_list:

            async def make_store(c: int) -> Callable[[], Awaitable[None]]:
                return _store_op(store, conns[c], seq)

            async def make_plain(c: int) -> Callable[[], Awaitable[None]]:
                return _plain_op(conns[c], seq, one_cursor=plain_one_cursor)

            async def make_base(c: int) -> Callable[[], Awaitable[None]]:
                return _store_op(base_store, conns[c], seq, base)

            meter = _CpuMeter(conns[0])
            sides: dict[str, Callable[[], Awaitable[float]]] = {
                "plain": partial(meter.run, "plain", partial(_timed, clients, seconds, make_plain)),
                "store": partial(meter.run, "store", partial(_timed, clients, seconds, make_store)),
            }
            if base is not None:
                sides["base"] = partial(
                    meter.run, "base", partial(_timed, clients, seconds, make_base)
                )
            if emmett is not None:
                sides["emmett"] = partial(_emmett_rate, emmett, bench.admin_url, clients, seconds)
            rates: dict[str, list[float]] = {name: [] for name in sides}
            order = list(sides)
            for r in range(rounds):
                # Interleaved, rotating which goes first, so drift on a shared machine falls
                # on every side; each figure is the median of the per-round ratios.
                for name in order[r % len(order) :] + order[: r % len(order)]:
                    rates[name].append(await sides[name]())
            stores, plains = rates["store"], rates["plain"]
            ratio = statistics.median(o / p for o, p in zip(stores, plains, strict=True))
            ours, plain = statistics.median(stores), statistics.median(plains)
            print(
                f"append 1 event/commit, {clients} client(s): store {ours:,.0f} ev/s, "
                f"plain INSERT {plain:,.0f} rows/s (medians of {rounds}), "
                f"median pair ratio {ratio:.2f} (target >= {0.8 if clients == 1 else 0.85:.2f})",
                flush=True,
            )
            print(meter.summary(), flush=True)
            if base is not None:
                olds = rates["base"]
                old = statistics.median(o / p for o, p in zip(olds, plains, strict=True))
                gain = statistics.median(o / b for o, b in zip(stores, olds, strict=True))
                print(
                    f"  base ({base_src}): {statistics.median(olds):,.0f} ev/s, median pair ratio"
                    f" to plain INSERT {old:.2f}; this code ÷ base, median pair ratio {gain:.2f}",
                    flush=True,
                )
            if emmett is not None:
                peer = rates["emmett"]
                ratio = statistics.median(o / p for o, p in zip(stores, peer, strict=True))
                print(
                    f"  peer, Emmett ({_EMMETT_PACKAGE.rsplit('@', 1)[1]}), {clients} "
                    f"client(s): {statistics.median(peer):,.0f} ev/s; Lufy ÷ Emmett median "
                    f"pair ratio {ratio:.2f}" + (" (target >= 1.90)" if clients == 8 else ""),
                    flush=True,
                )
        for conn in conns:
            await conn.close()
        await store.notifier.stop()
        if base is not None:
            await base_store.notifier.stop()


# --- bulk appends ---------------------------------------------------------------------------------

_TAG_PREFIX = len('{"type":"bench.track_played",')
_PLAIN_COPY = (
    "COPY bench.plain_events (event_id, stream_type, stream_id, type, schema_version, data,"
    " metadata, occurred_at) FROM STDIN"
)


async def bench_bulk(batches: int, batch_size: int, rounds: int) -> None:
    with BenchDatabase() as bench:
        store = EventStore(CODEC, notifier=Notifier(bench.app_url))
        assert store.notifier is not None
        await store.notifier.start()
        conn = await _connect(bench.app_url)
        seq = 0

        def batch() -> list[NewEvent]:
            nonlocal seq
            out = []
            for _ in range(batch_size):
                seq += 1
                out.append(
                    NewEvent(
                        event=_event(seq),
                        metadata=_metadata(),
                        occurred_at=datetime.now(UTC),
                        stream_type="listener",
                        stream_id=f"l-{seq % 5000}",
                    )
                )
            return out

        async def plain(events: list[NewEvent]) -> None:
            # The same rows, already encoded: the cost of COPY itself and nothing else.
            rows = [
                (
                    e.event_id,
                    e.stream_type,
                    e.stream_id,
                    "bench.track_played",
                    1,
                    "{" + _encoder.encode(e.event).decode()[_TAG_PREFIX:],
                    _encoder.encode(e.metadata).decode(),
                    e.occurred_at,
                )
                for e in events
            ]
            start = time.perf_counter()
            async with conn.transaction(), conn.cursor() as cur, cur.copy(_PLAIN_COPY) as copy:
                for row in rows:
                    await copy.write_row(row)
            timings["plain"] += time.perf_counter() - start

        async def ours(events: list[NewEvent]) -> None:
            start = time.perf_counter()
            result = await store.append_bulk(conn, events)
            timings["store"] += time.perf_counter() - start
            assert len(result.inserted) == len(events)

        timings = {"plain": 0.0, "store": 0.0}
        for _ in range(rounds):
            for _ in range(batches):
                await plain(batch())
                await ours(batch())
        n = batches * batch_size * rounds
        p, s = n / timings["plain"], n / timings["store"]
        print(
            f"bulk append, {batch_size}-event batches: store {s:,.0f} ev/s, "
            f"raw COPY {p:,.0f} rows/s, ratio {s / p:.2f} (target >= 0.60)",
            flush=True,
        )
        await conn.close()
        await store.notifier.stop()


# --- subscription catch-up ------------------------------------------------------------------------

_FILL = """
INSERT INTO lufy.events (event_id, stream_type, stream_id, type, schema_version, data, metadata,
                         occurred_at)
SELECT gen_random_uuid(), 'listener', 'l-' || (g %% 5000), 'bench.track_played', 1,
       jsonb_build_object('track_id', %(track)s::text, 'artist_id', %(artist)s::text,
                          'session_id', 's-' || g, 'listened_ms', 30000 + g %% 1000,
                          'source', 'library', 'country', 'DE', 'device', 'ios'),
       jsonb_build_object('correlation_id', gen_random_uuid()::text),
       now()
FROM generate_series(%(lo)s, %(hi)s - 1) AS g
"""


_DEFAULT_GC = "-default-gc"
_ONE_BATCH = "-one-batch"
_RESTART = "-restart"


def _restarting_pages(store: EventStore, conns: Any, after: Any, **kw: Any) -> Any:
    """The read-ahead before es-copy: `read_ahead_pages` pages (EventStore.pages_ahead), then
    the reader reads a page on its own connection and starts another on new connections."""
    kw.pop("to_barrier")
    return store.pages_ahead(conns[0], after, more=conns[1:], **kw)


def _base_store(base: ModuleType) -> Any:
    """The base checkout's EventStore with its page decoder built now, while its own modules
    stand in sys.modules (msgspec reads RecordedEvent's annotations from its module there)."""
    store = base.EventStore(base.EventCodec([TrackPlayed]))
    names = ("lufy.eventstore.envelope", "lufy.eventstore.codec")
    ours = {name: sys.modules[name] for name in names}
    sys.modules.update({name: getattr(base, name.rsplit(".", 1)[1]) for name in names})
    try:
        store.codec.page_decoding()
    finally:
        sys.modules.update(ours)
    return store


_COPY_OUT = (
    "COPY (SELECT global_position, transaction_id, event_id, stream_type, stream_id,"
    " stream_version, type, schema_version, data, metadata, occurred_at, recorded_at"
    " FROM lufy.events ORDER BY transaction_id, global_position) TO STDOUT"
)


async def bench_catchup(
    events: int,
    batch_size: int,
    rounds: int,
    with_rows: bool,
    connections: int = 2,
    readers: tuple[str, ...] = ("columns",),
    pages: int = 20,
    base_src: Path | None = None,
) -> None:
    # A reader "<page reader>-default-gc" leaves the young GC threshold alone while catching up
    # (younggc.YOUNG set to 0 for its rounds): the reader before the fourth pass. One ending in
    # "-one-batch" reads ahead one batch per query (read_ahead_events=batch_size): before the
    # fifth pass. One ending in "-restart" reads ahead `pages` pages and then starts another
    # read-ahead on new connections: before es-copy (now the read-ahead goes on to the barrier).
    stores = {
        reader: EventStore(
            CODEC,
            page_reader=reader.split("-")[0],  # type: ignore[arg-type]
        )
        for reader in readers
    }
    store = stores[readers[0]]
    # With --base-src, "base" is another checkout's Subscription and EventStore (its default
    # page reader), in the same rounds: e.g. main's code against this one.
    base = None if base_src is None else _load_base(base_src)
    if base is not None:
        readers = (*readers, "base")
    with BenchDatabase() as bench:
        step = 10_000  # one transaction per 10k events, like many writers over time
        with psycopg.connect(bench.admin_url, autocommit=True) as admin:
            t0 = time.perf_counter()
            for lo in range(0, events, step):
                admin.execute(
                    _FILL,
                    {"lo": lo, "hi": min(events, lo + step), "track": _TRACK, "artist": _ARTIST},
                )
            admin.execute("VACUUM ANALYZE lufy.events")
            print(f"  filled {events:,} events in {time.perf_counter() - t0:.0f}s", flush=True)
        conn = await _connect(bench.app_url)

        async def copy_out() -> float:
            # Baseline: the same rows, in log order, streamed by COPY and not even parsed.
            start = time.perf_counter()
            size = 0
            async with conn.cursor() as cur, cur.copy(_COPY_OUT) as copy:
                async for chunk in copy:
                    size += len(chunk)
            assert size > events * 100
            return events / (time.perf_counter() - start)

        async def subscription(reader: str) -> float:
            young = younggc.YOUNG
            parallel_pages = subscription_module.parallel_pages
            if _DEFAULT_GC in reader:
                younggc.YOUNG = 0
            if _RESTART in reader:
                subscription_module.parallel_pages = _restarting_pages  # type: ignore[assignment]
            try:
                return await catch_up(reader)
            finally:
                younggc.YOUNG = young
                subscription_module.parallel_pages = parallel_pages

        async def catch_up(reader: str) -> float:
            make: Any = Subscription
            if reader == "base":
                make = base.Subscription
                stores[reader] = stores.get(reader) or _base_store(base)
            sub = make(
                stores[reader],
                bench.app_url,
                batch_size=batch_size,
                read_ahead_connections=connections,
                read_ahead_pages=pages,
                read_ahead_events=batch_size if _ONE_BATCH in reader else 5000,
            )
            start = time.perf_counter()
            delivered = 0
            async for page in sub.pages(conn):
                delivered += len(page.events)  # the no-op consumer
                if delivered >= events:
                    sub.stop()
            assert delivered == events
            return delivered / (time.perf_counter() - start)

        async def row_by_row() -> float:
            # For reference: the page read and decoded event by event, as before issue 18.
            start = time.perf_counter()
            params: dict[str, Any] = {"tx": 0, "pos": 0, "limit": batch_size}
            delivered = 0
            while True:
                page, _, _ = await store._read_rows(conn, query_types=None, params=params)
                delivered += len(page)
                if len(page) < batch_size:
                    break
                params |= {"tx": page[-1].transaction_id, "pos": page[-1].global_position}
            assert delivered == events
            return delivered / (time.perf_counter() - start)

        copies: list[float] = []
        subs: dict[str, list[float]] = {reader: [] for reader in readers}
        rows: list[float] = []
        for r in range(rounds):
            # Interleaved, alternating which goes first (see bench_append); with several page
            # readers, each is measured once per round, right after or before the COPY.
            if r % 2:
                for reader in readers:
                    subs[reader].append(await subscription(reader))
                copies.append(await copy_out())
            else:
                copies.append(await copy_out())
                for reader in readers:
                    subs[reader].append(await subscription(reader))
            if with_rows:
                rows.append(await row_by_row())
        await conn.close()
        for reader, rates in subs.items():
            ratio = statistics.median(o / p for o, p in zip(rates, copies, strict=True))
            print(
                f"subscription catch-up over {events:,} events (pages of {batch_size}, "
                f"{reader} page reader, read ahead on {connections} connection(s)): "
                f"{statistics.median(rates):,.0f} ev/s decoded, COPY … TO STDOUT "
                f"{statistics.median(copies):,.0f} rows/s (medians of {rounds}), "
                f"median pair ratio {ratio:.2f} (target >= 0.50)",
                flush=True,
            )
        if base is not None:
            gain = statistics.median(
                o / b for o, b in zip(subs[readers[0]], subs["base"], strict=True)
            )
            print(
                f"  {readers[0]} (this code) ÷ base ({base_src}), median pair ratio {gain:.2f}",
                flush=True,
            )
        if rows:
            ratio = statistics.median(o / p for o, p in zip(rows, copies, strict=True))
            print(
                f"  for reference, pages decoded event by event: "
                f"{statistics.median(rows):,.0f} ev/s, ratio to COPY {ratio:.2f}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("append")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument(
        "--emmett",
        action="store_true",
        help="also measure Emmett's PostgreSQL store (npm, installed into --emmett-dir)",
    )
    p.add_argument(
        "--emmett-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "lufy-bench-emmett",
        help="scratch folder for the Emmett npm package (never part of Lufy)",
    )
    p.add_argument(
        "--base-src",
        type=Path,
        help="the src folder of another checkout (e.g. a worktree of main): its EventStore is"
        " a third side of the same run, interleaved",
    )
    p.add_argument(
        "--plain-one-cursor",
        action="store_true",
        help="the plain INSERTs go through one cursor per connection, as the store's appends"
        " do, rather than conn.execute's cursor per call",
    )
    p = sub.add_parser("bulk")
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p = sub.add_parser("catchup")
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--row-by-row", action="store_true", help="also time the old per-event decode")
    p.add_argument("--read-ahead-connections", type=int, default=2)
    p.add_argument("--read-ahead-pages", type=int, default=20)
    p.add_argument(
        "--base-src",
        type=Path,
        help="the src folder of another checkout (e.g. a worktree of main): its Subscription"
        " and EventStore are one more reader of the same rounds (base)",
    )
    p.add_argument(
        "--page-reader",
        nargs="+",
        choices=[
            r + gc + one + restart
            for r in ("columns", "copy", "text", "plain", "json")
            for gc in ("", _DEFAULT_GC)
            for one in ("", _ONE_BATCH)
            for restart in ("", _RESTART)
        ],
        # The figure's reader alone: another reader in the same rounds made the COPY baseline
        # slower (docs/benchmarks.md, "Quiet reruns after the morning's merges").
        default=["columns"],
        help="how pages are read: column by column, each column decoded in one call (columns:"
        " the default reader); plain columns in one row of text, the JSON built by the"
        " client (text), the same sent by COPY … TO STDOUT (copy), the"
        " same one row per event (plain: the reader"
        " before the fourth pass), or the JSON built by the server (json: before the third);"
        " with -default-gc, the young GC threshold is left alone while catching up (as before"
        " the fourth pass); with -one-batch, a read-ahead reads one batch per query (as before"
        " the fifth pass: now 5000 events, handed out in batches); with -restart, a read-ahead"
        " stops after --read-ahead-pages pages and the next one starts on new connections (as"
        " before es-copy: text-restart is the code before it); each is timed",
    )
    sub.add_parser("all", help="append (1 and 8 clients) and catchup with their defaults")
    args = parser.parse_args(argv)
    if args.command == "all":
        print(f"load average {os.getloadavg()}", flush=True)
        asyncio.run(bench_append([1, 8], 2.0, 7, None))
        asyncio.run(bench_catchup(300_000, 1000, 7, False))
        print(f"load average {os.getloadavg()}", flush=True)
    elif args.command == "append":
        emmett = args.emmett_dir if args.emmett else None
        asyncio.run(bench_append(args.clients, args.seconds, args.rounds, emmett, args.base_src))
    elif args.command == "bulk":
        asyncio.run(bench_bulk(args.batches, args.batch_size, args.rounds))
    else:
        asyncio.run(
            bench_catchup(
                args.events,
                args.batch_size,
                args.rounds,
                args.row_by_row,
                args.read_ahead_connections,
                tuple(args.page_reader),
                args.read_ahead_pages,
                args.base_src,
            )
        )


if __name__ == "__main__":
    main()
