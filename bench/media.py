"""Media processing figure: processing a 5-minute track, as a ratio to running the same ffmpeg
command directly, measured in the same run.

    python bench/media.py [--seconds 300] [--rounds 3] [--no-encrypt]

The pipeline is the whole `process_upload` job body (`process_track`): read the track's events,
record `transcoding_started`, copy the upload out of storage, ffprobe it, run the ffmpeg HLS
command (three AAC renditions + loudness), write the package to storage and record
`track_transcoded`. The baseline is `transcode.hls_command(...)` on the same source, run with
`subprocess.run`. Rounds alternate which goes first; the figure is median / median.
Both wall time and CPU time (user + system, of this process and its children) are reported: on
a shared 2-core machine the CPU-time ratio is the steadier figure.
A throw-away database is created (migrated like production) and dropped; local storage lives in
a temp dir. Admin connection: LUFY_BENCH_ADMIN_URL (default: the OS user on 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchkit import drop_database

from lufy.bootstrap import bootstrap
from lufy.catalog.processing import process_track
from lufy.catalog.schemas import UploadCreate
from lufy.media import transcode
from lufy.media.storage import LocalStorage
from lufy.migrate import migrate
from lufy.settings import load_settings
from lufy.web.auth import Principal

ADMIN_BASE = os.environ.get(
    "LUFY_BENCH_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)


def _url(dbname: str, *, app: bool) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = f"lufy_app:lufy_app@{base.hostname}:{base.port or 5432}" if app else base.netloc
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


def make_source(path: Path, seconds: int) -> None:
    """A 5-minute stereo 44.1 kHz MP3: a tone under pink noise, so the encoder has real work."""
    subprocess.run(
        [
            transcode.ffmpeg_binary(),
            *("-hide_banner", "-loglevel", "error", "-nostdin", "-y"),
            *("-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}:sample_rate=44100"),
            *("-f", "lavfi", "-i", f"anoisesrc=color=pink:duration={seconds}:amplitude=0.2"),
            *("-filter_complex", "[0:a][1:a]amix=inputs=2,aformat=channel_layouts=stereo"),
            *("-c:a", "libmp3lame", "-b:a", "192k", str(path)),
        ],
        check=True,
    )


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_direct(source: Path, work: Path, encrypt: bool) -> tuple[float, float]:
    out = work / "direct"
    shutil.rmtree(out, ignore_errors=True)
    for name in ("64k", "128k", "256k"):
        (out / name).mkdir(parents=True)
    key_info = None
    if encrypt:
        (out / "key.bin").write_bytes(secrets.token_bytes(16))
        key_info = work / "direct.keyinfo"
        key_info.write_text(f"../key.bin\n{out / 'key.bin'}\n{secrets.token_hex(16)}\n")
    command = transcode.hls_command(source, out, key_info=key_info)
    cpu, started = cpu_seconds(), time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started, cpu_seconds() - cpu


async def main(seconds: int, rounds: int, encrypt: bool) -> None:
    dbname = f"lufy_bench_media_{uuid.uuid4().hex[:8]}"
    migrate(_url(dbname, app=False), _url(dbname, app=True))
    work = Path(tempfile.mkdtemp(prefix="lufy-bench-media-"))
    try:
        settings = load_settings(
            DATABASE_URL=_url(dbname, app=True),
            DATABASE_ADMIN_URL=_url(dbname, app=False),
            MEDIA_ROOT=work / "media",
            JWT_SECRET="bench-secret-bench-secret-bench-secret-0123",
            LUFY_ENV="test",
        )
        container = bootstrap(settings, pool_size=2, storage=LocalStorage(work / "media"))
        container.catalog.encrypt_hls = encrypt
        await container.start()
        service = container.catalog
        source = work / "source.mp3"
        make_source(source, seconds)
        data_size = source.stat().st_size
        artist = Principal(user_id=uuid.uuid4(), role="artist", session_id=uuid.uuid4())

        async def pipeline() -> tuple[float, float]:
            ticket = await service.request_upload(
                artist,
                UploadCreate(
                    filename="bench.mp3",
                    content_type="audio/mpeg",
                    size_bytes=data_size,
                    title="bench",
                ),
            )
            service.storage.put_file(
                f"uploads/{ticket.track_id}/source.mp3", source, content_type="audio/mpeg"
            )
            await service.complete_upload(artist, ticket.upload_id)
            cpu, started = cpu_seconds(), time.perf_counter()
            status = await process_track(service, ticket.track_id, f"bench-{uuid.uuid4()}")
            elapsed = time.perf_counter() - started, cpu_seconds() - cpu
            assert status == "ready", status
            return elapsed

        direct: list[tuple[float, float]] = []
        ours: list[tuple[float, float]] = []
        for i in range(rounds):
            if i % 2 == 0:
                direct.append(run_direct(source, work, encrypt))
                ours.append(await pipeline())
            else:
                ours.append(await pipeline())
                direct.append(run_direct(source, work, encrypt))
            print(
                f"round {i + 1}: ffmpeg direct {direct[-1][0]:.2f} s wall "
                f"{direct[-1][1]:.2f} s cpu, process_upload {ours[-1][0]:.2f} s wall "
                f"{ours[-1][1]:.2f} s cpu",
                file=sys.stderr,
            )
        await container.stop()
        dw, ow = (statistics.median(x[0] for x in runs) for runs in (direct, ours))
        dc, oc = (statistics.median(x[1] for x in runs) for runs in (direct, ours))
        print(
            f"media processing, {seconds} s track ({data_size / 1e6:.1f} MB mp3, "
            f"encrypt={encrypt}), median of {rounds}: "
            f"wall ffmpeg direct {dw:.2f} s, process_upload {ow:.2f} s, ratio {ow / dw:.3f}; "
            f"cpu ffmpeg direct {dc:.2f} s, process_upload {oc:.2f} s, ratio {oc / dc:.3f} "
            "(target <= 1.2)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        drop_database(ADMIN_BASE, dbname)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-encrypt", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rounds, not args.no_encrypt))
