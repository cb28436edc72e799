"""`lufy seed --demo`: artists, published tracks, listeners and weeks of listening.

Artists are registered through the accounts service and their tracks go through the catalog's
real upload and transcoding path (a generated tone, so no media files are needed). Plays are
generated with a diurnal cycle in each listener's zone, a long tail of popularity, skips,
completions, likes and follows, and appended through the import path (`Ingestor`, the same
validation, sampling and COPY as `lufy events import`). Ids are derived from `--seed`, so running
it again adds nothing twice.
"""

from __future__ import annotations

import asyncio
import io
import math
import random
import uuid
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click
from rich.progress import Progress

from lufy.identity import Principal
from lufy.settings import get_settings
from lufy.sqlfiles import load_queries

if TYPE_CHECKING:
    from lufy.accounts.service import AccountService
    from lufy.bootstrap import Container
    from lufy.catalog.service import CatalogService

__all__ = ["seed_command"]

_Q = load_queries("lufy.demo", "seed.sql")
_NS = uuid.UUID("6c756679-0000-4000-8000-000000000005")
PASSWORD = "lufy demo artist password"
_ARTISTS = (
    "Nova Lake",
    "The Quiet Ones",
    "Mira Sol",
    "Deltawave",
    "Oskar & Bo",
    "Kiri",
    "Low Tide",
    "Saffron Choir",
)
_WORDS = (
    "Morning",
    "Static",
    "Harbour",
    "Glass",
    "Neon",
    "Paper",
    "River",
    "Ghost",
    "Summer",
    "Lantern",
    "Atlas",
    "Velvet",
    "Echo",
    "Cinder",
    "Meadow",
    "Orbit",
)
# country, zone, share of listeners
_PLACES = (
    ("SE", "Europe/Stockholm", 3),
    ("US", "America/New_York", 5),
    ("IN", "Asia/Kolkata", 3),
    ("BR", "America/Sao_Paulo", 2),
    ("DE", "Europe/Berlin", 2),
    (None, "UTC", 1),
)
_DEVICES = (("mobile", 6), ("desktop", 3), ("tablet", 1), (None, 1))
_SOURCES = (("playlist", 5), ("search", 2), ("album", 2), ("radio", 1), (None, 1))


@dataclass(frozen=True)
class _Listener:
    user_id: uuid.UUID | None
    anonymous_id: str
    country: str | None
    zone: ZoneInfo
    device: str | None
    appetite: float  # relative number of sessions


def _tone(seconds: int, frequency: float) -> bytes:
    rate = 8000
    frames = bytearray()
    for i in range(seconds * rate):
        envelope = 0.5 + 0.5 * math.sin(2 * math.pi * i / (rate * 2))
        sample = int(12000 * envelope * math.sin(2 * math.pi * frequency * i / rate))
        frames += sample.to_bytes(2, "little", signed=True)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


async def _artist(container: Container, accounts: AccountService, a: int) -> Principal:
    """Demo artist number `a` (registered when missing), as a principal."""
    email = f"artist{a + 1}@demo.lufy.local"
    async with container.db.transaction(role="system") as conn:
        cur = await conn.execute(_Q.user_by_email, [email])
        row = await cur.fetchone()
    if row is None:
        user = await accounts.register(
            email=email,
            password=PASSWORD,
            role="artist",
            display_name=_artist_name(a),
            verified=True,
            via="cli",
        )
        artist_id = user.id
    else:
        artist_id = row[0]
    return Principal(user_id=artist_id, role="artist", session_id=uuid.uuid4())


def _artist_name(a: int) -> str:
    return _ARTISTS[a % len(_ARTISTS)] + (f" {a // len(_ARTISTS) + 1}" if a >= 8 else "")


async def _upload(
    catalog: CatalogService, principal: Principal, audio: bytes, title: str, t: int
) -> uuid.UUID:
    """Upload one generated track through the catalog's real path; its track id."""
    from lufy.catalog.schemas import UploadCreate  # cheap CLI start: `lufy --help` imports seed

    ticket = await catalog.request_upload(
        principal,
        UploadCreate(
            filename=f"track{t}.wav", content_type="audio/wav", size_bytes=len(audio), title=title
        ),
    )
    key = f"uploads/{ticket.track_id}/source.wav"
    await asyncio.to_thread(catalog.storage.put_bytes, key, audio, content_type="audio/wav")
    await catalog.complete_upload(principal, ticket.upload_id)
    return ticket.track_id


