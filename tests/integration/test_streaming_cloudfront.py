"""With CloudFront configured, the stream URL points at the distribution with the token in its
path; the CloudFront Function (under Node) lets through that URL and every URI its playlists
name, resolved the way a player resolves them, and rewrites each to an object the bucket holds."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from lufy.bootstrap import Container
from lufy.catalog.processing import process_track
from lufy.catalog.schemas import UploadCreate
from lufy.catalog.service import CatalogService
from lufy.media.signing import Tier, stream_key_id
from lufy.media.storage import MemoryStorage
from lufy.settings import Settings
from lufy.web.auth import Principal
from tests.helpers.accounts import create_user
from tests.helpers.edge import run_function
from tests.helpers.media import make_tone


def _player_urls(storage: MemoryStorage, track_id: uuid.UUID, master_url: str) -> list[str]:
    """Every URL a player fetches from `master_url`: variants, keys, segments."""
    urls = [master_url]
    master = storage.get_bytes(f"hls/{track_id}/master.m3u8").decode()
    for variant in (line for line in master.splitlines() if line.endswith(".m3u8")):
        variant_url = urljoin(master_url, variant)
        urls.append(variant_url)
        text = storage.get_bytes(f"hls/{track_id}/{variant}").decode()
        for line in text.splitlines():
            if line.startswith("#EXT-X-KEY"):
                urls.append(urljoin(variant_url, line.split('URI="')[1].split('"')[0]))
            elif line and not line.startswith("#"):
                urls.append(urljoin(variant_url, line))
    return sorted(set(urls))


async def test_every_uri_of_a_cloudfront_stream_passes_the_function_to_an_object_that_exists(
    container: Container, settings: Settings, tmp_path: Path, admin_conn: Any
) -> None:
    configured = settings.model_copy(update={"CLOUDFRONT_DOMAIN": "media.example.net"})
    tiers: dict[uuid.UUID | None, Tier] = {}

    async def resolver(listener_id: uuid.UUID | None) -> Tier:
        return tiers.get(listener_id, "free")

    storage = MemoryStorage()
    service = CatalogService(
        db=container.db,
        store=container.store,
        storage=storage,
        settings=configured,
        tier_resolver=resolver,
    )
    user = await create_user(container, role="artist")
    tiers[user.id] = "premium"
    artist = Principal(user_id=user.id, role="artist", session_id=user.session_id)
    tone = make_tone(tmp_path / "t.wav", seconds=8)
    data = tone.read_bytes()
    ticket = await service.request_upload(
        artist,
        UploadCreate(filename="t.wav", content_type="audio/wav", size_bytes=len(data), title="t"),
    )
    storage.put_bytes(f"uploads/{ticket.track_id}/source.wav", data, content_type="audio/wav")
    await service.complete_upload(artist, ticket.upload_id)
    assert await process_track(service, ticket.track_id, "cf") == "ready"

    grant = await service.authorize_stream(artist, ticket.track_id)
    assert grant.url == f"https://media.example.net/hls/{grant.token}/{ticket.track_id}/master.m3u8"
    urls = _player_urls(storage, ticket.track_id, grant.url)
    assert any(u.endswith("/key.bin") for u in urls)
    assert len([u for u in urls if u.endswith(".ts")]) == 6  # 8 s: two segments x 3 renditions
    kvs = {stream_key_id(configured.jwt_secret): configured.jwt_secret}
    paths = [urlsplit(u).path for u in urls]
    for path, answer in zip(paths, run_function(kvs, paths), strict=True):
        assert answer.status == 200, (path, answer.detail)
        assert answer.origin_uri is not None
        assert grant.token not in answer.origin_uri
        assert storage.stat(answer.origin_uri.removeprefix("/")) is not None, answer.origin_uri

    # An anonymous listener is free here: master.m3u8 is the free master, 256k is refused.
    await service.publish(artist, ticket.track_id)
    free = await service.authorize_stream(None, ticket.track_id)
    base = f"/hls/{free.token}/{ticket.track_id}"
    master, variant = run_function(kvs, [f"{base}/master.m3u8", f"{base}/256k/index.m3u8"])
    assert master.origin_uri == f"/hls/{ticket.track_id}/master-free.m3u8"
    assert storage.stat(master.origin_uri.removeprefix("/")) is not None
    assert (variant.status, variant.detail) == (
        403,
        "the free tier does not include the 256 kbit/s rendition",
    )

    # Each grant is recorded with its id, the token's jti, for the stream-integrity rule.
    rows = await (
        await admin_conn.execute(
            "SELECT data FROM lufy.events WHERE type = 'catalog.stream_authorized' "
            "AND stream_id = %s ORDER BY global_position",
            [str(ticket.track_id)],
        )
    ).fetchall()
    assert [(r[0]["grant_id"], r[0]["delivery"]) for r in rows] == [
        (str(grant.grant_id), "cloudfront"),
        (str(free.grant_id), "cloudfront"),
    ]
