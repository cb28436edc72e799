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
from typing import Any
from zoneinfo import ZoneInfo

import click

__all__ = ["seed_command"]

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


async def _catalogue(
    container: Any, artists: int, per_artist: int, rng: random.Random
) -> dict[uuid.UUID, tuple[uuid.UUID, int]]:
    """{track id: (artist id, duration ms)}, creating what is missing."""
    from lufy.catalog.processing import process_track
    from lufy.catalog.schemas import UploadCreate
    from lufy.identity import Principal

    accounts = container.accounts
    catalog = container.catalog
    tracks: dict[uuid.UUID, tuple[uuid.UUID, int]] = {}
    pending: list[tuple[Principal, uuid.UUID, str, str]] = []
    for a in range(artists):
        name = _ARTISTS[a % len(_ARTISTS)] + (f" {a // len(_ARTISTS) + 1}" if a >= 8 else "")
        email = f"artist{a + 1}@demo.lufy.local"
        async with container.db.transaction(role="system") as conn:
            cur = await conn.execute("SELECT id FROM lufy.users WHERE email = %s", [email])
            row = await cur.fetchone()
        if row is None:
            user = await accounts.register(
                email=email,
                password=PASSWORD,
                role="artist",
                display_name=name,
                verified=True,
                via="cli",
            )
            artist_id = user.id
        else:
            artist_id = row[0]
        principal = Principal(user_id=artist_id, role="artist", session_id=uuid.uuid4())
        async with container.db.transaction(role="system") as conn:
            cur = await conn.execute(
                "SELECT id, coalesce(duration_ms, 90000) FROM lufy.tracks "
                "WHERE artist_id = %s AND status = 'ready' AND deleted_at IS NULL ORDER BY title",
                [artist_id],
            )
            existing = await cur.fetchall()
        for track_id, duration in existing:
            tracks[track_id] = (artist_id, int(duration))
        for t in range(len(existing), per_artist):
            title = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}"
            audio = _tone(35 + 5 * (t % 4), 220.0 * 2 ** ((a * 5 + t) % 12 / 12))
            ticket = await catalog.request_upload(
                principal,
                UploadCreate(
                    filename=f"track{t}.wav",
                    content_type="audio/wav",
                    size_bytes=len(audio),
                    title=title,
                ),
            )
            key = f"uploads/{ticket.track_id}/source.wav"
            await asyncio.to_thread(catalog.storage.put_bytes, key, audio, content_type="audio/wav")
            await catalog.complete_upload(principal, ticket.upload_id)
            pending.append((principal, ticket.track_id, name, title))

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


def _plays(
    tracks: dict[uuid.UUID, tuple[uuid.UUID, int]],
    *,
    listeners: int,
    weeks: int,
    per_day: int,
    now: datetime,
    rng: random.Random,
) -> list[dict[str, Any]]:
    counter = 0

    def next_id() -> str:
        nonlocal counter
        counter += 1
        return str(uuid.uuid5(_NS, f"event-{counter}"))

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
    ordered = sorted(tracks)
    rng.shuffle(ordered)
    popularity = [1 / (rank + 1) ** 1.1 for rank in range(len(ordered))]  # Zipf: a long tail

    # Evening peak, night trough (weights per local hour).
    def closeness(h: int, peak: int) -> float:
        d = min(abs(h - peak), 24 - abs(h - peak))
        return math.exp(-(d**2) / 12)

    diurnal = [0.1 + closeness(h, 20) + 0.5 * closeness(h, 8) for h in range(24)]
    events: list[dict[str, Any]] = []
    start_day = (now - timedelta(weeks=weeks)).date()
    for day_index in range(weeks * 7 + 1):
        day = start_day + timedelta(days=day_index)
        weekend = 1.2 if day.weekday() >= 5 else 1.0
        for listener in rng.choices(people, [p.appetite for p in people], k=int(per_day * weekend)):
            hour = rng.choices(range(24), diurnal)[0]
            local = datetime(
                day.year,
                day.month,
                day.day,
                hour,
                rng.randrange(60),
                rng.randrange(60),
                tzinfo=listener.zone,
            )
            start = local.astimezone(UTC)
            if start > now - timedelta(minutes=10):
                continue
            rank = rng.choices(range(len(ordered)), popularity)[0]
            track_id = ordered[rank]
            artist_id, duration = tracks[track_id]
            session = str(uuid.uuid5(_NS, f"session-{len(events)}"))
            base = {
                "session_id": session,
                "track_id": str(track_id),
                "anonymous_id": listener.anonymous_id,
                "country": listener.country,
                "device": listener.device,
                "source": rng.choices([s for s, _ in _SOURCES], [w for _, w in _SOURCES])[0],
            }
            if listener.user_id:
                base["listener_id"] = str(listener.user_id)
            skip_chance = 0.2 + 0.3 * rank / len(ordered)  # the long tail is skipped more
            roll = rng.random()
            listened = (
                rng.randint(3_000, min(duration - 1, 60_000))
                if roll < skip_chance
                else duration
                if roll < 0.75
                else rng.randint(20_000, duration)
            )

            def emit(
                type_: str,
                ms: int,
                start: datetime = start,
                base: dict[str, Any] = base,
                **extra: Any,
            ) -> None:
                at = start + timedelta(milliseconds=ms)
                events.append(
                    {
                        **base,
                        "event_id": next_id(),
                        "type": type_,
                        "occurred_at": at.isoformat(),
                        "listened_ms": ms,
                        **extra,
                    }
                )

            emit("playback.started", 0)
            for ms in range(30_000, listened, 30_000):
                emit("playback.progress", ms)
            if roll < skip_chance:
                emit("playback.skipped", listened)
            elif listened >= duration:
                emit("playback.completed", duration)
            else:
                emit("playback.progress", listened)
            if listened >= 30_000 and rng.random() < 0.04:
                emit("track.liked", listened)
                if rng.random() < 0.1:
                    emit("track.unliked", listened + 60_000)
            if listened >= 30_000 and rng.random() < 0.012:
                events.append(
                    {
                        **base,
                        "event_id": next_id(),
                        "type": "artist.followed",
                        "artist_id": str(artist_id),
                        "occurred_at": (start + timedelta(milliseconds=listened)).isoformat(),
                    }
                )
    return [{k: v for k, v in e.items() if v is not None} for e in events]


async def _seed(
    artists: int, per_artist: int, listeners: int, weeks: int, per_day: int, seed: int
) -> None:
    from rich.progress import Progress

    from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
    from lufy.bootstrap import bootstrap
    from lufy.settings import get_settings

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
        ingestor = Ingestor(
            container.db, container.store, sample_rate=container.settings.ANALYTICS_SAMPLE_RATE
        )
        totals = {"accepted": 0, "duplicates": 0, "sampled_out": 0, "rejected": 0}
        context = IngestContext(historical=True)
        with Progress(transient=True) as progress:
            task = progress.add_task("importing plays", total=len(events))
            for i in range(0, len(events), 5000):
                result = await ingestor.ingest(
                    events[i : i + 5000], context, event_type=ImportedEvent
                )
                totals["accepted"] += result.accepted
                totals["duplicates"] += result.duplicates
                totals["sampled_out"] += result.sampled_out
                totals["rejected"] += len(result.rejected)
                progress.advance(task, min(5000, len(events) - i))
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