async def _catalogue(
    container: Container, artists: int, per_artist: int, rng: random.Random
) -> dict[uuid.UUID, tuple[uuid.UUID, int]]:
    """{track id: (artist id, duration ms)}, creating what is missing."""
    from lufy.catalog.processing import process_track  # cheap CLI start (see _upload)

    accounts = container.accounts
    catalog = container.catalog
    tracks: dict[uuid.UUID, tuple[uuid.UUID, int]] = {}
    pending: list[tuple[Principal, uuid.UUID, str, str]] = []
    for a in range(artists):
        principal = await _artist(container, accounts, a)
        async with container.db.transaction(role="system") as conn:
            cur = await conn.execute(_Q.ready_tracks_of_artist, [principal.user_id])
            existing = await cur.fetchall()
        for track_id, duration in existing:
            tracks[track_id] = (principal.user_id, int(duration))
        for t in range(len(existing), per_artist):
            title = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}"
            audio = _tone(35 + 5 * (t % 4), 220.0 * 2 ** ((a * 5 + t) % 12 / 12))
            track_id = await _upload(catalog, principal, audio, title, t)
            pending.append((principal, track_id, _artist_name(a), title))

    # Transcoding is the slow part: two at a time (ffmpeg runs in threads), one per core.
    gate = asyncio.Semaphore(2)

    async def finish(principal: Principal, track_id: uuid.UUID, name: str, title: str) -> None:
        async with gate:
            status = await process_track(catalog, track_id, f"seed:{track_id}")
        if status != "ready":
            raise click.ClickException(f"track {title!r} ended {status}")
        await catalog.publish(principal, track_id)
        track = await catalog.get_track(principal, track_id)
        tracks[track_id] = (principal.user_id, track.duration_ms or 90_000)
        click.echo(f"  {name}: {title} ({status})", err=True)

    await asyncio.gather(*(finish(*item) for item in pending))
    return tracks


def _people(listeners: int, rng: random.Random) -> list[_Listener]:
    people = []
    for i in range(listeners):
        country, zone, _ = rng.choices(_PLACES, [p[2] for p in _PLACES])[0]
        people.append(
            _Listener(
                user_id=uuid.uuid5(_NS, f"listener-{i}") if i % 3 == 0 else None,
                anonymous_id=f"demo-{i}",
                country=country,
                zone=ZoneInfo(zone),
                device=rng.choices([d for d, _ in _DEVICES], [w for _, w in _DEVICES])[0],
                appetite=rng.paretovariate(1.5),
            )
        )
    return people


def _closeness(h: int, peak: int) -> float:
    d = min(abs(h - peak), 24 - abs(h - peak))
    return math.exp(-(d**2) / 12)


# Evening peak, night trough (weights per local hour).
_DIURNAL = [0.1 + _closeness(h, 20) + 0.5 * _closeness(h, 8) for h in range(24)]


class _Plays:
    """The events generated so far; event ids count up from one, so a re-run repeats them."""

    def __init__(self, tracks: dict[uuid.UUID, tuple[uuid.UUID, int]], rng: random.Random):
        self.tracks = tracks
        self.rng = rng
        self.events: list[dict[str, Any]] = []
        self._counter = 0
        self.ordered = sorted(tracks)
        rng.shuffle(self.ordered)
        # Zipf: a long tail.
        self.popularity = [1 / (rank + 1) ** 1.1 for rank in range(len(self.ordered))]

    def _next_id(self) -> str:
        self._counter += 1
        return str(uuid.uuid5(_NS, f"event-{self._counter}"))

    def emit(self, base: dict[str, Any], type_: str, at: datetime, **extra: Any) -> None:
        self.events.append(
            {**base, "event_id": self._next_id(), "type": type_, "occurred_at": at.isoformat()}
            | extra
        )

    def session(self, listener: _Listener, start: datetime) -> None:
        """One listening session of `listener` from `start`: a track, how far it got, and
        sometimes a like (rarely undone) or a follow."""
        rng = self.rng
        rank = rng.choices(range(len(self.ordered)), self.popularity)[0]
        track_id = self.ordered[rank]
        artist_id, duration = self.tracks[track_id]
        base = {
            "session_id": str(uuid.uuid5(_NS, f"session-{len(self.events)}")),
            "track_id": str(track_id),
            "anonymous_id": listener.anonymous_id,
            "country": listener.country,
            "device": listener.device,
            "source": rng.choices([s for s, _ in _SOURCES], [w for _, w in _SOURCES])[0],
        }
        if listener.user_id:
            base["listener_id"] = str(listener.user_id)
        skip_chance = 0.2 + 0.3 * rank / len(self.ordered)  # the long tail is skipped more
        roll = rng.random()
        listened = (
            rng.randint(3_000, min(duration - 1, 60_000))
            if roll < skip_chance
            else duration
            if roll < 0.75
            else rng.randint(20_000, duration)
        )

        def play(type_: str, ms: int) -> None:
            self.emit(base, type_, start + timedelta(milliseconds=ms), listened_ms=ms)

        play("playback.started", 0)
        for ms in range(30_000, listened, 30_000):
            play("playback.progress", ms)
        if roll < skip_chance:
            play("playback.skipped", listened)
        elif listened >= duration:
            play("playback.completed", duration)
        else:
            play("playback.progress", listened)
        if listened >= 30_000 and rng.random() < 0.04:
            play("track.liked", listened)
            if rng.random() < 0.1:
                play("track.unliked", listened + 60_000)
        if listened >= 30_000 and rng.random() < 0.012:
            at = start + timedelta(milliseconds=listened)
            self.emit(base, "artist.followed", at, artist_id=str(artist_id))


def _plays(
    tracks: dict[uuid.UUID, tuple[uuid.UUID, int]],
    *,
    listeners: int,
    weeks: int,
    per_day: int,
    now: datetime,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """`weeks` of sessions (about `per_day` a day, more at weekends) of `listeners` people,
    each at a local hour drawn from a diurnal cycle; none in the last ten minutes."""
    people = _people(listeners, rng)
    plays = _Plays(tracks, rng)
    start_day = (now - timedelta(weeks=weeks)).date()
    for day_index in range(weeks * 7 + 1):
        day = start_day + timedelta(days=day_index)
        weekend = 1.2 if day.weekday() >= 5 else 1.0
        for listener in rng.choices(people, [p.appetite for p in people], k=int(per_day * weekend)):
            hour = rng.choices(range(24), _DIURNAL)[0]
            minute, second = rng.randrange(60), rng.randrange(60)
            local = datetime(
                day.year, day.month, day.day, hour, minute, second, tzinfo=listener.zone
            )
            start = local.astimezone(UTC)
            if start <= now - timedelta(minutes=10):
                plays.session(listener, start)
    return [{k: v for k, v in e.items() if v is not None} for e in plays.events]


async def _import(container: Container, events: list[dict[str, Any]]) -> dict[str, int]:
    """Append the plays through the import path, 5000 at a time; what became of them."""
    from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor  # cheap CLI start

    ingestor = Ingestor(
        container.db, container.store, sample_rate=container.settings.ANALYTICS_SAMPLE_RATE
    )
    totals = {"accepted": 0, "duplicates": 0, "sampled_out": 0, "rejected": 0}
    context = IngestContext(historical=True)
    with Progress(transient=True) as progress:
        task = progress.add_task("importing plays", total=len(events))
        for i in range(0, len(events), 5000):
            result = await ingestor.ingest(events[i : i + 5000], context, event_type=ImportedEvent)
            totals["accepted"] += result.accepted
            totals["duplicates"] += result.duplicates
            totals["sampled_out"] += result.sampled_out
            totals["rejected"] += len(result.rejected)
            progress.advance(task, min(5000, len(events) - i))
    return totals


async def _seed(
    artists: int, per_artist: int, listeners: int, weeks: int, per_day: int, seed: int
) -> None:
    from lufy.bootstrap import bootstrap  # cheap CLI start: `lufy --help` imports this module

    settings = get_settings()
    # The operator seeds every track of an artist at once: not the artists' own upload quota.
    in_flight = max(settings.UPLOAD_MAX_IN_FLIGHT, per_artist)
    container = bootstrap(settings.model_copy(update={"UPLOAD_MAX_IN_FLIGHT": in_flight}))
    await container.start()
    try:
        rng = random.Random(seed)
        click.echo("catalogue (through accounts and catalog, with real transcoding):", err=True)
        tracks = await _catalogue(container, artists, per_artist, random.Random(seed + 1))
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        events = _plays(tracks, listeners=listeners, weeks=weeks, per_day=per_day, now=now, rng=rng)
        totals = await _import(container, events)
        click.echo(
            f"{len(tracks)} tracks by {artists} artists; {len(events)} events over {weeks} "
            f"week(s): {totals['accepted']} accepted, {totals['duplicates']} duplicate(s), "
            f"{totals['sampled_out']} sampled out, {totals['rejected']} rejected",
            err=True,
        )
        click.echo(
            f"artists sign in as artist1@demo.lufy.local ... artist{artists}@demo.lufy.local "
            f"with the password {PASSWORD!r}; the projector (`lufy projector`, or `lufy dev`) "
            "turns the plays into dashboard numbers",
            err=True,
        )
    finally:
        await container.stop()


@click.command("seed")
@click.option("--demo", is_flag=True, required=True, help="generate the demo data set")
@click.option("--artists", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--tracks-per-artist", default=3, show_default=True, type=click.IntRange(1, 30))
@click.option("--listeners", default=400, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--weeks", default=4, show_default=True, type=click.IntRange(1, 52))
@click.option(
    "--sessions-per-day", default=1200, show_default=True, type=click.IntRange(1, 1_000_000)
)
@click.option("--seed", default=5, show_default=True, help="same seed, same data (idempotent)")
def seed_command(
    demo: bool,
    artists: int,
    tracks_per_artist: int,
    listeners: int,
    weeks: int,
    sessions_per_day: int,
    seed: int,
) -> None:
    """Realistic demo data: artists, tracks, listeners, weeks of plays."""
    asyncio.run(_seed(artists, tracks_per_artist, listeners, weeks, sessions_per_day, seed))
